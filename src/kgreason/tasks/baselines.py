"""Shortcut baselines: rules that answer an item without following its stated chain, as a registry.

A dataset is only evidence of multi-hop reasoning if every rule that ignores the chain scores near
chance on it. Each baseline is one small function that scores the options of one item (higher =
the rule prefers it); its prediction is the best-scoring option, ties broken pseudo-randomly per
item. The same functions serve three callers:

* `kgreason tasks audit` reports each baseline's accuracy with a 95% interval and `--strict` fails
  when one exceeds `--max-shortcut`;
* every evaluation report prints them beside the model's accuracy;
* the generator (`tasks/generate.py`) computes the answer's win share under each balanced
  baseline while it chooses distractors, and keeps every rate at chance.

Add your own from outside the package (lm-evaluation-harness / reasoning-gym style)::

    from kgreason.tasks.baselines import register_baseline

    @register_baseline("longest_label", "the option with the longest label")
    def longest_label(item, ctx):
        return [float(len(label)) for label in item.labels]

or expose a module through the ``kgreason.plugins`` entry-point group (or the
``KGREASON_PLUGINS`` environment variable, a comma-separated list of modules to import); both are
loaded the first time the registry is listed (kgreason/registry.py).
"""

from __future__ import annotations

import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from kgreason.kg.graph import KnowledgeGraph
from kgreason.registry import Registry, load_plugins
from kgreason.stats import mean_interval
from kgreason.tasks.shortcuts import relation_range_types, words

Triple = tuple[str, str, str]
# A baseline never walks more than this many entities from one item's start (hubs in 1M-edge graphs).
BFS_CAP = 20_000


@dataclass(frozen=True)
class ItemView:
    """What a baseline may look at: an item's surface, its option entities and its context facts.

    `options[i]` is the entity id of the option with letter `letters[i]` (None when the option text
    names no entity of the graph); `context` holds the open-mode facts as triples, in prompt order.
    """

    id: str
    start: str | None
    chain: tuple[str, ...]
    letters: tuple[str, ...]
    options: tuple[str | None, ...]
    labels: tuple[str, ...]
    question: str
    hop_len: int
    context: tuple[Triple, ...] = ()
    # False for a family without options (free form): `options` then holds every candidate entity
    offers_options: bool = True


