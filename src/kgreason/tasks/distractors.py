"""Distractors that look like the answer to every rule that ignores the stated chain.

A distractor is only a good one if nothing but the chain tells it from the answer. The strongest
kind, *structure-matched*, is reached from the start by a walk of the same length that ends with
the same relation as the stated chain (so it lies at the same depth, is a tail of the last stated
relation and, on typed graphs, has the answer's type) and deviates from the chain somewhere
earlier. In open mode its walk is the decoy path shown in the context, so every option is
mentioned once, at the same depth below the start, entered by the same relation; only following
the chain from the start singles out the answer.

Where a graph cannot supply three structure-matched distractors (short chains on strictly typed
graphs), splits that are not held out may fall back to weaker kinds, in this order of preference:
walks of the same length from the start ending elsewhere in the last relation's range, the stated
chain followed from another entity, and near misses around the answer. Held-out splits never fall
back: such an item is rejected and counted (`no_structure_matched_distractors`).

The `DistractorBalancer` then picks, per item, the three candidates that keep every balanced
shortcut baseline (`tasks/baselines.py`) at chance over the split.
"""

from __future__ import annotations

import itertools
import random
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kgreason.kg.graph import KnowledgeGraph
from kgreason.tasks.baselines import BASELINES, BaselineContext, ItemView, load_plugins, win_share

Triple = tuple[str, str, str]
KINDS = ("structure", "walk", "chain", "near")  # most to least preferred


@dataclass
class Candidate:
    """A possible distractor and the path that reaches or attaches it (its decoy in open mode)."""

    entity: str
    edges: list[Triple]
    kind: str


@dataclass
class ItemPlan:
    """A well-posed gold path with its eligible distractor candidates, before distractors are chosen."""

    start: str
    path_edges: list[Triple]
    question: str
    candidates: list[Candidate]

    @property
    def chain(self) -> tuple[str, ...]:
        return tuple(r for _, r, _ in self.path_edges)

    @property
    def answer(self) -> str:
        return self.path_edges[-1][2]

    @property
    def entities(self) -> list[str]:
        return [self.start] + [t for _, _, t in self.path_edges]


def start_walks(kg: KnowledgeGraph, start: str, hops: int, rng: random.Random, *, avoid: set[str],
                last_relation: str | None, first_relation: str | None = None, want: int = 24,
                tries: int = 240, relations: Sequence[str] | None = None) -> dict[str, list[Triple]]:
    """Endpoints of simple random walks of exactly `hops` edges from `start`.

    Sampled by the same process as gold paths (a uniformly random relation, then a uniformly random
    unvisited tail), so distractors end where random walks end as often as answers do, and their
    decoy paths branch off each other and off the gold path like independent walks: no rule on
    walk probability or branch shape tells them apart. With `last_relation` the last edge must use
    it, and with `first_relation` the first; `avoid` entities are never entered.
    """
    # The hot loop of generation (tens of thousands of calls per dataset, nearly all running all
    # their tries): draws are inlined as Random._randbelow_with_getrandbits, so they consume the
    # generator exactly as rng.randrange(n) would and a seed gives the same files, without two
    # method calls per draw (the default open dataset: 75.8 s before, 41.9 s after); the graph's
    # out-edges come from a per-graph index laid out for this loop (`_walk_index`; the tests'
    # small closed dataset 8.4 s before, 7.1 s after). Both on an AMD EPYC with AVX2.
    getrandbits = rng.getrandbits
    out_of = kg.out_relations
    index = _walk_index(kg)
    if relations is not None:
        fixed_at = [relations[depth] for depth in range(hops)]
    else:
        fixed_at = [last_relation if depth == hops - 1 else first_relation if depth == 0 else None
                    for depth in range(hops)]
    found: dict[str, list[Triple]] = {}
    for _ in range(tries):
        if len(found) >= want:
            break
        node, visited, edges = start, {start}, []
        for fixed in fixed_at:
            info = index.get(node, _UNSEEN)
            if info is _UNSEEN:
                info = index[node] = _node_info(out_of(node))
            if info is None:  # no out-edges
                break
            by_relation, per_draw, n, k = info
            if fixed is None:
                # One uniformly random relation, then a few tries for an unvisited tail: a walk
                # that fails is just dropped, which keeps the sampler cheap on hubs.
                r = getrandbits(k)
                while r >= n:
                    r = getrandbits(k)
                rel, tails, n, k = per_draw[r]
            else:
                tail_info = by_relation.get(fixed)
                if tail_info is None:
                    break
                rel = fixed
                while getrandbits(1):  # rng.randrange(1) on the one-relation list: bits until a 0
                    pass
                tails, n, k = tail_info
            for _pick in range(4):
                r = getrandbits(k)
                while r >= n:
                    r = getrandbits(k)
                t = tails[r]
                if t not in visited and t not in avoid:
                    break
            else:
                break
            edges.append((node, rel, t))
            node = t
            visited.add(t)
        if len(edges) == hops:
            found.setdefault(node, edges)
    return found


