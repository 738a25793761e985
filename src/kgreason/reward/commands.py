"""Handlers for `kgreason score` and `kgreason bench reward` (cli.py stays a thin parser)."""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kgreason.io import InputError, atomic_write_jsonl, iter_jsonl
from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import LETTERS, PathStar, RewardBreakdown, Task
from kgreason.reward.match import Mention, normalize, on_word_boundaries, select_longest
from kgreason.reward.score import Scorer


# --- kgreason score --------------------------------------------------------------------------------
@dataclass
class CompletionItem:
    task_id: str
    text: str
    sample_index: int
    line: int


def load_task_index(path: str | Path) -> dict[str, Task]:
    """Tasks by id from a JSONL file (ours or the hobby project's); bad lines name file:line."""
    tasks: dict[str, Task] = {}
    for line, rec in iter_jsonl(path):
        try:
            task = Task.from_dict(rec)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{line}: not a task record ({exc}); expected id, question, options, "
                             "answer_star, path_star") from None
        if task.id in tasks:
            raise InputError(f"{path}:{line}: duplicate task id {task.id!r}")
        tasks[task.id] = task
    if not tasks:
        raise InputError(f"{path}: no tasks found")
    return tasks


def load_completion_items(path: str | Path) -> list[CompletionItem]:
    """Completion records (task_id, text, ...) or plain {"id"/"task_id", "completion"/"text"} lines."""
    items: list[CompletionItem] = []
    for line, rec in iter_jsonl(path):
        task_id = rec.get("task_id", rec.get("id"))
        text = rec.get("text", rec.get("completion"))
        if not isinstance(task_id, str) or not task_id:
            raise InputError(f"{path}:{line}: expected a task id in 'task_id' (or 'id')")
        if not isinstance(text, str):
            raise InputError(f"{path}:{line}: expected the completion text in 'text' (or 'completion'), as a string")
        sample_index = rec.get("sample_index", 0)
        items.append(CompletionItem(task_id, text, sample_index if isinstance(sample_index, int) else 0, line))
    if not items:
        raise InputError(f"{path}: no completions found")
    return items


def summarize(breakdowns: Sequence[RewardBreakdown]) -> dict[str, float]:
    n = len(breakdowns)
    if n == 0:
        return {"n": 0.0}
    return {
        "n": float(n),
        "accuracy": sum(b.correct for b in breakdowns) / n,
        "format_rate": sum(b.format_ok for b in breakdowns) / n,
        "mean_reward": sum(b.total for b in breakdowns) / n,
        "faithful_share": sum(b.faithful for b in breakdowns) / n,
        "mean_path_coverage": sum(b.path_coverage for b in breakdowns) / n,
        "valid_hop_share": (sum(b.valid_hops for b in breakdowns) / max(1, sum(len(b.claimed_hops) for b in breakdowns))),
    }


def default_scores_path(completions: str | Path, preset: str) -> Path:
    p = Path(completions)
    return p.with_name(f"{p.stem}.{preset}.scores.jsonl")


def score_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kgreason.kg.sources import open_kg

    kg = open_kg(args.kg, json_only=True)
    tasks = load_task_index(args.tasks)
    items = load_completion_items(args.completions)
    for item in items:
        if item.task_id not in tasks:
            raise InputError(f"{args.completions}:{item.line}: task id {item.task_id!r} is not in {args.tasks}")
    scorer = Scorer(kg, preset=args.reward_preset)
    records = []
    breakdowns = []
    for item in tqdm(items, desc=f"scoring ({args.reward_preset})", unit="completion", disable=None):
        b = scorer.score(tasks[item.task_id], item.text)
        breakdowns.append(b)
        records.append({"task_id": item.task_id, "sample_index": item.sample_index, **b.to_dict()})
    out = Path(args.out) if args.out else default_scores_path(args.completions, args.reward_preset)
    atomic_write_jsonl(out, records)
    s = summarize(breakdowns)
    if getattr(args, "json", False):  # one object on stdout for scripts; the progress bar is on stderr
        import json

        print(json.dumps({"completions": len(items), "preset": args.reward_preset, "out": str(out), **s}))
        return 0
    print(f"scored {len(items)} completions with preset '{args.reward_preset}' -> {out}")
    print(f"  accuracy        {s['accuracy']:.3f}")
    print(f"  format rate     {s['format_rate']:.3f}")
    print(f"  mean reward     {s['mean_reward']:+.3f}")
    print(f"  faithful share  {s['faithful_share']:.3f}")
    print(f"  path coverage   {s['mean_path_coverage']:.3f} (intermediate entities)")
    print(f"  valid hops      {s['valid_hop_share']:.3f} of claimed hops are real edges")
    return 0