@dataclass
class BaselineContext:
    """Dataset-level knowledge a baseline may use, with per-graph caches shared by all items.

    `train_answers` counts how often each entity is the gold answer of the training files (None
    when no training file was given: the prior baseline is then not applicable);
    `train_options` counts every option appearance there (answer or distractor); `letter_counts`
    counts correct letters over the audited items.
    """

    kg: KnowledgeGraph
    train_answers: Counter | None = None
    train_options: Counter | None = None  # how often each entity is an option (any letter) in training
    letter_counts: Counter = field(default_factory=Counter)
    _range_types: dict[str, str | None] | None = None
    _distances: dict[tuple[str, int, bool], dict[str, int]] = field(default_factory=dict)
    _k_reach: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    _in_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    _walks: dict[tuple[str, int, bool], dict[str, float]] = field(default_factory=dict)
    # The generator scores ~48 distractor sets per item with the same start and chain: these two
    # depend on one option (or none) at a time, so they are computed once per item, not per set.
    _first_frontiers: dict[tuple[str, str, int], frozenset[str] | None] = field(default_factory=dict)
    _chain_sources: dict[tuple[str, tuple[str, ...], str | None], int] = field(default_factory=dict)
    _masked_walks: dict[tuple[str, tuple[str | None, ...]], dict[str, float] | None] = field(default_factory=dict)

    @property
    def range_types(self) -> dict[str, str | None]:
        if self._range_types is None:
            self._range_types = relation_range_types(self.kg)
        return self._range_types

    def undirected_distances(self, start: str, depth: int) -> dict[str, int]:
        """Entity -> undirected hop distance from `start`, up to `depth` (bounded by BFS_CAP)."""
        return self._distances_from(start, depth, directed=False)

    def directed_distances(self, start: str, depth: int) -> dict[str, int]:
        """Entity -> directed hop distance from `start`, up to `depth` (bounded by BFS_CAP)."""
        return self._distances_from(start, depth, directed=True)

    def _distances_from(self, start: str, depth: int, directed: bool) -> dict[str, int]:
        key = (start, depth, directed)
        if key not in self._distances:
            if len(self._distances) > 4096:
                self._distances.clear()
            dist = {start: 0}
            queue = deque([start])
            while queue and len(dist) < BFS_CAP:
                node = queue.popleft()
                if dist[node] >= depth:
                    continue
                nbrs = self.kg.successors(node) if directed else (*self.kg.successors(node),
                                                                   *self.kg.predecessors(node))
                for nbr in nbrs:
                    if nbr not in dist:
                        dist[nbr] = dist[node] + 1
                        queue.append(nbr)
            self._distances[key] = dist
        return self._distances[key]

    def reachable_in_exactly(self, start: str, k: int) -> set[str]:
        """Entities at the end of some directed walk of exactly `k` edges from `start`, any relations."""
        key = (start, k)
        if key not in self._k_reach:
            if len(self._k_reach) > 4096:
                self._k_reach.clear()
            frontier = {start}
            for _ in range(k):
                nxt: set[str] = set()
                # sorted: past BFS_CAP the loop stops part way, and a set's order changes with the
                # process's string hashing, which would make the same seed give other files
                for node in sorted(frontier):
                    nxt.update(self.kg.successors(node))
                    if len(nxt) > BFS_CAP:
                        break
                frontier = nxt
            self._k_reach[key] = frontier
        return self._k_reach[key]

    def walk_weights(self, start: str, k: int, uniform: bool) -> dict[str, float]:
        """End-point weights of directed walks of exactly `k` edges from `start`: the probability of
        a walk that picks a uniformly random out-edge at each step (`uniform`), or the walk count."""
        key = (start, k, uniform)
        if key not in self._walks:
            if len(self._walks) > 4096:
                self._walks.clear()
            self._walks[key] = _walk_weights(self.out_tails, start, k, uniform)
        return self._walks[key]

    def out_tails(self, node: str) -> list[str]:
        """The tail of each edge leaving `node`, any relation (one per edge: a random step picks an edge)."""
        return [t for ts in self.kg.out_relations(node).values() for t in ts]

    def in_count(self, entity: str, relation: str) -> int:
        key = (entity, relation)
        if key not in self._in_counts:
            self._in_counts[key] = len(self.kg.predecessors(entity, relation))
        return self._in_counts[key]

    def first_relation_frontier(self, start: str, relation: str, hops: int) -> frozenset[str] | None:
        """Entities at the end of `hops` edges from `start` whose first edge is `relation` and the
        rest any relations; None once a frontier exceeds BFS_CAP."""
        key = (start, relation, hops)
        if key not in self._first_frontiers:
            # Few entries: the 48 sets of one item share a key, and each value may hold BFS_CAP ids.
            if len(self._first_frontiers) > 256:
                self._first_frontiers.clear()
            frontier: set[str] | None = set(self.kg.successors(start, relation))
            for _ in range(hops - 1):
                nxt: set[str] = set()
                for node in frontier:
                    for tails in self.kg.out_relations(node).values():
                        nxt.update(tails)
                if len(nxt) > BFS_CAP:
                    frontier = None
                    break
                frontier = nxt
            self._first_frontiers[key] = frozenset(frontier) if frontier is not None else None
        return self._first_frontiers[key]

    def masked_walk_weights(self, start: str, steps: Sequence[str | None]) -> dict[str, float] | None:
        """End-point probabilities of a random walk from `start` that at step i takes a uniformly
        random out-edge of relation steps[i], or of any relation where steps[i] is None (a walk at
        a node without such an edge is lost); None once a step reaches more than BFS_CAP entities."""
        key = (start, tuple(steps))
        if key not in self._masked_walks:
            if len(self._masked_walks) > 64:  # few hits: no balancer asks these rules again per item
                self._masked_walks.clear()

            weights, capped = step_walk(start, [self.out_tails if rel is None else
                                                (lambda node, r=rel: self.kg.successors(node, r)) for rel in steps])
            self._masked_walks[key] = None if capped else weights  # a capped walk ends on the wrong step
        return self._masked_walks[key]

    def chain_sources(self, entity: str, chain: Sequence[str], exclude: str | None) -> int:
        """How many entities other than `exclude` reach `entity` by following `chain` (backwards search)."""
        key = (entity, tuple(chain), exclude)
        if key not in self._chain_sources:
            if len(self._chain_sources) > 65536:
                self._chain_sources.clear()
            self._chain_sources[key] = self._count_chain_sources(entity, chain, exclude)
        return self._chain_sources[key]

    def _count_chain_sources(self, entity: str, chain: Sequence[str], exclude: str | None) -> int:
        frontier = {entity}
        for rel in reversed(chain):
            prev: set[str] = set()
            for node in frontier:
                prev.update(self.kg.predecessors(node, rel))
            if len(prev) > BFS_CAP:
                break
            frontier = prev
            if not frontier:
                return 0
        return len(frontier - {exclude}) if exclude else len(frontier)