_TailInfo = tuple[tuple[str, ...], int, int]  # tails, their count, its bit length
_NodeInfo = tuple[dict[str, _TailInfo], tuple[tuple[str, tuple[str, ...], int, int], ...], int, int]
_UNSEEN = object()
_WALK_INDEXES: dict[int, tuple[weakref.ref, dict[str, _NodeInfo | None]]] = {}


def _walk_index(kg: KnowledgeGraph) -> dict[str, _NodeInfo | None]:
    """This graph's `_node_info` per entity, filled in as walks reach entities and kept for the
    graph object's lifetime (graphs are not changed after they are built)."""
    return _graph_cache(_WALK_INDEXES, kg)


def _graph_cache(caches: dict[int, tuple[weakref.ref, dict]], kg: KnowledgeGraph) -> dict:
    """This graph object's entry of a per-graph cache (a fresh dict the first time), kept for the
    graph's lifetime: keyed by id with a weakref to tell a reused id, entries of graphs gone since
    dropped."""
    cached = caches.get(id(kg))
    if cached is not None and cached[0]() is kg:
        return cached[1]
    for key, (ref, _) in list(caches.items()):  # a copy: the demo's threads index graphs too
        if ref() is None:
            caches.pop(key, None)
    entry: dict = {}
    caches[id(kg)] = (weakref.ref(kg), entry)
    return entry


def _node_info(out: dict[str, tuple[str, ...]]) -> _NodeInfo | None:
    """One entity's out-edges laid out for `start_walks`: relation -> (tails, count, bit length);
    the same per relation in draw order (`out_relations` order, as `rng.randrange` indexes it); the
    relation count and its bit length. None without out-edges."""
    if not out:
        return None
    by_relation = {rel: (tails, len(tails), len(tails).bit_length()) for rel, tails in out.items()}
    per_draw = tuple((rel, *info) for rel, info in by_relation.items())
    return by_relation, per_draw, len(per_draw), len(per_draw).bit_length()


def heads_by_relation(kg: KnowledgeGraph) -> dict[str, list[str]]:
    """relation -> the entities with an outgoing edge of that relation (computed once per graph)."""
    out: dict[str, list[str]] = {}
    for head in kg.entities:
        for rel in kg.out_relations(head):
            out.setdefault(rel, []).append(head)
    return out


def chain_from_elsewhere(kg: KnowledgeGraph, start: str, chain: Sequence[str], rng: random.Random,
                         heads: dict[str, list[str]], tries: int = 12) -> dict[str, list[Triple]]:
    """Endpoints of the stated chain followed from entities other than the start."""
    pool = heads.get(chain[0], [])
    found: dict[str, list[Triple]] = {}
    for _ in range(tries):
        if not pool:
            break
        root = pool[rng.randrange(len(pool))]
        if root == start:
            continue
        node, edges, visited = root, [], {root}
        for rel in chain:
            tails = [t for t in kg.successors(node, rel) if t not in visited]
            if not tails:
                break
            t = tails[rng.randrange(len(tails))]
            edges.append((node, rel, t))
            visited.add(t)
            node = t
        if len(edges) == len(chain):
            found.setdefault(node, edges)
    return found


