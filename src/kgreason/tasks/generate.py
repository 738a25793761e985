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

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kgreason.io import InputError, atomic_write_json, atomic_write_jsonl, iter_jsonl
from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import LETTERS, PathStar, Task
from kgreason.tasks.format import format_fact, format_prompt, format_question, format_trace, short_trace
from kgreason.tasks.shortcuts import ShortcutBalancer, relation_range_types

Triple = tuple[str, str, str]
MODES = ("closed", "open")
ALL_TYPES = "\0all"  # key of the every-entity pool in type_pools()


@dataclass(frozen=True)
class SplitSpec:
    """One output file: its name, how many items, which hop lengths, and whether it is held out."""

    name: str
    size: int
    min_hops: int
    max_hops: int
    held_out: bool = False

    def hop_lengths(self) -> list[int]:
        return list(range(self.min_hops, self.max_hops + 1))


DEFAULT_SPLITS: tuple[SplitSpec, ...] = (
    SplitSpec("eval", 300, 4, 5, held_out=True),
    SplitSpec("train_easy", 1500, 1, 3),
    SplitSpec("train_hard", 600, 4, 5),
)


@dataclass
class TaskConfig:
    """Everything generation depends on; the same config and graph give byte-identical files."""

    seed: int = 0
    mode: str = "closed"  # closed: facts must be known; open: a bounded set of facts is in the prompt
    splits: tuple[SplitSpec, ...] = DEFAULT_SPLITS
    max_context_facts: int = 24  # open mode: facts in the prompt, gold path included
    attempts_per_item: int = 30  # bounded sampling: at most this many candidates per wanted item
    max_answer_set: int = 20_000  # reject chains whose answer set grows beyond this (hub explosions)
    same_type_distractors: bool = True  # distractors share the answer's type where types exist
    cover_eval_edges: float = 0.5  # share of each shorter training split steered onto eval edges
    facts_name: str = "facts"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {self.mode!r}")
        names = [s.name for s in self.splits]
        if len(set(names)) != len(names) or self.facts_name in names:
            raise InputError(f"split names must be distinct and differ from {self.facts_name!r}: {names}")
        for s in self.splits:
            if s.size < 0 or s.min_hops < 1 or s.max_hops < s.min_hops:
                raise InputError(f"split {s.name!r}: need size >= 0 and 1 <= min_hops <= max_hops, got {s}")
        if self.max_context_facts < 5:
            raise InputError("max_context_facts must be at least 5 (a 5-hop gold path)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["splits"] = [asdict(s) for s in self.splits]
        return d


@dataclass
class Draft:
    """A well-posed item before letters are assigned."""

    start: str
    path_edges: list[Triple]
    distractors: list[str]
    distractor_edges: dict[str, list[Triple]]  # how each distractor is reached or attached (open mode)
    shortcut_wins: list[float] = field(default_factory=list)  # see ShortcutBalancer.wins

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


# --- distractors ---------------------------------------------------------------------------------
class _Distractors:
    """Near-miss candidates for one item, each with the edges that lead to or attach it."""

    def __init__(self, kg: KnowledgeGraph, rng: random.Random, type_pool: dict[str | None, list[str]]) -> None:
        self.kg = kg
        self.rng = rng
        self.type_pool = type_pool

    def near(self, start: str, path_edges: list[Triple]) -> dict[str, list[Triple]]:
        found: dict[str, list[Triple]] = {}
        self._one_deviation_chains(start, path_edges, found)
        self._other_chains(start, len(path_edges), found)
        self._answer_neighbourhood(path_edges, found)
        return found

    def _one_deviation_chains(self, start: str, path_edges: list[Triple], found: dict[str, list[Triple]]) -> None:
        """Follow the gold path, swap the relation at one hop, then keep to the stated chain."""
        chain = [r for _, r, _ in path_edges]
        entities = [start] + [t for _, _, t in path_edges]
        for i in range(len(chain)):
            visited = set(entities[: i + 1])
            dev = _step(self.kg, entities[i], visited, self.rng, avoid=chain[i])
            if dev is None:
                continue
            visited.add(dev[2])
            rest = random_walk(self.kg, dev[2], len(chain) - i - 1, self.rng, chain=chain[i + 1:])
            if rest is None:
                rest = random_walk(self.kg, dev[2], len(chain) - i - 1, self.rng)
            if rest is not None and not visited.intersection(t for _, _, t in rest):
                edges = [*path_edges[:i], dev, *rest]
                found.setdefault(edges[-1][2], edges)

    def _other_chains(self, start: str, hops: int, found: dict[str, list[Triple]], walks: int = 6) -> None:
        for _ in range(walks):
            edges = random_walk(self.kg, start, hops, self.rng)
            if edges:
                found.setdefault(edges[-1][2], edges)

    def _answer_neighbourhood(self, path_edges: list[Triple], found: dict[str, list[Triple]], fan: int = 8) -> None:
        """Entities two steps from the answer (answer <- p -> x): nearby, often of the same type."""
        answer = path_edges[-1][2]
        for prev_rel, preds in self._sample_items(self.kg.in_relations(answer), fan):
            for p in preds:
                for rel, tails in self._sample_items(self.kg.out_relations(p), fan):
                    for x in tails:
                        found.setdefault(x, [(p, prev_rel, answer), (p, rel, x)])

    def _sample_items(self, rel_map: dict[str, tuple[str, ...]], fan: int) -> list[tuple[str, list[str]]]:
        items = []
        for rel, ents in rel_map.items():
            picks = [ents[i] for i in self.rng.sample(range(len(ents)), min(fan, len(ents)))]
            items.append((rel, picks))
        return items

    def far(self, answer_type: str | None, n: int) -> dict[str, list[Triple]]:
        """Random entities of the answer's type, attached by one incident edge (fallback only)."""
        pool = self.type_pool.get(answer_type, [])
        found: dict[str, list[Triple]] = {}
        for _ in range(min(n, len(pool))):
            x = pool[self.rng.randrange(len(pool))]
            found.setdefault(x, self._incident_edge(x))
        return found

    def _incident_edge(self, x: str) -> list[Triple]:
        for rel, heads in self.kg.in_relations(x).items():
            return [(heads[0], rel, x)]
        for rel, tails in self.kg.out_relations(x).items():
            return [(x, rel, tails[0])]
        return []


def _eligible(kg: KnowledgeGraph, candidates: Iterable[str], answer: str, reached: set[str], question: str,
              same_type: bool, labels_used: set[str]) -> list[str]:
    """Candidates outside the answer set, of the answer's type, with a fresh label the question lacks."""
    answer_type = kg.entities[answer].type
    out: list[str] = []
    for x in candidates:
        ent = kg.entities[x]
        if x in reached or x == answer:
            continue
        if same_type and answer_type is not None and ent.type != answer_type:
            continue
        if ent.label.lower() in labels_used or mentions(question, ent.label):
            continue
        labels_used.add(ent.label.lower())
        out.append(x)
    return out


# --- one item --------------------------------------------------------------------------------------
def build_draft(kg: KnowledgeGraph, start: str, path_edges: list[Triple], rng: random.Random,
                type_pool: dict[str | None, list[str]], config: TaskConfig,
                balancer: ShortcutBalancer | None = None) -> Draft | str:
    """A well-posed draft for this gold path, or the reason there is none.

    `balancer` carries the split's shortcut win rates; the caller commits `draft.shortcut_wins`
    once it keeps the draft.
    """
    entities = [start] + [t for _, _, t in path_edges]
    if len(set(entities)) != len(entities):
        return "path_revisits_entity"
    chain = [r for _, r, _ in path_edges]
    reached = follow_capped(kg, start, chain, config.max_answer_set)
    if reached is None:
        return "answer_set_too_large"
    answer = entities[-1]
    question = format_question(kg, start, chain)
    if mentions(question, kg.label(answer)):
        return "answer_named_in_question"
    finder = _Distractors(kg, rng, type_pool)
    near = finder.near(start, path_edges)
    answer_type = kg.entities[answer].type if config.same_type_distractors else ALL_TYPES
    far = {x: e for x, e in finder.far(answer_type, 24).items() if x not in near}
    labels_used = {kg.label(answer).lower()}
    same = config.same_type_distractors
    near_ok = _eligible(kg, near, answer, reached, question, same, labels_used)
    far_ok = _eligible(kg, far, answer, reached, question, same, labels_used)
    picked = (balancer or ShortcutBalancer(kg)).choose(question, chain, answer, near_ok, far_ok, rng)
    if picked is None:
        return "too_few_distractors"
    chosen, wins = picked
    edges_for = {**far, **near}
    return Draft(start=start, path_edges=path_edges, distractors=chosen,
                 distractor_edges={x: edges_for[x] for x in chosen}, shortcut_wins=wins)


def _context_facts(kg: KnowledgeGraph, draft: Draft, rng: random.Random, limit: int) -> list[str]:
    """Open mode: gold path, paths to each distractor, then nearby edges; bounded and shuffled."""
    chosen: dict[Triple, None] = dict.fromkeys(draft.path_edges)
    per_distractor = max(1, (limit - len(chosen)) // max(1, len(draft.distractors)) - 1)
    for x in draft.distractors:
        # Keep the end of each distractor's path: the edges that make it look like an answer.
        for e in draft.distractor_edges[x][-per_distractor:]:
            if len(chosen) < limit:
                chosen.setdefault(e)
    nearby = [(h, r, t) for h in draft.entities for r, ts in kg.out_relations(h).items() for t in ts[:3]]
    rng.shuffle(nearby)
    for e in nearby:
        if len(chosen) >= limit:
            break
        chosen.setdefault(e)
    facts = [format_fact(kg, e) for e in chosen]
    rng.shuffle(facts)
    return facts


def finalize_task(kg: KnowledgeGraph, draft: Draft, letter: str, rng: random.Random, *, task_id: str,
                  split: str, mode: str = "closed", seed: int | None = None,
                  max_context_facts: int = 24) -> Task:
    """Place the answer at `letter`, the distractors in random order elsewhere, and write the texts."""
    others = list(draft.distractors)
    rng.shuffle(others)
    option_ids: dict[str, str] = {}
    for lt in LETTERS:
        option_ids[lt] = draft.answer if lt == letter else others.pop()
    options = {lt: kg.label(x) for lt, x in option_ids.items()}
    question = format_question(kg, draft.start, draft.chain)
    context = _context_facts(kg, draft, rng, max_context_facts) if mode == "open" else []
    return Task(
        id=task_id,
        split=split,
        hop_len=len(draft.path_edges),
        question=question,
        options=options,
        answer_star=letter,
        path_star=PathStar(entities=draft.entities, edges=list(draft.path_edges)),
        prompt=format_prompt(question, options, context),
        start=draft.start,
        relation_chain=list(draft.chain),
        option_ids=option_ids,
        answer_id=draft.answer,
        mode=mode,
        reference_trace=format_trace(kg, draft.path_edges),
        short_trace=short_trace(kg, draft.path_edges),
        context_facts=context,
        seed=seed,
    )


def type_pools(kg: KnowledgeGraph) -> dict[str | None, list[str]]:
    """type -> entity ids, plus ALL_TYPES -> every id (the fallback pool for untyped distractors)."""
    pools: dict[str | None, list[str]] = {ALL_TYPES: list(kg.entities)}
    for eid, ent in kg.entities.items():
        pools.setdefault(ent.type, []).append(eid)
    return pools


def try_make_task(kg: KnowledgeGraph, start: str, chain: Sequence[str], rng: random.Random, *,
                  mode: str = "closed", task_id: str = "custom-0", split: str = "custom",
                  letter: str | None = None, config: TaskConfig | None = None,
                  pools: dict[str | None, list[str]] | None = None) -> tuple[Task | None, str]:
    """One item from a user-chosen start and relation chain: (task, "ok") or (None, reason)."""
    config = config or TaskConfig(mode=mode)
    if start not in kg.entities:
        return None, f"unknown start entity {start!r}"
    unknown = [r for r in chain if r not in kg.relations]
    if unknown:
        return None, f"unknown relation(s) {unknown}"
    if not chain:
        return None, "empty relation chain"
    reason = "no_path_along_chain"
    pools = pools if pools is not None else type_pools(kg)
    for _ in range(5):
        path = find_simple_path(kg, start, chain, rng)
        if path is None:
            break
        draft = build_draft(kg, start, path, rng, pools, config)
        if isinstance(draft, Draft):
            letter = letter or LETTERS[rng.randrange(len(LETTERS))]
            return finalize_task(kg, draft, letter, rng, task_id=task_id, split=split, mode=mode,
                                 seed=None, max_context_facts=config.max_context_facts), "ok"
        reason = draft
    return None, reason


def make_task(kg: KnowledgeGraph, start: str, chain: Sequence[str], rng: random.Random, *,
              mode: str = "closed", task_id: str = "custom-0", split: str = "custom",
              reasons: list[str] | None = None) -> Task | None:
    """One well-posed item for a start and relation chain (the demo's Try It), or None.

    When it returns None the reason is appended to `reasons` (if given); `try_make_task`
    returns it directly.
    """
    task, reason = try_make_task(kg, start, chain, rng, mode=mode, task_id=task_id, split=split)
    if task is None and reasons is not None:
        reasons.append(reason)
    return task


# --- splits --------------------------------------------------------------------------------------
class _SplitGenerator:
    def __init__(self, kg: KnowledgeGraph, config: TaskConfig) -> None:
        self.kg = kg
        self.config = config
        self.rng = random.Random(config.seed)
        self.keys = _Keys()
        self.pools = type_pools(kg)
        self.startable = [e for e in kg.entities if kg.out_relations(e)]
        self.range_types = relation_range_types(kg)
        self.balancer = ShortcutBalancer(kg, range_types=self.range_types)
        if not self.startable:
            raise InputError("the graph has no entity with an outgoing edge")

    def _claim(self, draft: Draft) -> bool:
        sc = (draft.start, draft.chain)
        path = tuple(draft.path_edges)
        q = format_question(self.kg, draft.start, draft.chain)
        if sc in self.keys.start_chain or path in self.keys.paths or q in self.keys.questions:
            return False
        self.keys.start_chain.add(sc)
        self.keys.paths.add(path)
        self.keys.questions.add(q)
        return True

    def _attempt(self, hops: int, rejected: Counter, first: Triple | None = None) -> Draft | None:
        if first is None:
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
        draft = build_draft(self.kg, start, path, self.rng, self.pools, self.config, self.balancer)
        if isinstance(draft, str):
            rejected[draft] += 1
            return None
        if not self._claim(draft):
            rejected["duplicate_path_or_question"] += 1
            return None
        self.balancer.commit(draft.shortcut_wins)
        return draft

    def generate_split(self, spec: SplitSpec, cover: list[Triple]) -> tuple[list[Draft], Counter]:
        hops = spec.hop_lengths()
        targets = {h: spec.size // len(hops) + (1 if i < spec.size % len(hops) else 0) for i, h in enumerate(hops)}
        made: dict[int, list[Draft]] = {h: [] for h in hops}
        rejected: Counter = Counter()
        self.balancer = ShortcutBalancer(self.kg, range_types=self.range_types)
        self._cover_edges(spec, cover, targets, made, rejected)
        for h in hops:
            budget = self.config.attempts_per_item * max(0, targets[h] - len(made[h]))
            while len(made[h]) < targets[h] and budget > 0:
                budget -= 1
                draft = self._attempt(h, rejected)
                if draft is not None:
                    made[h].append(draft)
        drafts = [d for h in hops for d in made[h]]
        self.rng.shuffle(drafts)
        return drafts, rejected

    def _cover_edges(self, spec: SplitSpec, cover: list[Triple], targets: dict[int, int],
                     made: dict[int, list[Draft]], rejected: Counter) -> None:
        """Steer part of a shorter training split onto eval edges, so those edges are asked about."""
        quota = int(self.config.cover_eval_edges * spec.size)
        if not cover or quota <= 0:
            return
        for edge in cover:
            if quota <= 0:
                break
            open_hops = [h for h in targets if len(made[h]) < targets[h]]
            if not open_hops:
                break
            h = max(open_hops, key=lambda x: targets[x] - len(made[x]))
            for _ in range(3):
                draft = self._attempt(h, rejected, first=edge)
                if draft is not None:
                    made[h].append(draft)
                    quota -= 1
                    break


def _balanced_letters(n: int, rng: random.Random) -> list[str]:
    """Exactly balanced letters (counts differ by at most one), in random order."""
    letters = [LETTERS[i % len(LETTERS)] for i in range(n)]
    rng.shuffle(letters)
    return letters


def generate(kg: KnowledgeGraph, config: TaskConfig | None = None, progress: bool = False,
             with_facts: bool = True) -> GeneratedDataset:
    """All splits, the facts (unless `with_facts` is False), and a manifest (config, counts,
    rejections by reason, eval-edge coverage)."""
    config = config or TaskConfig()
    gen = _SplitGenerator(kg, config)
    order = sorted(config.splits, key=lambda s: not s.held_out)  # held-out splits claim keys first
    held_out_min = min((s.min_hops for s in config.splits if s.held_out), default=None)
    eval_edges: list[Triple] = []
    splits: dict[str, list[Task]] = {}
    rejections: dict[str, dict[str, int]] = {}
    iterator: Iterable[SplitSpec] = order
    if progress:
        from tqdm import tqdm

        iterator = tqdm(order, desc="splits", unit="split")
    for spec in iterator:
        shorter = held_out_min is not None and not spec.held_out and spec.max_hops < held_out_min
        cover = _shuffled_unique(eval_edges, gen.rng) if shorter else []
        drafts, rejected = gen.generate_split(spec, cover)
        letters = _balanced_letters(len(drafts), gen.rng)
        splits[spec.name] = [
            finalize_task(kg, d, lt, gen.rng, task_id=f"{spec.name}-{i:05d}", split=spec.name, mode=config.mode,
                          seed=config.seed, max_context_facts=config.max_context_facts)
            for i, (d, lt) in enumerate(zip(drafts, letters, strict=True))
        ]
        rejections[spec.name] = dict(sorted(rejected.items()))
        if spec.held_out:
            eval_edges.extend(e for d in drafts for e in d.path_edges)
    splits = {s.name: splits[s.name] for s in config.splits}  # file order as configured
    facts = fact_records(kg) if with_facts else []
    manifest = _manifest(kg, config, splits, facts, rejections)
    return GeneratedDataset(splits=splits, facts=facts, manifest=manifest)


def _shuffled_unique(edges: list[Triple], rng: random.Random) -> list[Triple]:
    unique = list(dict.fromkeys(edges))
    rng.shuffle(unique)
    return unique


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
    missing = [k for k in _REQUIRED if k not in rec]
    if missing:
        raise InputError(f"{where}: not a task record: missing field(s) {missing}")
    rec = dict(rec)
    options = rec["options"]
    if isinstance(options, list):  # ["...", "...", ...] in letter order
        options = dict(zip(LETTERS, options, strict=False))
    if not isinstance(options, dict) or not options:
        raise InputError(f"{where}: 'options' must be an object of letter -> text")
    rec["options"] = {str(k): str(v) for k, v in options.items()}
    if rec["answer_star"] not in rec["options"]:
        raise InputError(f"{where}: answer_star {rec['answer_star']!r} is not one of the options {sorted(rec['options'])}")
    rec.setdefault("split", "")
    try:
        return Task.from_dict(rec)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed task record: {exc!r}") from None


def load_tasks(path: str | Path) -> list[Task]:
    """Read a task JSONL (ours or the hobby project's, unchanged). Bad lines raise InputError with file:line."""
    return [task_from_record(rec, f"{path}:{line}") for line, rec in iter_jsonl(path)]