# --- kgreason bench reward ---------------------------------------------------------------------------
class NaiveEntityMatcher:
    """The baseline: for every surface form of every entity, scan the text for it (what the hobby
    project does), with the same word-boundary and longest-match rules so results are identical."""

    def __init__(self, kg: KnowledgeGraph) -> None:
        from kgreason.reward.match import entity_surface_forms

        names: dict[str, list[str]] = {}
        for surface, eid in entity_surface_forms(kg):
            key = normalize(surface).strip()
            if key and eid not in names.setdefault(key, []):
                names[key].append(eid)
        self._names = [(k, tuple(v)) for k, v in names.items()]
        self._exact = dict(self._names)

    def find(self, text: str, normalized: bool = False) -> list[Mention]:
        norm = text if normalized else normalize(text)
        spans = []
        for name, ids in self._names:
            i = norm.find(name)
            while i != -1:
                if on_word_boundaries(norm, i, i + len(name)):
                    spans.append((i, i + len(name), ids))
                i = norm.find(name, i + 1)
        return [Mention(s, e, norm[s:e], v) for s, e, v in select_longest(spans)]  # type: ignore[arg-type]

    def lookup(self, name: str) -> tuple[str, ...]:
        return self._exact.get(normalize(name).strip(), ())

    def resolve(self, text: str) -> str | None:
        exact = self.lookup(text)
        if exact:
            return exact[0]
        mentions = self.find(text)
        return max(mentions, key=lambda m: m.end - m.start).entity if mentions else None


def random_path(kg: KnowledgeGraph, hops: int, rng: random.Random, tries: int = 50) -> list[tuple[str, str, str]]:
    """A random walk of `hops` edges without revisiting an entity ([] when none was found)."""
    heads = [e.head for e in kg.edges]
    for _ in range(tries):
        node = heads[rng.randrange(len(heads))]
        path: list[tuple[str, str, str]] = []
        seen = {node}
        for _ in range(hops):
            nxt = [(r, t) for r, ts in kg.out_relations(node).items() for t in ts if t not in seen]
            if not nxt:
                break
            r, t = nxt[rng.randrange(len(nxt))]
            path.append((node, r, t))
            seen.add(t)
            node = t
        if len(path) == hops:
            return path
    return []


def bench_workload(kg: KnowledgeGraph, n: int, seed: int = 0) -> list[tuple[Task, str]]:
    """`n` (task, completion) pairs over random 1-5 hop paths: faithful traces, wrong relations,
    entity dumps, wrong letters and junk, as a sampler would produce them."""
    from kgreason.tasks.format import format_completion, format_trace

    rng = random.Random(seed)
    ids = list(kg.entities)
    pairs: list[tuple[Task, str]] = []
    while len(pairs) < n:
        edges = random_path(kg, rng.randint(1, 5), rng)
        if not edges:
            continue
        answer = edges[-1][2]
        letters = list(LETTERS)
        gold = rng.choice(letters)
        option_ids = {letter: (answer if letter == gold else ids[rng.randrange(len(ids))]) for letter in letters}
        task = Task(
            id=f"bench-{len(pairs)}", split="bench", hop_len=len(edges), question="", prompt="",
            options={k: kg.label(v) for k, v in option_ids.items()}, answer_star=gold,
            path_star=PathStar([edges[0][0]] + [t for _, _, t in edges], edges),
            start=edges[0][0], relation_chain=[r for _, r, _ in edges], option_ids=option_ids, answer_id=answer,
        )
        pairs.append((task, _bench_completion(kg, edges, gold, rng, format_trace, format_completion)))
    return pairs


