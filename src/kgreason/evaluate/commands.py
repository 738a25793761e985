"""Handlers behind `kgreason eval` (kept out of cli.py so the parser stays thin and torch-free)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kgreason.argtypes import BACKEND_CHOICES, DTYPE_CHOICES, out_dir, positive_int
from kgreason.io import InputError, atomic_write_text


def find_kg(tasks_file: Path, kg_arg: str | None) -> Path:
    """--kg, else kg.json beside the task file (run folders keep data/kg.json next to the tasks)."""
    if kg_arg:
        path = Path(kg_arg)
        if not path.is_file():
            raise InputError(f"{path}: --kg file not found")
        return path
    beside = tasks_file.parent / "kg.json"
    if beside.is_file():
        return beside
    raise InputError(f"{tasks_file}: no kg.json beside the task file; pass the graph with --kg FILE")


def run_eval(args: argparse.Namespace) -> int:
    if args.compare:
        return run_compare(args)
    missing = [flag for flag, value in (("--tasks", args.tasks), ("--out", args.out)) if not value]
    if args.model is None and args.adapter is None:
        missing.insert(0, "--model (or --adapter)")
    if missing:
        raise InputError(f"kgreason eval: missing {', '.join(missing)} (or use --compare DIR DIR ...)")

    from kgreason.evaluate.report import pct
    from kgreason.evaluate.runner import EvalOptions, evaluate_model
    from kgreason.kg.io import load_kg
    from kgreason.models import load_model
    from kgreason.tasks.generate import load_tasks

    tasks_file = Path(args.tasks)
    tasks = load_tasks(tasks_file)
    if not tasks:
        raise InputError(f"{tasks_file}: no tasks")
    kg = load_kg(find_kg(tasks_file, args.kg))
    model, tokenizer = load_model(args.model, adapter=args.adapter, dtype=args.dtype)
    options = EvalOptions(
        seed=args.seed, max_items=args.max_items, shuffle=not args.no_shuffle, drift=not args.no_drift,
        references=not args.no_references, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
        reward_preset=args.reward, backend=args.backend, n_resamples=args.resamples,
    )
    meta = {"tasks_file": str(tasks_file), "kg_file": str(find_kg(tasks_file, args.kg))}
    m = evaluate_model(model, tokenizer, tasks, kg, out_dir=args.out, options=options, meta=meta)
    print(f"accuracy {pct(m['accuracy'])}")
    for hop, iv in m["by_hop"].items():
        print(f"  {hop} hops  {pct(iv)}")
    print(f"faithful chains {pct(m['trace']['faithful_share'])}; format failures {pct(m['format_failure_rate'])}")
    if m.get("shuffle"):
        print(f"shuffled accuracy {pct(m['shuffle']['accuracy_shuffled'])}; "
              f"chosen entity changed on {pct(m['shuffle']['entity_changed_share'])}")
    if m.get("drift"):
        print(f"drift KL {m['drift']['mean_kl']:.3g} nats/token")
    print(f"wrote {Path(args.out) / 'report.md'}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from kgreason.evaluate.compare import compare_markdown, load_evals

    evals = [e for path in args.compare for e in load_evals(path)]
    text = compare_markdown(evals, seed=args.seed, n_resamples=args.resamples)
    sys.stdout.write(text)
    if args.out:
        atomic_write_text(Path(args.out) / "compare.md", text)
        print(f"wrote {Path(args.out) / 'compare.md'}", file=sys.stderr)
    return 0


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model reference: bundled:smollm2-135m, tiny:random, an HF folder or a .gguf; "
                   "omit with --adapter to use the base the adapter names")
    p.add_argument("--adapter", help="PEFT adapter folder (drift is measured against the same model with it disabled)")
    p.add_argument("--tasks", help="task JSONL to evaluate on (e.g. data/eval.jsonl)")
    p.add_argument("--out", type=out_dir, help="output folder: metrics.json, predictions.jsonl, report.md, PNG plots "
                   "(with --compare: where compare.md goes)")
    p.add_argument("--kg", help="kg.json (default: kg.json beside the task file)")
    p.add_argument("--seed", type=int, default=0, help="seed for the item subset, the option shuffle and the bootstrap")
    p.add_argument("--max-items", type=positive_int, default=None, help="evaluate a seeded random subset of this many items")
    p.add_argument("--no-shuffle", action="store_true", help="skip the shuffled-options pass (halves the time)")
    p.add_argument("--no-drift", action="store_true", help="skip the KL-from-base measurement")
    p.add_argument("--no-references", action="store_true", help="skip the shortcut-baseline and KG-oracle rows")
    p.add_argument("--batch-size", type=positive_int, default=16, help="prompts per generation batch")
    p.add_argument("--max-new-tokens", type=positive_int, default=192, help="generation budget per answer")
    p.add_argument("--reward", default="kgreason", choices=["kgreason", "seed", "paper"], help="reward preset to score with")
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                   help="sampling backend (auto: vllm when installed with a GPU, else hf)")
    p.add_argument("--dtype", default=None, choices=DTYPE_CHOICES,
                   help="model precision (default: what the device runs fastest)")
    p.add_argument("--resamples", type=positive_int, default=2000, help="bootstrap resamples per interval")
    p.add_argument("--compare", nargs="+", metavar="DIR", help="compare eval folders or run folders side by side "
                   "with paired bootstrap differences (vs the first), instead of evaluating")
