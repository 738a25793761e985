"""`kgreason bench eval-batch`: does a greedy evaluation move with its batch size, and what does each size cost?

One model, one task file, the evaluation's own answering path (kgreason.evaluate.runner.answer_tasks:
the chosen backend, greedy, chunks of --batch-size items) run once per batch size, one after another
in this process. For each size: wall seconds, items/s, the speed-up over the first size listed, and
against the first size the items whose completion text differs and whose parsed answer differs, plus
the accuracy. The issue's bar for "does not move": at most 1 of 150 answers differs.

Why answers can move at all: a CPU matmul may take another kernel for a few rows than for many (MKL on
AVX2 gives bit-different rows for 1-3, 5-7 and 9-11 rows, measured), and rows finish at different steps,
so the running batch shrinks; in fp32 those differences are a few ulps and only flip a near-tie.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

DEFAULT_BATCH_SIZES = (1, 16, 64)


def bench_eval_batch(model_ref: str | None, *, adapter: str | None, tasks_file: str, kg_ref: str | None = None,
                     batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES, max_items: int = 150,
                     max_new_tokens: int = 128, dtype: str = "fp32", backend: str = "hf", seed: int = 0,
                     quiet: bool = False) -> dict:
    from kgreason.evaluate.commands import find_kg
    from kgreason.evaluate.runner import EvalOptions, answer_tasks, merged_for_sampling, select_items
    from kgreason.hardware import cpu_description, cpu_line
    from kgreason.io import InputError
    from kgreason.kg.sources import open_kg
    from kgreason.models import load_model
    from kgreason.reward import Scorer
    from kgreason.tasks.generate import load_tasks

    tasks = select_items(load_tasks(tasks_file), max_items, seed)
    if not tasks:
        raise InputError(f"{tasks_file}: no tasks")
    kg = open_kg(find_kg(Path(tasks_file), kg_ref), json_only=True)
    model, tokenizer = load_model(model_ref, adapter=adapter, dtype=dtype)
    scorer = Scorer(kg)
    rows: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    seconds_of: list[float] = []
    with merged_for_sampling(model):
        # one untimed item first, so the first size listed does not pay the one-time costs
        answer_tasks(model, tokenizer, tasks[:1], scorer, EvalOptions(batch_size=1, backend=backend,
                     max_new_tokens=max_new_tokens, seed=seed, progress=False), "bench", {})
        for size in batch_sizes:
            if not quiet:
                print(f"batch size {size}: {len(tasks)} items ...", flush=True)
            options = EvalOptions(batch_size=size, backend=backend, max_new_tokens=max_new_tokens, seed=seed,
                                  progress=not quiet)
            started = time.perf_counter()
            episodes = answer_tasks(model, tokenizer, tasks, scorer, options, "bench", {})
            seconds = time.perf_counter() - started
            seconds_of.append(seconds)
            answers.append({t.id: (episodes[t.id].completion, episodes[t.id].reward.answer,
                                   episodes[t.id].reward.correct) for t in tasks})
            rows.append({"batch_size": size, "seconds": round(seconds, 2),
                         "items_per_s": round(len(tasks) / seconds, 3),
                         "accuracy": round(sum(a[2] for a in answers[-1].values()) / len(tasks), 4)})
    first = answers[0]
    for row, got, seconds in zip(rows, answers, seconds_of, strict=True):
        row["speedup_vs_first"] = round(seconds_of[0] / max(seconds, 1e-9), 2)
        row["texts_differ"] = sum(got[i][0] != first[i][0] for i in first)
        row["answers_differ"] = sum(got[i][1] != first[i][1] for i in first)
        row["differing_items"] = sorted(i for i in first if got[i][1] != first[i][1])
    worst = max(row["answers_differ"] for row in rows)
    return {"bench": "eval-batch", "cpu": cpu_description(), "cpu_line": cpu_line(),
            "model": model_ref or getattr(model, "kgreason_ref", None),
            "adapter": adapter, "tasks": tasks_file, "n_items": len(tasks), "max_new_tokens": max_new_tokens,
            "dtype": dtype, "backend": backend, "reference_batch_size": batch_sizes[0], "rows": rows,
            "max_answers_differ": worst, "invariant": worst <= 1}


def print_table(result: dict) -> None:
    print(f"CPU: {result['cpu_line']}")
    print(f"{result['n_items']} items, greedy, {result['max_new_tokens']} new tokens, {result['dtype']}, "
          f"backend {result['backend']}; differences against batch size {result['reference_batch_size']}")
    print(f"{'batch':>5} {'seconds':>8} {'items/s':>8} {'speed-up':>8} {'texts differ':>12} {'answers differ':>14} "
          f"{'accuracy':>8}")
    for r in result["rows"]:
        print(f"{r['batch_size']:5d} {r['seconds']:8.1f} {r['items_per_s']:8.2f} {r['speedup_vs_first']:7.2f}x "
              f"{r['texts_differ']:12d} {r['answers_differ']:14d} {100 * r['accuracy']:7.1f}%")
    verdict = "does not move" if result["invariant"] else "moves"
    print(f"the evaluation {verdict} with its batch size: at most {result['max_answers_differ']} of "
          f"{result['n_items']} answers differ (bar: 1)")


def add_bench_eval_batch_arguments(p: argparse.ArgumentParser) -> None:
    from kgreason import argtypes as at

    p.add_argument("--model", default=None, help="model reference (omit with --adapter to use the base it names)")
    p.add_argument("--adapter", metavar="DIR", help="LoRA adapter folder")
    p.add_argument("--tasks", metavar="FILE", required=True, help="task JSONL, e.g. runs/quick/data/eval.jsonl")
    p.add_argument("--kg", help="kg.json or a KG source (default: kg.json beside the task file)")
    p.add_argument("--batch-sizes", default=",".join(map(str, DEFAULT_BATCH_SIZES)),
                   help="comma list; the first is the reference the others are compared with")
    p.add_argument("--max-items", type=at.positive_int, default=150, help="a seeded subset of this many items")
    p.add_argument("--max-new-tokens", type=at.positive_int, default=128, help="generation budget per answer")
    p.add_argument("--dtype", default="fp32", choices=at.DTYPE_CHOICES, help="model precision")
    p.add_argument("--backend", default="hf", choices=at.BACKEND_CHOICES, help="sampling backend (kgreason eval --backend)")
    p.add_argument("--seed", type=int, default=0, help="item subset seed")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def cmd_bench_eval_batch(args: argparse.Namespace) -> int:
    from kgreason.io import InputError

    try:
        sizes = tuple(int(s) for s in args.batch_sizes.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise InputError(f"--batch-sizes: expected a comma list of positive integers, got {args.batch_sizes!r}")
    if not Path(args.tasks).is_file():
        raise InputError(f"{args.tasks}: no such task file")
    if args.model is None and args.adapter is None:
        args.model = "bundled:smollm2-135m"
    result = bench_eval_batch(args.model, adapter=args.adapter, tasks_file=args.tasks, kg_ref=args.kg,
                              batch_sizes=sizes, max_items=args.max_items, max_new_tokens=args.max_new_tokens,
                              dtype=args.dtype, backend=args.backend, seed=args.seed, quiet=args.json)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0
