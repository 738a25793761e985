"""`kgreason bench tasks`: graph save/load time and questions/s at scale, with same-run baselines.

Baselines measured in the same run: (1) our generator on the small built-in graph, which shows
whether cost per question grows with graph size; (2) a naive generator that enumerates every
simple path of the wanted length from the start and scans every entity of the answer's type for
distractors, the obvious approach that sampling replaces.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from kgreason.kg.graph import KnowledgeGraph
from kgreason.tasks.baselines import BaselineContext
from kgreason.tasks.distractors import DistractorBalancer
from kgreason.tasks.generate import (
    SplitSpec,
    TaskConfig,
    _SplitGenerator,
    draft_from_plan,
    fact_records,
    finalize_task,
)


def _all_simple_paths(kg: KnowledgeGraph, start: str, hops: int, deadline: float) -> Iterator[list[tuple[str, str, str]]]:
    stack: list[tuple[str, list[tuple[str, str, str]], frozenset[str]]] = [(start, [], frozenset([start]))]
    while stack:
        if time.perf_counter() > deadline:
            return
        node, path, seen = stack.pop()
        if len(path) == hops:
            yield path
            continue
        for rel, tails in kg.out_relations(node).items():
            for t in tails:
                if t not in seen:
                    stack.append((t, [*path, (node, rel, t)], seen | {t}))


def naive_questions(kg: KnowledgeGraph, n: int, seed: int, seconds: float) -> tuple[int, float]:
    """Questions made by enumeration within `seconds`: (count, elapsed)."""
    rng = random.Random(seed)
    startable = [e for e in kg.entities if kg.out_relations(e)]
    t0 = time.perf_counter()
    deadline = t0 + seconds
    made = 0
    while made < n and time.perf_counter() < deadline:
        start = rng.choice(startable)
        hops = 4 + made % 2
        paths = list(_all_simple_paths(kg, start, hops, deadline))
        if not paths:
            continue
        path = rng.choice(paths)
        answer = path[-1][2]
        reached = kg.follow(start, [r for _, r, _ in path])
        kind = kg.entities[answer].type
        pool = [e for e, ent in kg.entities.items() if ent.type == kind and e not in reached]
        if len(pool) >= 3:
            rng.sample(pool, 3)
            made += 1
    return made, time.perf_counter() - t0


def ours_questions(kg: KnowledgeGraph, n: int, seed: int) -> tuple[int, float, float, dict]:
    """(questions, setup seconds, generation seconds, rejections) for n questions of 4-5 hops.

    Setup is the one-off pass over the graph (start list, heads by relation);
    generation is the sampling itself, letters and texts included.
    """
    spec = SplitSpec("eval", n, 4, 5, held_out=True)
    config = TaskConfig(seed=seed, splits=(spec,))
    t0 = time.perf_counter()
    gen = _SplitGenerator(kg, config)
    t1 = time.perf_counter()
    plans, rejected = gen.plan_split(spec, [])
    balancer = DistractorBalancer(kg, BaselineContext(kg), config.mode, config.max_context_facts)
    drafts = [d for d in (draft_from_plan(p, balancer, gen.rng) for p in plans) if d is not None]
    tasks = [finalize_task(kg, d, "A", gen.rng, task_id=f"eval-{i}", split="eval") for i, d in enumerate(drafts)]
    t2 = time.perf_counter()
    return len(tasks), t1 - t0, t2 - t1, dict(sorted(rejected.items()))


def generation_seconds(seed: int = 0, sizes: dict[str, int] | None = None, families: list[str] | None = None,
                       modes: tuple[str, ...] = ("closed", "open")) -> list[dict]:
    """Seconds `generate()` takes on the built-in graph at the default split sizes (or `sizes`, split
    name -> items), for each task family and mode, with the items it made (a family may make fewer
    than asked: free form needs chains that reach one entity)."""
    from dataclasses import replace

    from kgreason.families import FAMILIES
    from kgreason.kg.builtin import build_devops_kg
    from kgreason.tasks.generate import DEFAULT_SPLITS, generate

    kg = build_devops_kg(seed=seed)
    splits = tuple(replace(s, size=(sizes or {}).get(s.name, s.size)) for s in DEFAULT_SPLITS)
    rows = []
    for family in families or FAMILIES.names():
        for mode in modes:
            t0 = time.perf_counter()
            data = generate(kg, TaskConfig(seed=seed, mode=mode, splits=splits, family=family))
            rows.append({"family": family, "mode": mode, "seconds": round(time.perf_counter() - t0, 2),
                         "asked": {s.name: s.size for s in splits},
                         "made": {name: len(tasks) for name, tasks in data.splits.items()}})
    return rows


def run_bench(edges: int, seed: int, items: int, naive_seconds: float, tmp: Path | None = None,
              graph: str = "builtin") -> None:
    """Print the figures; `graph` is "builtin" (the DevOps KG grown to `edges`) or "synthetic"."""
    from kgreason.kg.builtin import build_devops_kg
    from kgreason.kg.kgjson import load_kg, save_kg
    from kgreason.tasks.synthetic import synthetic_kg

    t0 = time.perf_counter()
    big = build_devops_kg(seed=seed, size=edges) if graph == "builtin" else synthetic_kg(edges, seed=seed)
    t_build = time.perf_counter() - t0
    print(f"graph: {len(big.entities):,} entities, {len(big.edges):,} edges ({graph}, built in {t_build:.1f}s)")
    with tempfile.TemporaryDirectory(dir=tmp) as d:
        path = Path(d) / "kg.json"
        t0 = time.perf_counter()
        save_kg(big, path)
        t_save = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        del big
        t0 = time.perf_counter()
        big = load_kg(path)
        t_load = time.perf_counter() - t0
    print(f"kg.json {size_mb:.0f} MB: save {t_save:.1f}s, load (parse + validate + index) {t_load:.1f}s")

    small = build_devops_kg(seed=seed)
    n_small, _, t_small, _ = ours_questions(small, min(items, 300), seed)
    n_big, setup_big, t_big, rej = ours_questions(big, items, seed)
    n_naive, t_naive = naive_questions(big, items, seed, naive_seconds)
    t0 = time.perf_counter()
    n_facts = len(fact_records(big))
    t_facts = time.perf_counter() - t0
    qps_small, qps_big = n_small / t_small, n_big / t_big
    qps_naive = n_naive / t_naive if n_naive else 0.0
    print(f"ours, built-in graph ({len(small.edges):,} edges): {n_small} questions in {t_small:.2f}s = {qps_small:,.0f} q/s")
    print(f"ours, {len(big.edges):,}-edge graph: {n_big} questions in {t_big:.2f}s = {qps_big:,.0f} q/s "
          f"after a one-off {setup_big:.1f}s pass over the graph "
          f"(rejected candidates: {', '.join(f'{k} {v}' for k, v in rej.items()) or 'none'})")
    naive_note = "" if n_naive else f" (none finished within {naive_seconds:.0f}s)"
    print(f"naive enumeration, {len(big.edges):,}-edge graph: {n_naive} questions in {t_naive:.2f}s = "
          f"{qps_naive:,.2f} q/s{naive_note}")
    print(f"facts.jsonl records for the {len(big.edges):,}-edge graph: {n_facts:,} in {t_facts:.1f}s (once per dataset)")
    ratio = f"{qps_big / qps_naive:,.0f}x" if qps_naive else f"> {qps_big * t_naive:,.0f}x"
    print(f"ratio ours / naive on the large graph: {ratio}; large / small graph q/s: {qps_big / qps_small:.2f}")