def near_misses(kg: KnowledgeGraph, path_edges: list[Triple], rng: random.Random, fan: int = 6) -> dict[str, list[Triple]]:
    """Entities two steps from the answer (answer <- p -> x), attached by those two edges."""
    answer = path_edges[-1][2]
    found: dict[str, list[Triple]] = {}
    for prev_rel, preds in kg.in_relations(answer).items():
        for p in rng.sample(list(preds), min(fan, len(preds))):
            for rel, tails in kg.out_relations(p).items():
                for x in rng.sample(list(tails), min(fan, len(tails))):
                    found.setdefault(x, [(p, prev_rel, answer), (p, rel, x)])
    return found


def structure_walks(kg: KnowledgeGraph, start: str, chain: Sequence[str], rng: random.Random) -> dict[str, list[Triple]]:
    """Walks from `start` of the chain's length that end with its last relation; for chains of 3 or
    more hops, also walks that begin with its first relation, which deviate in the middle of the
    chain, so neither end of the chain alone tells the answer apart."""
    hops = len(chain)
    walks = start_walks(kg, start, hops, rng, avoid=set(), last_relation=chain[-1])
    if hops >= 3:
        for x, edges in start_walks(kg, start, hops, rng, avoid=set(), last_relation=chain[-1],
                                    first_relation=chain[0], tries=240).items():
            walks.setdefault(x, edges)
        # The chain's own relations in another order (last one kept): a rule that reads the chain
        # as a bag of relations, ignoring their order, cannot tell these decoys from the answer.
        seen = {tuple(chain)}
        for _ in range(4):
            head = list(chain[:-1])
            rng.shuffle(head)
            order = (*head, chain[-1])
            if order in seen:
                continue
            seen.add(order)
            for x, edges in start_walks(kg, start, hops, rng, avoid=set(), last_relation=chain[-1],
                                        relations=order, tries=30).items():
                walks.setdefault(x, edges)
    return walks


_IMAGES: dict[int, tuple[weakref.ref, dict[tuple[str, ...], frozenset[str]]]] = {}
IMAGE_LAYER_CAP = 5_000  # image-matched walks: at most this many entities per breadth-first layer
IMAGE_CACHE_CHAINS = 4_096  # chains whose image is kept per graph (oldest dropped first)
IMAGE_DECOYS_MAX = 24  # image-matched candidates per item: the balancer tries every set of three


def chain_image(kg: KnowledgeGraph, chain: Sequence[str], heads: dict[str, list[str]] | None = None) -> frozenset[str]:
    """Every entity the chain reaches from some entity of the graph (cached per graph and chain;
    `heads`: heads_by_relation(kg), when the caller has it)."""
    images = _graph_cache(_IMAGES, kg)
    key = tuple(chain)
    if key not in images:
        frontier = set(heads[chain[0]]) if heads is not None and chain[0] in heads else {
            h for h in kg.entities if kg.successors(h, chain[0])}
        for rel in chain:
            frontier = {t for node in frontier for t in kg.successors(node, rel)}
        if len(images) >= IMAGE_CACHE_CHAINS:
            images.pop(next(iter(images)))
        images[key] = frozenset(frontier)
    return images[key]