def _walk_weights(successors: Callable[[str], Sequence[str]], start: str, k: int, uniform: bool) -> dict[str, float]:
    return step_walk(start, [successors] * k, uniform)[0]


def step_walk(start: str, steps: Sequence[Callable[[str], Sequence[str]]],
              uniform: bool = True) -> tuple[dict[str, float], bool]:
    """End-point weights of a walk from `start` whose step i goes to `steps[i](node)`: each with the
    node's weight over their number (`uniform`, a random walk) or its whole weight (walk counts);
    a node with none loses its weight. Also whether the walk stopped early, at the first step that
    reached more than BFS_CAP entities (the weights are then that step's)."""
    weights = {start: 1.0}
    for successors in steps:
        nxt: dict[str, float] = {}
        for node, w in weights.items():
            tails = successors(node)
            share = w / len(tails) if uniform and tails else w
            for t in tails:
                nxt[t] = nxt.get(t, 0.0) + share
        weights = nxt
        if len(weights) > BFS_CAP:
            return weights, True
    return weights, False


Scores = list[float]
BaselineFn = Callable[[ItemView, BaselineContext], "Scores | None"]


@dataclass(frozen=True)
class Baseline:
    """A registered rule. `balanced`: the generator keeps its rate at chance while it picks
    distractors (rules on letters or fact order are balanced by construction instead).
    `per_option`: each option's score depends only on that option and the item's start, chain,
    question and hop length, never on the other options, their order or the context facts; the
    generator then scores an item's whole candidate pool once instead of each of ~48 distractor
    sets (the scores are the same numbers either way)."""

    name: str
    description: str
    fn: BaselineFn
    balanced: bool = True
    open_only: bool = False
    per_option: bool = False
    option_free_only: bool = False  # judges only items of a family without options (see PARTIAL_WALKS)

    def scores(self, item: ItemView, ctx: BaselineContext) -> Scores | None:
        if (self.open_only and not item.context) or (self.option_free_only and item.offers_options):
            return None
        return self.fn(item, ctx)


BASELINES: Registry[Baseline] = Registry("shortcut baseline")


def register_baseline(name: str, description: str, *, balanced: bool = True, open_only: bool = False,
                      per_option: bool = False, option_free_only: bool = False) -> Callable[[BaselineFn], BaselineFn]:
    """Decorator: add a baseline to the registry (a later registration under the same name replaces it)."""

    if per_option and open_only:
        # The generator scores per-option rules once over a view without context facts.
        raise ValueError(f"baseline {name!r}: a rule on context facts (open_only) cannot be per_option")

    def wrap(fn: BaselineFn) -> BaselineFn:
        BASELINES.add(name, Baseline(name, description, fn, balanced, open_only, per_option, option_free_only))
        return fn

    return wrap


def get_baseline(name: str) -> Baseline:
    """The registered baseline `name`, or an InputError that suggests the closest names."""
    return BASELINES.get(name)


# --- predictions -----------------------------------------------------------------------------------
def tie_break(item_id: str, name: str, indices: Sequence[int]) -> int:
    """A deterministic pseudo-random pick among tied options, so a tie scores chance, not 'always A'."""
    return sorted(indices)[zlib.crc32(f"{name}:{item_id}".encode()) % len(indices)]


def best_indices(scores: Sequence[float]) -> list[int]:
    top = max(scores)
    return [i for i, s in enumerate(scores) if s == top]


def win_share(scores: Sequence[float], index: int) -> float:
    """The chance an argmax with uniformly random ties picks `index`."""
    best = best_indices(scores)
    return 1.0 / len(best) if index in best else 0.0


