#!/usr/bin/env python3
"""How often the partial-chain walks (kgreason.tasks.baselines.PARTIAL_WALKS) pick the gold option of
multiple-choice items. The registry runs them on free-form items only; this scores them on any task
file, to see what they say about multiple choice (docs/tasks.md, "Partial chains and multiple choice").

    python scripts/partial_chain_mc.py DATA_FOLDER   # kg.json and eval.jsonl in it
"""

from __future__ import annotations

import sys
from pathlib import Path

from kgreason.kg.kgjson import load_kg
from kgreason.tasks.audit import EntityIndex, answer_key, item_views
from kgreason.tasks.baselines import PARTIAL_WALKS, BaselineContext, get_baseline, win_share
from kgreason.tasks.generate import load_tasks


def main(folder: str) -> None:
    data = Path(folder)
    kg = load_kg(data / "kg.json")
    tasks = load_tasks(data / "eval.jsonl")
    views = item_views(kg, tasks, EntityIndex(kg))
    ctx = BaselineContext(kg)
    print(f"{data / 'eval.jsonl'}: {len(tasks)} items, {kg.name}")
    for name in PARTIAL_WALKS:
        fn = get_baseline(name).fn  # the rule itself, without the registry's free-form-only guard
        hits = []
        for task, view in zip(tasks, views, strict=True):
            scores = fn(view, ctx)
            key = answer_key(task)
            hits.append(win_share(scores, view.letters.index(key)) if scores and key in view.letters else 0.0)
        print(f"  {name:36s} {100 * sum(hits) / len(hits):5.1f}%")


if __name__ == "__main__":
    main(sys.argv[1])