def image_matched_walks(kg: KnowledgeGraph, start: str, chain: Sequence[str], rng: random.Random,
                        heads: dict[str, list[str]] | None = None,
                        reached: set[str] | frozenset[str] = frozenset()) -> dict[str, list[Triple]]:
    """Structure-matched decoys that also lie in the chain's image: entities a walk of the chain's
    length from `start` reaches by the chain's last relation, and that the stated chain reaches from
    some other entity. On graphs whose hubs funnel chains (Freebase-style), the answer is always in
    the chain's image and the plain structure walks rarely are, so a rule that knows which entities
    the chain can reach anywhere (chain_image_any_start, chain_from_other_entities) picks the answer;
    decoys from the image leave it nothing to tell. `reached`: what the chain reaches from the start
    (the answers, never decoys). Found breadth-first (a layer above
    IMAGE_LAYER_CAP entities is sampled down), one walk kept per entity, at most IMAGE_DECOYS_MAX
    (sampled down: the balancer scores every set of three of an item's candidates)."""
    image = chain_image(kg, chain, heads)
    layer: dict[str, list[Triple]] = {start: []}
    seen = {start}
    for _ in range(len(chain) - 1):
        nxt: dict[str, list[Triple]] = {}
        for node, edges in layer.items():
            for rel, tails in kg.out_relations(node).items():
                for t in tails:
                    if t not in seen and t not in nxt:
                        nxt[t] = [*edges, (node, rel, t)]
        if len(nxt) > IMAGE_LAYER_CAP:
            keep = rng.sample(sorted(nxt), IMAGE_LAYER_CAP)
            nxt = {k: nxt[k] for k in keep}
        seen |= set(nxt)
        layer = nxt
    found: dict[str, list[Triple]] = {}
    for node, edges in layer.items():
        on_walk = {start, *(t for _, _, t in edges)}
        for t in kg.successors(node, chain[-1]):
            if t in image and t not in on_walk and t not in found and t not in reached:
                found[t] = [*edges, (node, chain[-1], t)]
    if len(found) > IMAGE_DECOYS_MAX:  # drawn only then: smaller pools leave the random stream as it was
        found = {k: found[k] for k in rng.sample(sorted(found), IMAGE_DECOYS_MAX)}
    return found


def find_candidates(kg: KnowledgeGraph, start: str, path_edges: list[Triple], reached: set[str], question: str,
                    rng: random.Random, *, strict: bool, same_type: bool, heads: dict[str, list[str]],
                    mentions: Callable[[str, str], bool],
                    walks: dict[str, list[Triple]] | None = None, image_decoys: bool = False) -> list[Candidate]:
    """Eligible candidates for one gold path, structure-matched first (from `walks` when given:
    walks already sampled from the start that end with the chain's last relation; with
    `image_decoys`, also those of them in the chain's image found breadth-first, see
    `image_matched_walks`).

    Eligible: outside the chain's answer set, not on the gold path, a tail of the last stated
    relation somewhere in the graph, of the answer's type (when the graph has types and
    `same_type`), with a label of its own that the question does not name.
    """
    chain = [r for _, r, _ in path_edges]
    gold = {start} | {t for _, _, t in path_edges}
    answer = path_edges[-1][2]
    answer_type = kg.entities[answer].type
    labels = {kg.label(answer).lower()}
    out: list[Candidate] = []

    def consider(found: dict[str, list[Triple]], kind: str) -> None:
        for x, edges in found.items():
            ent = kg.entities[x]
            if x in reached or x in gold or not kg.predecessors(x, chain[-1]):
                continue
            if same_type and answer_type is not None and ent.type != answer_type:
                continue
            if ent.label.lower() in labels or mentions(question, ent.label):
                continue
            if answer in {t for _, _, t in edges[:-1]}:  # a decoy never runs through the answer
                continue
            labels.add(ent.label.lower())
            out.append(Candidate(x, edges, kind))

    hops = len(path_edges)
    consider(walks if walks is not None else structure_walks(kg, start, chain, rng), "structure")
    if image_decoys:
        consider(image_matched_walks(kg, start, chain, rng, heads, reached), "structure")
    if not strict:
        consider(start_walks(kg, start, hops, rng, avoid={answer}, last_relation=None), "walk")
        consider(chain_from_elsewhere(kg, start, chain, rng, heads), "chain")
        if len(out) < 3:
            consider(near_misses(kg, path_edges, rng), "near")
    return out


