"""Well-posed multi-hop multiple-choice tasks, sampled from a knowledge graph, and their splits.

An item is (start entity, relation chain, gold path, answer, three distractors). It exists only if
following the chain from the start (`KnowledgeGraph.follow`) reaches the answer and none of the
distractors, so the graph determines the answer. Items are found by sampling random walks, never
by enumerating paths, with a bounded number of attempts per item: a 1M-edge graph costs the same
per item as a small one, and a dense graph where few items are well posed yields what it can and
reports, by reason, how many candidates it rejected.

Held out: the held-out splits (``eval``) are drawn first; every later item must differ from every
earlier one in (start, chain), gold path and question text, so no training item shares any of
them with an eval item. Facts (one statement per KG edge) teach every edge; shorter training
questions are steered to cover eval edges too, so closed-book long chains are compositions of
taught facts.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from kgreason.families import DEFAULT_FAMILY, get_family
from kgreason.families.base import name_key
from kgreason.io import InputError, atomic_write_json, atomic_write_jsonl, iter_jsonl
from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import LETTERS, PathStar, Task
from kgreason.tasks.baselines import BaselineContext

# SplitSpec, DEFAULT_SPLITS and the other defaults live in tasks/defaults.py (one declaration for the
# generator, `tasks generate` and the data stage); callers may import them from here too.
from kgreason.tasks.defaults import (
    DEFAULT_SPLITS,
    MODES,
    STRICT_CHOICES,
    TASK_ATTEMPTS_PER_ITEM,
    TASK_COVER_EVAL_EDGES,
    TASK_MAX_CONTEXT_FACTS,
    TASK_MODE,
    TASK_STRICT_DISTRACTORS,
    SplitSpec,
)
from kgreason.tasks.distractors import (
    Candidate,
    DistractorBalancer,
    ItemPlan,
    branch_facts,
    context_edges,
    find_candidates,
    heads_by_relation,
    structure_walks,
)
from kgreason.tasks.format import format_fact, format_prompt, format_question, format_trace, short_trace
from kgreason.tasks.screen import SCREEN_SHARE_OF_LIMIT, screen_held_out

Triple = tuple[str, str, str]


@dataclass
class TaskConfig:
    """Everything generation depends on; the same config and graph give byte-identical files."""

    seed: int = 0
    mode: str = TASK_MODE  # closed: facts must be known; open: a bounded set of facts is in the prompt
    splits: tuple[SplitSpec, ...] = DEFAULT_SPLITS
    max_context_facts: int = TASK_MAX_CONTEXT_FACTS  # open mode: facts in the prompt, gold path included
    attempts_per_item: int = TASK_ATTEMPTS_PER_ITEM  # bounded sampling: candidates tried per wanted item
    max_answer_set: int = 20_000  # reject chains whose answer set grows beyond this (hub explosions)
    same_type_distractors: bool = True  # distractors share the answer's type where types exist
    # Which splits must have structure-matched distractors (see tasks/distractors.py); the others
    # prefer them and fall back to balanced weaker kinds where the graph has none.
    strict_distractors: str = TASK_STRICT_DISTRACTORS
    answer_repeat: float = 4.0  # an entity is a split's gold answer at most ~this x the mean share
    overgenerate: float = 2.0  # strict splits: spare gold paths, as a share of the split's size
    balance_tolerance: float = 0.0005  # strict splits skip items that raise the shortcut imbalance by more
    exchangeable_gold: bool = True  # ask about a random walk of the item's pool (see exchange_gold)
    # Also draw decoys from the chain's image (tasks/distractors.py, image_matched_walks): for graphs
    # whose hubs funnel chains. kgreason.tasks.build turns it on when the chain-image rules refuse.
    image_decoys: bool = False
    cover_eval_edges: float = TASK_COVER_EVAL_EDGES  # share of each shorter training split steered onto eval edges
    facts_name: str = "facts"
    family: str = DEFAULT_FAMILY  # how items are asked and answered (kgreason.families)
    # The shortcut limit the data will be judged by (`--max-shortcut`; None: the family's): a screened
    # split (tasks/screen.py) is held to half of it.
    max_shortcut: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {self.mode!r}")
        names = [s.name for s in self.splits]
        if len(set(names)) != len(names) or self.facts_name in names:
            raise InputError(f"split names must be distinct and differ from {self.facts_name!r}: {names}")
        for s in self.splits:
            if s.size < 0 or s.min_hops < 1 or s.max_hops < s.min_hops:
                raise InputError(f"split {s.name!r}: need size >= 0 and 1 <= min_hops <= max_hops, got {s}")
        if self.strict_distractors not in STRICT_CHOICES:
            raise InputError(f"strict_distractors must be one of {STRICT_CHOICES}, got {self.strict_distractors!r}")
        if self.answer_repeat <= 0:
            raise InputError(f"answer_repeat must be positive, got {self.answer_repeat}")
        if self.max_context_facts < 5:
            raise InputError("max_context_facts must be at least 5 (a 5-hop gold path)")
        get_family(self.family)  # an unknown family is an InputError naming the registered ones

    def to_dict(self) -> dict:
        d = asdict(self)
        d["splits"] = [asdict(s) for s in self.splits]
        if not self.image_decoys:
            del d["image_decoys"]  # recorded only when on: every manifest written before it stays as it was
        if d["family"] == DEFAULT_FAMILY:
            del d["family"]  # manifests of the default family stay what they were before families
        if d["max_shortcut"] is None:
            del d["max_shortcut"]  # recorded only when given, like image_decoys
        return d


@dataclass
class Draft:
    """A well-posed item before letters are assigned."""

    start: str
    path_edges: list[Triple]
    distractors: list[str]
    distractor_edges: dict[str, list[Triple]]  # how each distractor is reached or attached
    shortcut_wins: dict[str, float] = field(default_factory=dict)  # see DistractorBalancer.wins
    distractor_kinds: list[str] = field(default_factory=list)
    context: list[Triple] = field(default_factory=list)  # open mode: gold path and decoy paths

    @property
    def chain(self) -> tuple[str, ...]:
        return tuple(r for _, r, _ in self.path_edges)

    @property
    def entities(self) -> list[str]:
        return [self.start] + [t for _, _, t in self.path_edges]

    @property
    def answer(self) -> str:
        return self.path_edges[-1][2]


@dataclass
class GeneratedDataset:
    splits: dict[str, list[Task]]
    facts: list[dict]
    manifest: dict


@dataclass
class _Keys:
    """What makes two items 'the same question' for held-out purposes."""

    start_chain: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    paths: set[tuple[Triple, ...]] = field(default_factory=set)
    questions: set[str] = field(default_factory=set)


# --- text checks ---------------------------------------------------------------------------------
def shared_entity_names(kg: KnowledgeGraph) -> frozenset[str]:
    """The names (id, label or alias, as `name_key`) that more than one entity goes by."""
    owners: dict[str, str] = {}
    shared: set[str] = set()
    for ent in kg.entities.values():
        for key in {name_key(n) for n in ent.names()}:
            if owners.setdefault(key, ent.id) != ent.id:
                shared.add(key)
    return frozenset(shared)


def mentions(text: str, label: str) -> bool:
    """Whether `label` occurs in `text` as a whole word (case-insensitive)."""
    if label.lower() not in text.lower():  # the common case, without compiling a pattern
        return False
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(label)}(?![A-Za-z0-9])", text, re.IGNORECASE) is not None


# --- graph walking -------------------------------------------------------------------------------
def _pick_unvisited(tails: Sequence[str], visited: set[str], rng: random.Random) -> str | None:
    # Hubs can have 10^5 tails: try a few random picks before filtering the whole list.
    for _ in range(4):
        t = tails[rng.randrange(len(tails))]
        if t not in visited:
            return t
    free = [t for t in tails if t not in visited]
    return rng.choice(free) if free else None


def _step(kg: KnowledgeGraph, node: str, visited: set[str], rng: random.Random,
          relation: str | None = None, avoid: str | None = None) -> Triple | None:
    """One random hop from `node` to an unvisited entity (along `relation` if given, never `avoid`)."""
    out = kg.out_relations(node)
    rels = ([relation] if relation in out else []) if relation is not None else [r for r in out if r != avoid]
    rng.shuffle(rels)
    for rel in rels:
        tail = _pick_unvisited(out[rel], visited, rng)
        if tail is not None:
            return (node, rel, tail)
    return None


def random_walk(kg: KnowledgeGraph, start: str, hops: int, rng: random.Random,
                chain: Sequence[str | None] | None = None) -> list[Triple] | None:
    """A walk that never revisits an entity; relation i is `chain[i]` when given, else random."""
    visited = {start}
    node = start
    edges: list[Triple] = []
    for i in range(hops):
        edge = _step(kg, node, visited, rng, relation=chain[i] if chain else None)
        if edge is None:
            return None
        edges.append(edge)
        node = edge[2]
        visited.add(node)
    return edges


def narrowing_walk(kg: KnowledgeGraph, start: str, hops: int, rng: random.Random, cap: int,
                   first: Triple | None = None,
                   images: dict[tuple[frozenset[str], str], frozenset[str] | None] | None = None,
                   ) -> list[Triple] | None:
    """A walk that never revisits an entity and whose chain reaches its end and nothing else from
    `start` (None when this draw dead-ends): for families whose answer must be unique.

    Random walks rarely give one (6% of 4-hop and 2% of 5-hop walks on the built-in graph), so this
    one follows the chain's image (every entity the relations so far reach from the start) as it
    goes: each hop picks a relation with a weight of one over the image it leads to, so hops that
    keep the image small are likelier, and the last hop only takes a relation that leaves one
    entity. The tail is uniform among the node's unvisited tails of that relation. `first`: the
    walk's given first edge (from `start`). `images`: a memo of image steps (image, relation) ->
    next image, or None above `cap`, shared by the walks of one dataset with the same `cap`
    (walks from one start repeat the same steps: free-form data at the default sizes took 34.6 s
    without it and 31.5 s with it on an AMD EPYC with AVX2).
    """
    image: frozenset[str] = frozenset((start,))
    visited = {start}
    node = start
    edges: list[Triple] = []
    if first is not None:
        image = frozenset(kg.successors(start, first[1]))
        if hops == 1 and len(image) != 1:
            return None
        edges, node = [first], first[2]
        visited.add(node)
    memo = {} if images is None else images
    for i in range(len(edges), hops):
        last = i == hops - 1
        out = kg.out_relations(node)
        choices: list[tuple[str, list[str], frozenset[str]]] = []
        for rel in sorted(out):
            tails = [t for t in out[rel] if t not in visited]
            if not tails:
                continue
            key = (image, rel)
            if key in memo:
                nxt = memo[key]
            else:
                nxt = _image_step(kg, image, rel, cap)
                # Only small images are kept, in a bounded memo: at most ~50k x 2 x 64 ids, however
                # large `cap` and the graph (images near `cap` are rare and rarely repeat).
                if len(image) <= _MEMO_IMAGE and (nxt is None or len(nxt) <= _MEMO_IMAGE):
                    if len(memo) >= _MEMO_ENTRIES:
                        memo.clear()
                    memo[key] = nxt
            if nxt is None or (last and len(nxt) != 1):
                continue
            choices.append((rel, tails, nxt))
        if not choices:
            return None
        weights = [1.0 / len(nxt) for _, _, nxt in choices]
        rel, tails, image = rng.choices(choices, weights)[0]
        tail = tails[rng.randrange(len(tails))]
        edges.append((node, rel, tail))
        node = tail
        visited.add(tail)
    return edges


_MEMO_IMAGE, _MEMO_ENTRIES = 64, 50_000


def _image_step(kg: KnowledgeGraph, image: frozenset[str], rel: str, cap: int) -> frozenset[str] | None:
    """Every entity `rel` reaches from some entity of `image`; None once that exceeds `cap`."""
    nxt: set[str] = set()
    for x in image:
        nxt.update(kg.successors(x, rel))
        if len(nxt) > cap:
            return None
    return frozenset(nxt)


def follow_capped(kg: KnowledgeGraph, start: str, chain: Sequence[str], cap: int) -> set[str] | None:
    """`kg.follow`, but None once a frontier exceeds `cap` entities (so hubs cannot stall us)."""
    frontier = {start}
    for rel in chain:
        nxt: set[str] = set()
        for node in frontier:
            nxt.update(kg.successors(node, rel))
        if len(nxt) > cap:
            return None
        frontier = nxt
        if not frontier:
            break
    return frontier


def find_simple_path(kg: KnowledgeGraph, start: str, chain: Sequence[str], rng: random.Random,
                     max_expansions: int = 5000) -> list[Triple] | None:
    """A random path from `start` along `chain` that revisits no entity (bounded DFS), or None."""
    budget = [max_expansions]

    def dfs(node: str, depth: int, visited: set[str]) -> list[Triple] | None:
        if depth == len(chain):
            return []
        tails = [t for t in kg.successors(node, chain[depth]) if t not in visited]
        rng.shuffle(tails)
        for t in tails:
            budget[0] -= 1
            if budget[0] < 0:
                return None
            rest = dfs(t, depth + 1, visited | {t})
            if rest is not None:
                return [(node, chain[depth], t), *rest]
        return None

    return dfs(start, 0, {start})


# --- one item --------------------------------------------------------------------------------------
def plan_item(kg: KnowledgeGraph, start: str, path_edges: list[Triple], rng: random.Random, config: TaskConfig,
              *, strict: bool, heads: dict[str, list[str]], shared_names: frozenset[str] = frozenset()) -> ItemPlan | str:
    """A well-posed item with at least three eligible distractor candidates, or the reason not.

    With `config.exchangeable_gold` the item asked about is a uniformly chosen walk of a pool that
    holds `path_edges` and walks of the same length from the same start ending with the same
    relation, sampled without looking at the gold path. Any walk whose own chain leaves at least
    three eligible others can be asked about; taking the first such walk in a random order picks
    uniformly among them. That makes the answer exchangeable with its distractors as far as the
    pool goes: whatever a rule reads off an endpoint without the chain (walk probability,
    distance, degree), the answer is no likelier than a distractor to have it. Always asking
    about the first walk drawn makes the distractors the walks that chain happens not to reach.
    What the pool cannot even out (the answer's chain reaching it and not the others, which
    favours well-reached answers) the distractor balancer and the split's spare items handle.

    A family without options (`TaskFamily.unique_answer`) asks only about walks whose chain reaches
    their answer and nothing else from the start, with a name no other entity has (`shared_names`,
    from `shared_entity_names`): then the name alone answers the question, and only it does.
    """
    unique = get_family(config.family).unique_answer
    if len({start, *(t for _, _, t in path_edges)}) != len(path_edges) + 1:
        return "path_revisits_entity"
    chain = [r for _, r, _ in path_edges]
    if unique and len(follow_capped(kg, start, chain, config.max_answer_set) or ()) != 1:
        # Most long chains reach several entities: checked before the walk pool, which costs more.
        return "answer_not_unique"
    pool: dict[str, list[Triple]] | None = None
    order: list[tuple[str, list[Triple]]] = [(path_edges[-1][2], path_edges)]
    if config.exchangeable_gold:
        pool = structure_walks(kg, start, chain, rng)
        pool[path_edges[-1][2]] = path_edges
        order = list(pool.items())
        rng.shuffle(order)
    reason = ""
    for answer, edges in order:
        if len({start, *(t for _, _, t in edges)}) != len(edges) + 1:
            continue
        walk_chain = [r for _, r, _ in edges]
        reached = follow_capped(kg, start, walk_chain, config.max_answer_set)
        if reached is None:
            reason = reason or "answer_set_too_large"
            continue
        if unique and len(reached) != 1:
            reason = reason or "answer_not_unique"
            continue
        if unique and any(name_key(n) in shared_names for n in kg.entities[answer].names()):
            reason = reason or "answer_name_shared"
            continue
        question = format_question(kg, start, walk_chain)
        if mentions(question, kg.label(answer)):
            reason = reason or "answer_named_in_question"
            continue
        others = {x: e for x, e in pool.items() if x != answer} if pool is not None else None
        candidates = find_candidates(kg, start, list(edges), reached, question, rng, strict=strict,
                                     same_type=config.same_type_distractors, heads=heads, mentions=mentions,
                                     walks=others, image_decoys=config.image_decoys)
        if len(candidates) >= 3:
            return ItemPlan(start=start, path_edges=list(edges), question=question, candidates=candidates)
    return reason or ("no_structure_matched_distractors" if strict else "too_few_distractors")


def draft_from_plan(plan: ItemPlan, balancer: DistractorBalancer, rng: random.Random) -> Draft | None:
    """Choose the plan's distractors with the split's balancer (committing its win rates)."""
    picked = balancer.choose(plan, rng)
    if picked is None:
        return None
    chosen, wins = picked
    balancer.commit(wins)
    return draft_from_choice(plan, chosen, wins, balancer)


def draft_from_choice(plan: ItemPlan, chosen: list[Candidate], wins: dict[str, float],
                      balancer: DistractorBalancer, branches: random.Random | None = None) -> Draft:
    """The draft for a chosen distractor set; `branches` (an rng) adds side-branch facts (training)."""
    context = context_edges(plan, chosen, balancer.limit) if balancer.mode == "open" else []
    if context and branches is not None:
        context = branch_facts(balancer.kg, plan, chosen, context, branches, balancer.limit)
    return Draft(start=plan.start, path_edges=plan.path_edges, distractors=[c.entity for c in chosen],
                 distractor_edges={c.entity: c.edges for c in chosen}, shortcut_wins=wins,
                 distractor_kinds=[c.kind for c in chosen], context=context)


def finalize_task(kg: KnowledgeGraph, draft: Draft, letter: str, rng: random.Random, *, task_id: str,
                  split: str, mode: str = "closed", seed: int | None = None, family: str = DEFAULT_FAMILY) -> Task:
    """Place the answer at `letter`, the distractors in random order elsewhere, and write the texts.

    Open mode shuffles the context facts, so neither fact order nor option order carries a signal.
    A family that offers no options (free form) keeps the distractors only as the decoy walks in
    the context facts: the prompt names no candidate, and the answer line names the answer.
    """
    fam = get_family(family)
    others = list(draft.distractors)
    rng.shuffle(others)
    option_ids: dict[str, str] = {}
    for lt in LETTERS:
        option_ids[lt] = draft.answer if lt == letter else others.pop()
    if not fam.offers_options:
        option_ids, letter = {}, ""
    options = {lt: kg.label(x) for lt, x in option_ids.items()}
    question = format_question(kg, draft.start, draft.chain)
    context: list[str] = []
    if mode == "open":
        edges = list(draft.context)
        rng.shuffle(edges)
        context = [format_fact(kg, e) for e in edges]
    return Task(
        id=task_id,
        split=split,
        hop_len=len(draft.path_edges),
        question=question,
        options=options,
        answer_star=letter,
        path_star=PathStar(entities=draft.entities, edges=list(draft.path_edges)),
        prompt=format_prompt(question, options, context, family),
        start=draft.start,
        relation_chain=list(draft.chain),
        option_ids=option_ids,
        answer_id=draft.answer,
        mode=mode,
        reference_trace=format_trace(kg, draft.path_edges),
        short_trace=short_trace(kg, draft.path_edges),
        context_facts=context,
        seed=seed,
        family=fam.name,
        answer_label="" if fam.offers_options else kg.label(draft.answer),
    )


def try_make_task(kg: KnowledgeGraph, start: str, chain: Sequence[str], rng: random.Random, *,
                  mode: str = "closed", task_id: str = "custom-0", split: str = "custom",
                  letter: str | None = None, config: TaskConfig | None = None,
                  heads: dict[str, list[str]] | None = None, family: str = DEFAULT_FAMILY) -> tuple[Task | None, str]:
    """One item from a user-chosen start and relation chain: (task, "ok") or (None, reason).

    Structure-matched distractors are preferred; a single item may fall back to weaker ones.
    """
    config = config or TaskConfig(mode=mode, family=family)
    if start not in kg.entities:
        return None, f"unknown start entity {start!r}"
    unknown = [r for r in chain if r not in kg.relations]
    if unknown:
        return None, f"unknown relation(s) {unknown}"
    if not chain:
        return None, "empty relation chain"
    reason = "no_path_along_chain"
    heads = heads if heads is not None else heads_by_relation(kg)
    shared_names = shared_entity_names(kg) if get_family(config.family).unique_answer else frozenset()
    for _ in range(5):
        path = find_simple_path(kg, start, chain, rng)
        if path is None:
            break
        plan = plan_item(kg, start, path, rng, config, strict=False, heads=heads, shared_names=shared_names)
        if isinstance(plan, str):
            reason = plan
            continue
        balancer = DistractorBalancer(kg, BaselineContext(kg), mode, config.max_context_facts)
        draft = draft_from_plan(plan, balancer, rng)
        if draft is not None:
            letter = letter or LETTERS[rng.randrange(len(LETTERS))]
            return finalize_task(kg, draft, letter, rng, task_id=task_id, split=split, mode=mode,
                                 family=config.family), "ok"
    return None, reason


def make_task(kg: KnowledgeGraph, start: str, chain: Sequence[str], rng: random.Random, *,
              mode: str = "closed", task_id: str = "custom-0", split: str = "custom",
              reasons: list[str] | None = None, family: str = DEFAULT_FAMILY) -> Task | None:
    """One well-posed item for a start and relation chain (the demo's Try It), or None.

    When it returns None the reason is appended to `reasons` (if given); `try_make_task`
    returns it directly.
    """
    task, reason = try_make_task(kg, start, chain, rng, mode=mode, task_id=task_id, split=split, family=family)
    if task is None and reasons is not None:
        reasons.append(reason)
    return task


# --- splits --------------------------------------------------------------------------------------
class _SplitGenerator:
    """Phase 1 of generation: gold paths with their distractor candidates, split by split."""

    def __init__(self, kg: KnowledgeGraph, config: TaskConfig) -> None:
        self.kg = kg
        self.config = config
        self.rng = random.Random(config.seed)
        self.keys = _Keys()
        self.heads = heads_by_relation(kg)
        self.family = get_family(config.family)
        self._walkers: list[list[str]] | None = None
        self.shared_names = shared_entity_names(kg) if self.family.unique_answer else frozenset()
        self.startable = [e for e in kg.entities if kg.out_relations(e)]
        self.images: dict[tuple[frozenset[str], str], frozenset[str] | None] = {}  # narrowing_walk's memo
        self.n_tails = sum(1 for e in kg.entities if kg.in_relations(e))
        if not self.startable:
            raise InputError("the graph has no entity with an outgoing edge")

    def _claim(self, plan: ItemPlan) -> bool:
        sc = (plan.start, plan.chain)
        path = tuple(plan.path_edges)
        if sc in self.keys.start_chain or path in self.keys.paths or plan.question in self.keys.questions:
            return False
        self.keys.start_chain.add(sc)
        self.keys.paths.add(path)
        self.keys.questions.add(plan.question)
        return True

    def _attempt(self, hops: int, rejected: Counter, answers: Counter, cap: int, strict: bool,
                 first: Triple | None = None) -> ItemPlan | None:
        if self.family.unique_answer:
            if first is None:
                starts = self.starts_walking(hops)
                if not starts:
                    rejected["walk_dead_end"] += 1
                    return None
            start = first[0] if first is not None else starts[self.rng.randrange(len(starts))]
            path = narrowing_walk(self.kg, start, hops, self.rng, self.config.max_answer_set, first,
                                  images=self.images)
        elif first is None:
            start = self.startable[self.rng.randrange(len(self.startable))]
            path = random_walk(self.kg, start, hops, self.rng)
        else:
            start = first[0]
            rest = random_walk(self.kg, first[2], hops - 1, self.rng)
            path = None if rest is None or start in {t for _, _, t in rest} else [first, *rest]
        if path is None:
            rejected["walk_dead_end"] += 1
            return None
        chain = tuple(r for _, r, _ in path)
        if (start, chain) in self.keys.start_chain:
            rejected["duplicate_start_chain"] += 1
            return None
        plan = plan_item(self.kg, start, path, self.rng, self.config, strict=strict, heads=self.heads,
                         shared_names=self.shared_names)
        if isinstance(plan, str):
            rejected[plan] += 1
            return None
        if answers[plan.answer] >= cap:
            # Random walks pile up on a few hubs; capping repeats keeps an answer prior from forming.
            rejected["answer_repeated"] += 1
            return None
        if not self._claim(plan):
            rejected["duplicate_path_or_question"] += 1
            return None
        answers[plan.answer] += 1
        return plan

    def starts_walking(self, hops: int) -> list[str]:
        """The entities with a walk of `hops` edges (revisits allowed, so a superset of those with a
        path): the narrowing walk starts there, not where no chain of that length begins."""
        if self._walkers is None:
            can = [set(self.kg.entities)]  # can[k]: entities with a walk of k edges
            for _ in range(max(s.max_hops for s in self.config.splits)):
                can.append({e for e in can[-1] if any(t in can[-1] for t in self.kg.successors(e))})
            self._walkers = [[e for e in self.startable if e in c] for c in can]
        return self._walkers[min(hops, len(self._walkers) - 1)]

    def strict(self, spec: SplitSpec) -> bool:
        if spec.strict is not None:
            return spec.strict
        return self.config.strict_distractors == "all" or spec.held_out

    def answer_cap(self, spec: SplitSpec) -> int:
        return max(2, math.ceil(self.config.answer_repeat * spec.size / max(1, self.n_tails)))

    def plan_split(self, spec: SplitSpec, cover: list[Triple]) -> tuple[list[ItemPlan], Counter]:
        """Gold paths with candidates for `spec`; strict splits get `overgenerate` spares so that
        phase 2 can skip items that would push a shortcut above chance."""
        hops = spec.hop_lengths()
        extra = 1.0 + (self.config.overgenerate if self.strict(spec) else 0.0)
        size = math.ceil(spec.size * extra)
        targets = {h: size // len(hops) + (1 if i < size % len(hops) else 0) for i, h in enumerate(hops)}
        made: dict[int, list[ItemPlan]] = {h: [] for h in hops}
        rejected: Counter = Counter()
        answers: Counter = Counter()
        strict, cap = self.strict(spec), self.answer_cap(spec)
        quota = int(self.config.cover_eval_edges * spec.size) if cover else 0
        for edge in cover:  # steer part of a shorter training split onto eval edges
            open_hops = [h for h in targets if len(made[h]) < targets[h]]
            if quota <= 0 or not open_hops:
                break
            h = max(open_hops, key=lambda x: targets[x] - len(made[x]))
            for _ in range(3):
                plan = self._attempt(h, rejected, answers, cap, strict, first=edge)
                if plan is not None:
                    made[h].append(plan)
                    quota -= 1
                    break
        for h in hops:
            budget = self.config.attempts_per_item * self.family.attempts_factor * max(0, targets[h] - len(made[h]))
            while len(made[h]) < targets[h] and budget > 0:
                budget -= 1
                plan = self._attempt(h, rejected, answers, cap, strict)
                if plan is not None:
                    made[h].append(plan)
        plans = [p for h in hops for p in made[h]]
        self.rng.shuffle(plans)
        return plans, rejected

    def choose_split(self, spec: SplitSpec, plans: list[ItemPlan], balancer: DistractorBalancer,
                     rejected: Counter, keep_spares: bool = False) -> list[Draft]:
        """Phase 2: distractors for each plan; spare plans let a strict split skip an item whose best
        distractor set would still push a balanced shortcut's running rate above chance.
        `keep_spares`: draft every plan, past the split's size, none skipped for balance (for
        tasks/screen.py to choose from)."""
        quota = split_quota(spec)
        left = Counter(len(p.path_edges) for p in plans)
        drafts: list[Draft] = []
        for plan in plans:
            h = len(plan.path_edges)
            left[h] -= 1
            if quota[h] <= 0 and not keep_spares:
                continue
            picked = balancer.choose(plan, self.rng)
            if picked is None:  # open-mode strict splits: no three decoys that keep one depth per entity
                rejected["crossing_decoys" if balancer.layered else "too_few_distractors"] += 1
                continue
            chosen, wins = picked
            # enough plans of this length remain to skip this one; a screened split (keep_spares) is
            # closed-book free form, whose decoys no prompt shows: the screen judges its items instead
            spare = left[h] >= quota[h] and not keep_spares
            if spare and balancer.n >= 8 and balancer.imbalance(wins) > balancer.imbalance() + self.config.balance_tolerance:
                rejected["shortcut_balance"] += 1
                continue
            balancer.commit(wins)
            drafts.append(draft_from_choice(plan, chosen, wins, balancer,
                                            branches=None if self.strict(spec) else self.rng))
            quota[h] -= 1
        return drafts


def split_quota(spec: SplitSpec) -> dict[int, int]:
    """Items per hop length: the split's size shared evenly, the remainder to the shortest."""
    hops = spec.hop_lengths()
    return {h: spec.size // len(hops) + (1 if i < spec.size % len(hops) else 0) for i, h in enumerate(hops)}


def _balanced_letters(n: int, rng: random.Random) -> list[str]:
    """Exactly balanced letters (counts differ by at most one), in random order."""
    letters = [LETTERS[i % len(LETTERS)] for i in range(n)]
    rng.shuffle(letters)
    return letters


class EmptyHeldOutSplit(InputError):
    """A held-out split asked for items got none: there is no dataset to write."""

    def __init__(self, split: str, rejections: Counter) -> None:
        why = ", ".join(f"{k} {v}" for k, v in rejections.most_common()) or "no candidates"
        super().__init__(f"the graph gives no well-posed item for the held-out split {split!r} (rejected: {why})")
        self.split = split


def generate(kg: KnowledgeGraph, config: TaskConfig | None = None, progress: bool = False,
             with_facts: bool = True, fail_on_empty_held_out: bool = False) -> GeneratedDataset:
    """All splits, the facts (unless `with_facts` is False), and a manifest (config, counts,
    rejections by reason, eval-edge coverage, distractor kinds, balanced shortcut rates, the names
    of the balanced baselines).

    With `fail_on_empty_held_out`, a held-out split with a positive size that finds no gold path
    raises EmptyHeldOutSplit as soon as it is planned (held-out splits come first), instead of
    after the training splits, which on a graph this poor can take long.

    Two phases: first every split's gold paths and distractor candidates (held-out splits first,
    so they claim their keys), then each split's distractors, chosen knowing how often each entity
    is a gold answer in the training splits, so the answer prior is balanced like every other
    shortcut.
    """
    config = config or TaskConfig()
    refuse_shared_phrases(kg)
    gen = _SplitGenerator(kg, config)
    order = sorted(config.splits, key=lambda s: not s.held_out)  # held-out splits claim keys first
    held_out_min = min((s.min_hops for s in config.splits if s.held_out), default=None)
    eval_edges: list[Triple] = []
    plans: dict[str, list[ItemPlan]] = {}
    rejections: dict[str, Counter] = {}
    iterator: Iterable[SplitSpec] = order
    if progress:
        from kgreason.console import track  # tqdm on a terminal, plain lines in a log file

        iterator = track(order, "splits", unit="split")
    for spec in iterator:
        shorter = held_out_min is not None and not spec.held_out and spec.max_hops < held_out_min
        cover = _shuffled_unique(eval_edges, gen.rng) if shorter else []
        plans[spec.name], rejections[spec.name] = gen.plan_split(spec, cover)
        if fail_on_empty_held_out and spec.held_out and spec.size > 0 and not plans[spec.name]:
            raise EmptyHeldOutSplit(spec.name, rejections[spec.name])
        if spec.held_out:
            eval_edges.extend(e for p in plans[spec.name] for e in p.path_edges)
    train_answers = Counter(p.answer for s in config.splits if not s.held_out for p in plans[s.name])
    baseline_ctx = BaselineContext(kg, train_answers=train_answers)
    splits: dict[str, list[Task]] = {}
    balance: dict[str, dict] = {}
    balanced: set[str] = set()
    limit = config.max_shortcut if config.max_shortcut is not None else gen.family.max_shortcut
    # Training splits choose first: held-out splits then balance against how often each entity
    # was offered (and correct) in training as well.
    for spec in sorted(config.splits, key=lambda s: s.held_out):
        if spec.held_out and baseline_ctx.train_options is None:
            baseline_ctx.train_options = Counter(x for name, tasks in splits.items()
                                                 for t in tasks for x in t.option_ids.values())
        balancer = DistractorBalancer(kg, baseline_ctx, config.mode, config.max_context_facts,
                                      layered=gen.strict(spec))
        balanced.update(b.name for b in balancer.baselines)
        # A family without options has no decoys to balance its rules with: its closed-book held-out
        # split keeps spares and is screened item by item instead (tasks/screen.py, which says why
        # open book is not).
        screen = spec.held_out and not gen.family.offers_options and config.mode == "closed"
        drafts = gen.choose_split(spec, plans[spec.name], balancer, rejections[spec.name], keep_spares=screen)
        letters = _balanced_letters(len(drafts), gen.rng)
        tasks = [
            finalize_task(kg, d, lt, gen.rng, task_id=f"{spec.name}-{i:05d}", split=spec.name, mode=config.mode,
                          seed=config.seed, family=config.family)
            for i, (d, lt) in enumerate(zip(drafts, letters, strict=True))
        ]
        if screen:
            train = [t for s in config.splits if not s.held_out for t in splits.get(s.name, [])]
            kept = screen_held_out(kg, tasks, split_quota(spec), train, limit, rejections[spec.name])
            tasks = [replace(t, id=f"{spec.name}-{i:05d}") for i, t in enumerate(kept)]
        splits[spec.name] = tasks
        balance[spec.name] = {
            "strict": gen.strict(spec),
            "distractor_kinds": dict(sorted(Counter(k for d in drafts for k in d.distractor_kinds).items())),
            "expected_shortcut_rates": {k: round(v, 4) for k, v in balancer.rates().items()},
        }
        if screen:  # each screened rule answers at most this share of the split's items, plus one item
            balance[spec.name]["screened_to"] = round(SCREEN_SHARE_OF_LIMIT * limit, 6)
    splits = {s.name: splits[s.name] for s in config.splits}  # file order as configured
    facts = fact_records(kg) if with_facts else []
    manifest = _manifest(kg, config, splits, facts, {k: dict(sorted(v.items())) for k, v in rejections.items()})
    manifest["distractors"] = balance
    # A baseline plugin joins the balancer, so it changes what the same graph and seed give: the
    # manifest names every baseline the distractors were balanced against, to make that visible.
    manifest["balanced_baselines"] = sorted(balanced)
    return GeneratedDataset(splits=splits, facts=facts, manifest=manifest)


def _shuffled_unique(edges: list[Triple], rng: random.Random) -> list[Triple]:
    unique = list(dict.fromkeys(edges))
    rng.shuffle(unique)
    return unique


def shared_phrases(kg: KnowledgeGraph) -> dict[str, list[str]]:
    """phrase -> the relations (2 or more, sorted) that a question would name with it."""
    by_phrase: dict[str, list[str]] = {}
    for rel in kg.relations.values():
        by_phrase.setdefault(" ".join(rel.phrase.lower().split()), []).append(rel.id)
    return {p: sorted(ids) for p, ids in by_phrase.items() if len(ids) > 1}


def refuse_shared_phrases(kg: KnowledgeGraph) -> None:
    """InputError when two relations read the same: a question names its chain by phrases, so an
    answer unique along the relations' ids can have a rival along the same words. Measured on
    FB15k-237 as first imported (37 phrases shared, e.g. "has the genre" for a film's and a TV
    programme's genre): 45 of 300 held-out items had two options the question, as written, reaches."""
    shared = shared_phrases(kg)
    if not shared:
        return
    phrase, ids = next(iter(sorted(shared.items())))
    raise InputError(
        f"{kg.name or 'the graph'}: {len(shared)} relation phrase(s) name more than one relation (e.g. {phrase!r}: "
        f"{', '.join(ids[:4])}{', ...' if len(ids) > 4 else ''}), so a question that names its chain by these "
        "phrases can have more than one right answer as written. Give each relation a phrase of its own in a "
        "relation sidecar (`kgreason kg import FILE --relations SIDECAR`, docs/kg.md), or merge the relations "
        "that mean the same.")


def generate_tasks(kg: KnowledgeGraph, config: TaskConfig | None = None) -> dict[str, list[Task]]:
    """split name -> tasks (see `generate` for the facts and the manifest)."""
    return generate(kg, config).splits


# --- facts ---------------------------------------------------------------------------------------
def fact_records(kg: KnowledgeGraph) -> list[dict]:
    """One atomic statement per KG edge, with ready-to-train prompt/completion text.

    Fields: id, head, relation, tail (ids), head_label, relation_phrase, tail_label,
    text (the statement, the same sentence a trace clause uses), prompt ("Complete the fact:
    <head label> <phrase>") and completion ("<tail label>."), so prompt + " " + completion
    restates the fact.
    """
    records = []
    for i, e in enumerate(kg.edges):
        head_label, phrase, tail_label = kg.label(e.head), kg.phrase(e.relation), kg.label(e.tail)
        records.append({
            "id": f"fact-{i:06d}",
            "head": e.head,
            "relation": e.relation,
            "tail": e.tail,
            "head_label": head_label,
            "relation_phrase": phrase,
            "tail_label": tail_label,
            "text": format_fact(kg, e),
            "prompt": f"Complete the fact: {head_label} {phrase}",
            "completion": f"{tail_label}.",
        })
    return records


# --- manifest and files ----------------------------------------------------------------------------
def _manifest(kg: KnowledgeGraph, config: TaskConfig, splits: dict[str, list[Task]], facts: list[dict],
              rejections: dict[str, dict[str, int]]) -> dict:
    from kgreason import __version__

    taught_by_questions = {e for s in config.splits if not s.held_out for t in splits[s.name] for e in t.path_star.edges}
    eval_edges = {e for s in config.splits if s.held_out for t in splits[s.name] for e in t.path_star.edges}
    return {
        "generator": f"kgreason {__version__}",
        "seed": config.seed,
        "mode": config.mode,
        "config": config.to_dict(),
        "kg": {"name": kg.name, "entities": len(kg.entities), "relations": len(kg.relations), "edges": len(kg.edges)},
        "counts": {**{name: len(ts) for name, ts in splits.items()}, config.facts_name: len(facts)},
        "targets": {s.name: s.size for s in config.splits},
        "by_hop": {name: dict(sorted(Counter(str(t.hop_len) for t in ts).items())) for name, ts in splits.items()},
        "letters": {name: dict(sorted(Counter(t.answer_star for t in ts).items())) for name, ts in splits.items()},
        "rejections": rejections,
        "held_out_edges": {
            "distinct": len(eval_edges),
            "taught_by_facts": sum(kg.has_edge(*e) for e in eval_edges) if facts else 0,
            "asked_in_training_questions": len(eval_edges & taught_by_questions),
        },
    }


def write_dataset(data: GeneratedDataset, out_dir: str | Path, facts_name: str = "facts") -> dict[str, Path]:
    """Write one JSONL per split, facts.jsonl and manifest.json (each atomically)."""
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for name, tasks in data.splits.items():
        paths[name] = out / f"{name}.jsonl"
        save_tasks(tasks, paths[name])
    paths[facts_name] = out / f"{facts_name}.jsonl"
    atomic_write_jsonl(paths[facts_name], data.facts)
    paths["manifest"] = out / "manifest.json"
    atomic_write_json(paths["manifest"], data.manifest)
    return paths


def save_tasks(tasks: Iterable[Task], path: str | Path) -> int:
    """Write tasks as JSONL, atomically (temp file + rename)."""
    return atomic_write_jsonl(path, (t.to_dict() for t in tasks))


_REQUIRED = ("id", "question", "options", "answer_star")


def task_from_record(rec: dict, where: str) -> Task:
    """A Task from one JSON record (ours or the hobby project's); InputError naming `where` if not."""
    if not isinstance(rec, dict):
        raise InputError(f"{where}: not a task record: expected a JSON object")
    missing = [k for k in _REQUIRED if k not in rec]
    if missing:
        raise InputError(f"{where}: not a task record: missing field(s) {missing}")
    rec = dict(rec)
    family = rec.get("family") or DEFAULT_FAMILY
    if not isinstance(family, str):
        raise InputError(f"{where}: 'family' must be a string")
    try:
        fam = get_family(family)
    except InputError as exc:  # it names the registered families; say where too
        raise InputError(f"{where}: {exc}") from None
    rec["family"] = fam.name
    options = rec["options"]
    if isinstance(options, list):  # ["...", "...", ...] in letter order
        options = dict(zip(LETTERS, options, strict=False))
    if isinstance(options, dict):
        options = {str(k): str(v) for k, v in options.items()}
    rec["options"] = options
    problem = fam.check_record(rec)
    if problem:
        raise InputError(f"{where}: {problem}")
    rec.setdefault("split", "")
    try:
        return Task.from_dict(rec)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed task record: {exc!r}") from None


def load_tasks(path: str | Path) -> list[Task]:
    """Read a task JSONL (ours or the hobby project's, unchanged). Bad lines raise InputError with file:line."""
    return [task_from_record(rec, f"{path}:{line}") for line, rec in iter_jsonl(path)]