def predict(baseline: Baseline, item: ItemView, ctx: BaselineContext) -> str | None:
    """The letter the baseline picks for this item (None when the baseline does not apply)."""
    scores = baseline.scores(item, ctx)
    if scores is None:
        return None
    return item.letters[tie_break(item.id, baseline.name, best_indices(scores))]


# --- the built-in baselines -----------------------------------------------------------------------
def _per_option(item: ItemView, value: Callable[[str], float], missing: float = -1.0) -> Scores:
    return [value(x) if x is not None else missing for x in item.options]


@register_baseline("most_common_letter", "always the letter most often correct in these items", balanced=False)
def most_common_letter(item: ItemView, ctx: BaselineContext) -> Scores:
    if not ctx.letter_counts:
        return [0.0] * len(item.letters)
    common = sorted(ctx.letter_counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    return [float(lt == common) for lt in item.letters]


@register_baseline("type_match", "the option whose type is the usual tail type of the last stated relation",
                   per_option=True)
def type_match(item: ItemView, ctx: BaselineContext) -> Scores:
    want = ctx.range_types.get(item.chain[-1]) if item.chain else _type_named(item.question, ctx.kg)
    return _per_option(item, lambda x: float(want is not None and ctx.kg.entities[x].type == want))


def _type_named(question: str, kg: KnowledgeGraph) -> str | None:
    """A type the question's words name (the hobby wording "What is the root cause of X?" names cause)."""
    q_words = words(question)
    for t in sorted({e.type for e in kg.entities.values() if e.type}):
        if t.lower() in q_words or t.lower().rstrip("s") in q_words:
            return t
    return None


@register_baseline("max_degree", "the option with the most edges", per_option=True)
def max_degree(item: ItemView, ctx: BaselineContext) -> Scores:
    return _per_option(item, lambda x: float(ctx.kg.degree(x)))


@register_baseline("max_in_degree", "the option with the most incoming edges", per_option=True)
def max_in_degree(item: ItemView, ctx: BaselineContext) -> Scores:
    return _per_option(item, lambda x: float(len(ctx.kg.predecessors(x))))


@register_baseline("word_overlap", "the option whose label shares most words with the question", per_option=True)
def word_overlap(item: ItemView, ctx: BaselineContext) -> Scores:
    q_words = words(item.question)
    return [float(len(q_words & words(label))) for label in item.labels]


def _nearest(item: ItemView, ctx: BaselineContext, directed: bool) -> Scores | None:
    """Minus each option's distance from the start (options beyond hop_len + 1 count as one further)."""
    if not item.start:
        return None
    depth = max(item.hop_len, 1) + 1
    dist = (ctx.directed_distances if directed else ctx.undirected_distances)(item.start, depth)
    return _per_option(item, lambda x: -float(dist.get(x, depth + 1)), missing=-float(depth + 2))


@register_baseline("nearest_to_start", "the option nearest to the start in the undirected graph", per_option=True)
def nearest_to_start(item: ItemView, ctx: BaselineContext) -> Scores | None:
    return _nearest(item, ctx, directed=False)


@register_baseline("reachable_in_k_hops", "an option reachable from the start in exactly k hops by any relations",
                   per_option=True)
def reachable_in_k_hops(item: ItemView, ctx: BaselineContext) -> Scores | None:
    if not item.start:
        return None
    reach = ctx.reachable_in_exactly(item.start, item.hop_len)
    return _per_option(item, lambda x: float(x in reach))


@register_baseline("directed_nearest", "the option nearest to the start along directed edges", per_option=True)
def directed_nearest(item: ItemView, ctx: BaselineContext) -> Scores | None:
    return _nearest(item, ctx, directed=True)


def _walk_end(item: ItemView, ctx: BaselineContext, uniform: bool) -> Scores | None:
    """Each option's weight as the end of k-step walks from the start (probability or count)."""
    if not item.start:
        return None
    weights = ctx.walk_weights(item.start, item.hop_len, uniform=uniform)
    return _per_option(item, lambda x: weights.get(x, 0.0))


@register_baseline("random_walk_end", "the option where a random walk of k steps from the start most often ends",
                   per_option=True)
def random_walk_end(item: ItemView, ctx: BaselineContext) -> Scores | None:
    return _walk_end(item, ctx, uniform=True)


@register_baseline("walk_count", "the option at the end of the most walks of k steps from the start",
                   per_option=True)
def walk_count(item: ItemView, ctx: BaselineContext) -> Scores | None:
    return _walk_end(item, ctx, uniform=False)


@register_baseline("train_answer_prior", "the option most often a gold answer in the training files",
                   per_option=True)
def train_answer_prior(item: ItemView, ctx: BaselineContext) -> Scores | None:
    if ctx.train_answers is None:
        return None
    counts = ctx.train_answers
    return _per_option(item, lambda x: float(counts.get(x, 0)))


@register_baseline("train_answer_rate", "the option most often correct when it is offered in the training files",
                   per_option=True)
def train_answer_rate(item: ItemView, ctx: BaselineContext) -> Scores | None:
    if ctx.train_answers is None or not ctx.train_options:
        return None
    answers, offered = ctx.train_answers, ctx.train_options
    return _per_option(item, lambda x: answers.get(x, 0) / offered[x] if offered.get(x) else 0.0)


@register_baseline("train_rarest_option", "the option offered least often in the training files", per_option=True)
def train_rarest_option(item: ItemView, ctx: BaselineContext) -> Scores | None:
    if not ctx.train_options:
        return None
    offered = ctx.train_options
    return _per_option(item, lambda x: -float(offered.get(x, 0)), missing=-1e9)


@register_baseline("last_relation_tail", "the option most often a tail of the last stated relation in the graph",
                   per_option=True)
def last_relation_tail(item: ItemView, ctx: BaselineContext) -> Scores | None:
    if not item.chain or item.chain[-1] not in ctx.kg.relations:
        return None
    rel = item.chain[-1]
    return _per_option(item, lambda x: float(ctx.in_count(x, rel)))


@register_baseline("chain_from_other_entities",
                   "the option reached by following the stated chain from the most entities other than the start",
                   per_option=True)
def chain_from_other_entities(item: ItemView, ctx: BaselineContext) -> Scores | None:
    if not item.chain or any(r not in ctx.kg.relations for r in item.chain):
        return None
    return _per_option(item, lambda x: float(ctx.chain_sources(x, item.chain, item.start)))


@register_baseline("chain_image_any_start",
                   "an option the stated chain reaches from some entity, the start included (the start ignored)",
                   per_option=True)
def chain_image_any_start(item: ItemView, ctx: BaselineContext) -> Scores | None:
    # The gold answer is always in the chain's image over all starts; a decoy that is not can be
    # ruled out by a model that knows the graph without reading the start (36-38% when unbalanced).
    if not item.chain or any(r not in ctx.kg.relations for r in item.chain):
        return None
    return _per_option(item, lambda x: float(ctx.chain_sources(x, item.chain, None) > 0))


# Partial chaining: rules that read one end of the chain only. Following part of the chain is not
# reasoning over all of it, so these must stay at chance too.
@register_baseline("first_relation_then_any",
                   "an option reached by the stated first relation and then any relations (hop_len hops in all)",
                   per_option=True)
def first_relation_then_any(item: ItemView, ctx: BaselineContext) -> Scores | None:
    if not item.start or not item.chain:
        return None
    frontier = ctx.first_relation_frontier(item.start, item.chain[0], item.hop_len)
    if frontier is None:
        return None
    return _per_option(item, lambda x: float(x in frontier))


@register_baseline("last_two_relations",
                   "the option reached by the stated chain's last two relations from the most entities",
                   per_option=True)
def last_two_relations(item: ItemView, ctx: BaselineContext) -> Scores | None:
    if len(item.chain) < 2 or any(r not in ctx.kg.relations for r in item.chain[-2:]):
        return None
    return _per_option(item, lambda x: float(ctx.chain_sources(x, item.chain[-2:], None)))


# Partial chaining with a random walk: the stated relations at some steps, any relation at the others,
# each step a uniformly random edge; the candidate where such a walk most often ends. Found on
# screened free-form WN18RR items by a review (13.2% for the first two relations, against a 5%
# limit): in a hierarchy, following the chain part of the way and then wandering lands where the
# chain does. They judge free-form items only, for now: multiple-choice decoys were never balanced
# against them, and on the built-in graph's open-book eval items they pick the gold option far above
# chance (docs/tasks.md, "Partial chains and multiple choice"), which is a question about what 4-5
# hop multiple-choice items measure, left open there. `steps` maps the chain to the relations
# followed (None: any relation).
PartialSteps = Callable[[tuple[str, ...]], "tuple[str | None, ...] | None"]


def _partial_walk(steps: PartialSteps) -> BaselineFn:
    def rule(item: ItemView, ctx: BaselineContext) -> Scores | None:
        if not item.start or len(item.chain) != item.hop_len or any(r not in ctx.kg.relations for r in item.chain):
            return None
        followed = steps(item.chain)
        if followed is None:
            return None
        weights = ctx.masked_walk_weights(item.start, followed)
        if weights is None:
            return None
        return _per_option(item, lambda x: weights.get(x, 0.0))

    return rule


def _keep(chain: tuple[str, ...], first: int, last: int) -> tuple[str | None, ...] | None:
    """The chain with all but its first `first` and last `last` relations replaced by None (any); None
    when that would follow the whole chain or none of it."""
    if first + last >= len(chain) or first + last == 0:
        return None
    return tuple(r if i < first or i >= len(chain) - last else None for i, r in enumerate(chain))


PARTIAL_WALKS = {  # name: (description, relations followed at the start, at the end)
    "first_relation_then_walk": ("the option where a walk taking the first stated relation, then random edges, "
                                 "most often ends", 1, 0),
    "first_two_relations_then_walk": ("the option where a walk taking the first two stated relations, then "
                                      "random edges, most often ends", 2, 0),
    "first_three_relations_then_walk": ("the option where a walk taking the first three stated relations, then "
                                        "random edges, most often ends", 3, 0),
    "walk_then_last_relation": ("the option where random edges, then the last stated relation, most often end",
                                0, 1),
    "walk_then_last_two_relations": ("the option where random edges, then the last two stated relations, most "
                                     "often end", 0, 2),
    "first_relation_walk_last_relation": ("the option where the first stated relation, random edges, then the "
                                          "last stated relation most often end", 1, 1),
}
for _name, (_description, _first, _last) in PARTIAL_WALKS.items():
    register_baseline(_name, _description, balanced=False, per_option=True, option_free_only=True)(
        _partial_walk(lambda chain, f=_first, la=_last: _keep(chain, f, la)))


# Open mode: rules that read the facts in the prompt but not the chain.
def _mentions(item: ItemView) -> Counter:
    return Counter(x for h, _, t in item.context for x in (h, t))


def _first_positions(item: ItemView) -> dict[str, int]:
    pos: dict[str, int] = {}
    for i, (h, _, t) in enumerate(item.context):
        pos.setdefault(h, i)
        pos.setdefault(t, i)
    return pos


def _context_depths(item: ItemView) -> dict[str, int]:
    out: dict[str, list[str]] = {}
    for h, _, t in item.context:
        out.setdefault(h, []).append(t)
    depth = {item.start: 0} if item.start else {}
    queue = deque(depth)
    while queue:
        node = queue.popleft()
        for t in out.get(node, []):
            if t not in depth:
                depth[t] = depth[node] + 1
                queue.append(t)
    return depth


@register_baseline("context_most_mentioned", "the option mentioned most often in the context facts", open_only=True)
def context_most_mentioned(item: ItemView, ctx: BaselineContext) -> Scores:
    counts = _mentions(item)
    return _per_option(item, lambda x: float(counts.get(x, 0)))


@register_baseline("context_least_mentioned", "the option mentioned least often in the context facts", open_only=True)
def context_least_mentioned(item: ItemView, ctx: BaselineContext) -> Scores:
    counts = _mentions(item)
    return _per_option(item, lambda x: -float(counts.get(x, 0)), missing=-1e9)


@register_baseline("context_deepest", "the option deepest below the start in the context facts", open_only=True)
def context_deepest(item: ItemView, ctx: BaselineContext) -> Scores:
    depth = _context_depths(item)
    return _per_option(item, lambda x: float(depth.get(x, -1)))


@register_baseline("context_reached_from_start", "an option reachable from the start in the context facts",
                   open_only=True)
def context_reached_from_start(item: ItemView, ctx: BaselineContext) -> Scores:
    depth = _context_depths(item)
    return _per_option(item, lambda x: float(x in depth))


@register_baseline("context_random_walk_end",
                   "the option where a random walk over the context facts from the start most often ends "
                   "(the 'busiest branch' rule)", open_only=True)
def context_random_walk_end(item: ItemView, ctx: BaselineContext) -> Scores:
    out: dict[str, list[str]] = {}
    for h, _, t in item.context:
        out.setdefault(h, []).append(t)
    weights = _walk_weights(lambda node: out.get(node, []), item.start or "", item.hop_len, uniform=True)
    return _per_option(item, lambda x: weights.get(x, 0.0))


@register_baseline("context_first_mentioned", "the option mentioned first in the context", open_only=True,
                   balanced=False)
def context_first_mentioned(item: ItemView, ctx: BaselineContext) -> Scores:
    pos = _first_positions(item)
    return _per_option(item, lambda x: -float(pos.get(x, len(item.context))), missing=-1e9)


@register_baseline("context_last_mentioned", "the option mentioned last in the context", open_only=True,
                   balanced=False)
def context_last_mentioned(item: ItemView, ctx: BaselineContext) -> Scores:
    last: dict[str, int] = {}
    for i, (h, _, t) in enumerate(item.context):
        last[h] = i
        last[t] = i
    return _per_option(item, lambda x: float(last.get(x, -1)))


@register_baseline("context_last_relation", "the option whose incoming context fact uses the last stated relation",
                   open_only=True)
def context_last_relation(item: ItemView, ctx: BaselineContext) -> Scores:
    rel = item.chain[-1] if item.chain else None
    hits = Counter(t for _, r, t in item.context if r == rel)
    return _per_option(item, lambda x: float(hits.get(x, 0)))


@register_baseline("context_chain_from_other_entities",
                   "the option reached by the stated chain from an entity other than the start, in the context",
                   open_only=True)
def context_chain_from_other_entities(item: ItemView, ctx: BaselineContext) -> Scores:
    by_head: dict[tuple[str, str], list[str]] = {}
    for h, r, t in item.context:
        by_head.setdefault((h, r), []).append(t)
    reached: Counter = Counter()
    for root in {h for h, _, _ in item.context} - {item.start}:
        frontier = {root}
        for rel in item.chain:
            frontier = {t for node in frontier for t in by_head.get((node, rel), [])}
        reached.update(frontier)
    return _per_option(item, lambda x: float(reached.get(x, 0)))


# --- evaluating a dataset --------------------------------------------------------------------------
def active_baselines(names: Iterable[str] | None = None) -> list[Baseline]:
    load_plugins()
    return [get_baseline(n) for n in names] if names is not None else list(BASELINES.values())


def predictions(items: Sequence[ItemView], ctx: BaselineContext,
                names: Iterable[str] | None = None) -> dict[str, list[str | None]]:
    """Baseline name -> predicted letter per item; baselines that apply to no item are left out."""
    out: dict[str, list[str | None]] = {}
    for baseline in active_baselines(names):
        preds = [predict(baseline, item, ctx) for item in items]
        if any(p is not None for p in preds):
            out[baseline.name] = preds
    return out


def expected_hits(items: Sequence[ItemView], answers: Sequence[str], ctx: BaselineContext,
                  names: Iterable[str] | None = None) -> dict[str, list[float]]:
    """Baseline name -> per item, the chance the rule picks the correct letter when it breaks ties
    uniformly at random (1 / number tied, or 0). Averaging these gives a rule's accuracy without
    the noise of one particular tie-break; baselines that apply to no item are left out."""
    out: dict[str, list[float]] = {}
    for baseline in active_baselines(names):
        hits: list[float] = []
        applies = False
        for item, answer in zip(items, answers, strict=True):
            scores = baseline.scores(item, ctx)
            if scores is None or answer not in item.letters:
                hits.append(0.0)
                continue
            applies = True
            hits.append(win_share(scores, item.letters.index(answer)))
        if applies:
            out[baseline.name] = hits
    return out


def bootstrap_interval(hits: Sequence[float], seed: int = 0, resamples: int = 2000) -> tuple[float, float]:
    """95% interval of a baseline's mean hit, computed exactly as `kgreason eval` computes its own
    (`kgreason.stats.mean_interval`): Wilson when every hit is 0 or 1, so a rule at 0/n or n/n
    still gets a non-empty interval; the seeded percentile bootstrap when ties split hits into 1/k.
    (0.0, 0.0) for no items. The name is kept for callers outside the package."""
    if not hits:
        return (0.0, 0.0)
    _, low, high, _ = mean_interval(hits, seed=seed, n_resamples=resamples)
    return (low, high)