def context_edges(plan: ItemPlan, chosen: Sequence[Candidate], limit: int) -> list[Triple]:
    """Open mode: the gold path and each distractor's decoy path (deduplicated, at most `limit`)."""
    edges: dict[Triple, None] = dict.fromkeys(plan.path_edges)
    decoys = [list(c.edges) for c in chosen]
    # Trim decoys from their far end only when the budget is short: the edges that enter an
    # option are what make it look like an answer.
    while sum(len(d) for d in decoys) + len(edges) > limit and any(len(d) > 1 for d in decoys):
        longest = max(decoys, key=len)
        longest.pop(0)
    for d in decoys:
        for e in d:
            if len(edges) < limit:
                edges.setdefault(e)
    return list(edges)


def branch_facts(kg: KnowledgeGraph, plan: ItemPlan, chosen: Sequence[Candidate], context: list[Triple],
                 rng: random.Random, limit: int) -> list[Triple]:
    """Training contexts: one extra fact leaving each gold-path entity by another relation.

    Short chains on a typed graph rarely have structure-matched decoys, so their contexts would
    give each entity a single way on and a model could follow "the" edge without reading the
    relation. A side branch at every hop (to an entity that is no option) makes it read the
    relation at every step. Held-out splits never get these: their decoys branch already and their
    contexts are exactly what the balancer measured.
    """
    options = {plan.answer, *(c.entity for c in chosen)}
    present = set(context)
    mentioned = {x for h, _, t in context for x in (h, t)}
    out = list(context)
    for (node, rel, _), _i in zip(plan.path_edges, range(len(plan.path_edges)), strict=True):
        if len(out) >= limit:
            break
        side = [(node, r, t) for r, ts in kg.out_relations(node).items() if r != rel for t in ts
                if t not in options and t not in mentioned and (node, r, t) not in present]
        if side:
            edge = side[rng.randrange(len(side))]
            out.append(edge)
            present.add(edge)
            mentioned.add(edge[2])
    return out


def _depths(start: str, candidate: Candidate) -> dict[str, int] | None:
    """Entity -> depth below `start` on the candidate's decoy walk (None: the decoy is no walk from
    the start, e.g. the chain followed from elsewhere)."""
    if not candidate.edges or candidate.edges[0][0] != start:
        return None
    return {start: 0, **{t: i for i, (_, _, t) in enumerate(candidate.edges, start=1)}}


def _same_depths(a: dict[str, int] | None, b: dict[str, int] | None) -> bool:
    """Whether two walks put every entity they share at the same depth."""
    if a is None or b is None:
        return True
    return all(a[x] == b[x] for x in a.keys() & b.keys())