def _bench_completion(kg: KnowledgeGraph, edges, gold: str, rng: random.Random,
                      format_trace: Callable, format_completion: Callable) -> str:
    kind = rng.random()
    letter = gold if rng.random() < 0.6 else rng.choice(LETTERS)
    if kind < 0.5:
        return format_completion(format_trace(kg, edges), letter)
    if kind < 0.7:  # a wrong relation somewhere
        rels = list(kg.relations)
        h, _, t = edges[rng.randrange(len(edges))]
        broken = [(a, r, b) if (a, b) != (h, t) else (a, rng.choice(rels), b) for a, r, b in edges]
        return format_completion(format_trace(kg, broken), letter)
    if kind < 0.85:  # entity dump
        labels = [kg.label(e) for e in {x for edge in edges for x in (edge[0], edge[2])}]
        return format_completion(" ".join(labels * 2), letter)
    if kind < 0.95:  # rambling prose, no entity at all
        return format_completion("I think the problem is probably related to the network or the disk, so "
                                 "the fix is to restart things until it works.", letter)
    return "I am not sure what the answer is."


def _rate(scorer: Scorer, pairs: Sequence[tuple[Task, str]], min_seconds: float) -> tuple[float, list[RewardBreakdown]]:
    """Completions per second over at least `min_seconds` (repeating the workload if needed)."""
    done = 0
    out: list[RewardBreakdown] = []
    t0 = time.perf_counter()
    while True:
        out = [scorer.score(task, text) for task, text in pairs]
        done += len(pairs)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return done / elapsed, out


def bench_graphs(large: str, seed: int) -> list[tuple[str, KnowledgeGraph]]:
    """The built-in DevOps graph (small) and a larger one where vocabulary size shows.

    Falls back to the synthetic graph generator when the built-in one is unavailable.
    """
    try:
        from kgreason.kg.builtin import build_devops_kg
    except ImportError:
        from kgreason.tasks.synthetic import synthetic_kg

        size = int(large) if large.isdigit() else 20_000
        return [("synthetic 1k edges", synthetic_kg(1_000, seed=seed)),
                (f"synthetic {size:,} edges", synthetic_kg(size, seed=seed))]
    return [("builtin devops small", build_devops_kg(seed=seed, size="small")),
            (f"builtin devops {large}", build_devops_kg(seed=seed, size=large))]


def bench_reward_command(args: argparse.Namespace) -> int:
    print(f"reward scoring speed, preset '{args.reward_preset}': {args.n} completions per graph (1-5 hops; "
          "faithful, wrong-relation, entity-dump, prose and unparseable), each timed for at least "
          f"{args.min_seconds:g}s")
    header = f"{'graph':<28}{'entities':>9}{'names':>8}{'automaton c/s':>15}{'naive c/s':>12}{'ratio':>8}  same results"
    print(header)
    for name, kg in bench_graphs(args.large, args.seed):
        pairs = bench_workload(kg, args.n, seed=args.seed)
        fast = Scorer(kg, preset=args.reward_preset)
        naive = Scorer(kg, preset=args.reward_preset, entity_matcher=NaiveEntityMatcher(kg))  # type: ignore[arg-type]
        fast_rate, fast_out = _rate(fast, pairs, args.min_seconds)
        naive_rate, naive_out = _rate(naive, pairs, args.min_seconds)
        same = "yes" if [b.to_dict() for b in fast_out] == [b.to_dict() for b in naive_out] else "NO"
        print(f"{name:<28}{len(kg.entities):>9,}{fast.entities.vocabulary_size:>8,}{fast_rate:>15,.0f}"
              f"{naive_rate:>12,.0f}{fast_rate / naive_rate:>7.1f}x  {same}")
    return 0
