#!/usr/bin/env python3
"""How often the partial-chain walks (kgreason.tasks.baselines.PARTIAL_WALKS) pick the gold option of
multiple-choice items. The registry runs them on free-form items only; this scores them on any task
file, to see what they say about multiple choice (docs/tasks.md, "Partial chains and multiple choice").

    python scripts/partial_chain_mc.py DATA_FOLDER   # kg.json and eval.jsonl in it
    python scripts/partial_chain_mc.py DATA_FOLDER EVAL_DIR...   # and each model's accuracy and
        faithful share on the items the first-relation walk over the prompt's facts surely solves
        (all its weight on the gold option) and surely misses (none)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kgreason.kg.kgjson import load_kg
from kgreason.tasks.audit import EntityIndex, answer_key, item_views
from kgreason.tasks.baselines import PARTIAL_WALKS, BaselineContext, _keep, get_baseline, step_walk, win_share
from kgreason.tasks.generate import load_tasks


def context_walk(view, steps) -> dict[str, float]:
    """The same walk over the item's context facts only (what an open-book model sees)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for h, r, t in view.context:
        out.setdefault(h, []).append((r, t))
    return step_walk(view.start, [lambda node, rel=rel: [t for r, t in out.get(node, []) if rel in (None, r)]
                                  for rel in steps])[0]


def prompt_hit(task, view, first: int, last: int) -> float | None:
    """The walk's expected hit over the prompt's facts, keeping the first `first` and last `last`
    stated relations; None when the item has no facts or the walk would follow all or none of it."""
    steps = _keep(tuple(view.chain), first, last) if view.start and view.context else None
    if steps is None:
        return None
    w = context_walk(view, steps)
    return win_share([w.get(x, 0.0) if x else -1.0 for x in view.options], view.letters.index(answer_key(task)))


def walk_rates(folder: str | Path) -> dict[str, tuple[float, float | None]]:
    """Per partial-chain walk: its rate over the whole graph, and over the prompt's facts (None when
    the items have no facts in their prompts), on the folder's eval.jsonl (kg.json beside it)."""
    data = Path(folder)
    kg = load_kg(data / "kg.json")
    tasks = load_tasks(data / "eval.jsonl")
    views = item_views(kg, tasks, EntityIndex(kg))
    ctx = BaselineContext(kg)
    rates: dict[str, tuple[float, float | None]] = {}
    for name, (_, first, last) in PARTIAL_WALKS.items():
        fn = get_baseline(name).fn  # the rule itself, without the registry's free-form-only guard
        hits, in_context = [], []
        for task, view in zip(tasks, views, strict=True):
            key = answer_key(task)
            if key not in view.letters:
                continue
            scores = fn(view, ctx)
            hits.append(win_share(scores, view.letters.index(key)) if scores else 0.0)
            hit = prompt_hit(task, view, first, last)
            if hit is not None:
                in_context.append(hit)
        rates[name] = (sum(hits) / max(1, len(hits)), sum(in_context) / len(in_context) if in_context else None)
    return rates


def main(folder: str) -> None:
    print(f"{Path(folder) / 'eval.jsonl'}: the walk over the whole graph, and over the prompt's facts only "
          "(open book); an item a walk does not apply to counts as a miss")
    for name, (graph, prompt) in walk_rates(folder).items():
        in_prompt = f"   in the prompt {100 * prompt:5.1f}%" if prompt is not None else ""
        print(f"  {name:36s} {100 * graph:5.1f}%{in_prompt}")


def split_by_walk(folder: str, eval_dirs: list[str]) -> None:
    data = Path(folder)
    kg = load_kg(data / "kg.json")
    tasks = load_tasks(data / "eval.jsonl")
    hit = {}
    for task, view in zip(tasks, item_views(kg, tasks, EntityIndex(kg)), strict=True):
        h = prompt_hit(task, view, 1, 0)
        if h is not None:
            hit[task.id] = h
    solved = {k for k, h in hit.items() if h >= 0.999}
    missed = {k for k, h in hit.items() if h <= 0.001}
    print(f"first relation, then the prompt's facts: surely solves {len(solved)} items, surely misses {len(missed)}")
    for d in eval_dirs:
        text = (Path(d) / "predictions.jsonl").read_text(encoding="utf-8")
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        got = {r["task_id"]: (r["reward"]["correct"], r["reward"]["faithful"]) for r in rows}
        print(f"  {d}: accuracy {_share(got, solved, 0)} solved / {_share(got, missed, 0)} missed; "
              f"faithful {_share(got, solved, 1)} / {_share(got, missed, 1)}")


def _share(got: dict[str, tuple[bool, bool]], ids: set[str], i: int) -> str:
    vals = [got[x][i] for x in ids if x in got]
    return f"{100 * sum(vals) / len(vals):5.1f}%" if vals else "  -  "


if __name__ == "__main__":
    if len(sys.argv) > 2:
        split_by_walk(sys.argv[1], sys.argv[2:])
    else:
        main(sys.argv[1])