class DistractorBalancer:
    """Running win rates of the balanced baselines over a split, and the distractor choice that keeps
    each at chance (1 / options). Candidates of weaker kinds cost a little, so structure-matched
    distractors win ties."""

    def __init__(self, kg: KnowledgeGraph, ctx: BaselineContext, mode: str, max_context_facts: int,
                 k: int = 3, samples: int = 48, layered: bool = False) -> None:
        load_plugins()
        self.layered = layered and mode == "open"  # see choose()
        self.kg = kg
        self.ctx = ctx
        self.mode = mode
        self.limit = max_context_facts
        self.k = k
        self.samples = samples
        # rules that judge option-free items never score the options balanced here
        self.baselines = [b for b in BASELINES.values()
                          if b.balanced and not b.option_free_only and (mode == "open" or not b.open_only)]
        self.sums = Counter()
        self.n = 0

    def view(self, plan: ItemPlan, chosen: Sequence[Candidate], with_context: bool = True) -> ItemView:
        options = (plan.answer, *(c.entity for c in chosen))
        context = tuple(context_edges(plan, chosen, self.limit)) if with_context and self.mode == "open" else ()
        letters = tuple(chr(ord("A") + i) for i in range(len(options)))  # A-D; more for a pool view
        return ItemView(id="draft", start=plan.start, chain=plan.chain, letters=letters,
                        options=options, labels=tuple(self.kg.label(x) for x in options), question=plan.question,
                        hop_len=len(plan.path_edges), context=context)

    def wins(self, view: ItemView | None, pool_scores: dict[str, list[float] | None] | None = None,
             combo: Sequence[int] = ()) -> dict[str, float]:
        """The answer's (option 0's) win share under each balanced baseline. A per-option
        baseline's scores may come from `pool_scores` (what `pool_scores(plan, pool)` returned),
        picked out by `combo`, the distractors' indexes in that pool; `view` (the distractor set's
        item) is needed only by the others."""
        out = {}
        for b in self.baselines:
            if pool_scores is not None and b.name in pool_scores:
                pool = pool_scores[b.name]
                scores = None if pool is None else [pool[0], *(pool[i + 1] for i in combo)]
            else:
                assert view is not None, b.name
                scores = b.scores(view, self.ctx)
            if scores is not None:
                out[b.name] = win_share(scores, 0)
        return out

    def pool_scores(self, plan: ItemPlan, pool: Sequence[Candidate]) -> dict[str, list[float] | None]:
        """Per-option baselines scored once over the answer and the whole pool (answer first):
        the scores of any distractor set are these numbers picked out, so the balancer need not
        call them for each of its ~48 sets (the tests' small closed dataset: 9.0 s -> 8.4 s)."""
        view = self.view(plan, pool, with_context=False)
        return {b.name: b.scores(view, self.ctx) for b in self.baselines if b.per_option}

    def choose(self, plan: ItemPlan, rng: random.Random) -> tuple[list[Candidate], dict[str, float]] | None:
        pool = plan.candidates
        layers: list[dict[str, int] | None] = []
        if self.layered:
            # Open-mode strict splits show every decoy: keep only decoys that put each entity at
            # one depth below the start (as the gold path does), so no decoy runs through another
            # option or gives one a shortcut, and every option is mentioned once, hop_len facts deep.
            gold = {x: i for i, x in enumerate(plan.entities)}
            pool = [c for c in pool if _same_depths(gold, _depths(plan.start, c))]
            layers = [_depths(plan.start, c) for c in pool]
        if len(pool) < self.k:
            return None
        combos = list(itertools.combinations(range(len(pool)), self.k))
        if layers:
            combos = [c for c in combos if all(_same_depths(layers[i], layers[j])
                                                for i, j in itertools.combinations(c, 2))]
            if not combos:
                return None
        if len(combos) > self.samples:
            combos = rng.sample(combos, self.samples)
        target = (self.n + 1) / (self.k + 1)
        best: tuple[float, list[Candidate], dict[str, float]] | None = None
        scored = self.pool_scores(plan, pool)
        # Closed book: every balanced rule scores options one at a time, so no set needs a view.
        per_set = len(scored) < len(self.baselines)
        for combo in combos:
            chosen = [pool[i] for i in combo]
            w = self.wins(self.view(plan, chosen) if per_set else None, scored, combo)
            # Squared: one shortcut far from chance costs more than several slightly off.
            cost = sum((self.sums[name] + x - target) ** 2 for name, x in w.items()) / (self.n + 1)
            cost += 0.05 * sum(KINDS.index(c.kind) for c in chosen)
            if best is None or cost < best[0]:
                best = (cost, chosen, w)
        assert best is not None
        return best[1], best[2]

    def imbalance(self, wins: dict[str, float] | None = None) -> float:
        """Sum over the balanced shortcuts of (running win rate - chance)^2, after `wins` if given."""
        n = self.n + (wins is not None)
        if n == 0:
            return 0.0
        chance = 1 / (self.k + 1)
        names = set(self.sums) | set(wins or {})
        return sum(((self.sums[b] + (wins or {}).get(b, 0.0)) / n - chance) ** 2 for b in names)

    def commit(self, wins: dict[str, float]) -> None:
        self.sums.update(wins)
        self.n += 1

    def rates(self) -> dict[str, float]:
        return {name: s / self.n for name, s in sorted(self.sums.items())} if self.n else {}
