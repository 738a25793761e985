"""Handlers behind `kgreason eval` (kept out of cli.py so the parser stays thin and torch-free)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kgreason.argtypes import DTYPE_CHOICES, out_dir
from kgreason.io import InputError, atomic_write_text


def find_kg(tasks_file: Path, kg_arg: str | None) -> Path | str:
    """--kg (a file or a registered KG source), else kg.json beside the task file (run folders
    keep data/kg.json next to the tasks)."""
    from kgreason.kg.sources import source_scheme

    if kg_arg:
        if source_scheme(kg_arg) is not None:
            return kg_arg
        path = Path(kg_arg)
        if not path.is_file():
            raise InputError(f"{path}: --kg file not found")
        return path
    beside = tasks_file.parent / "kg.json"
    if beside.is_file():
        return beside
    raise InputError(f"{tasks_file}: no kg.json beside the task file; pass the graph with --kg FILE")


def run_eval(args: argparse.Namespace) -> int:
    if getattr(args, "facts", None):
        return run_fact_recall(args)
    if args.compare:
        if getattr(args, "json", False):  # said, not ignored: --compare prints a markdown table
            raise InputError("--json: not with --compare, which prints markdown (compare.md with --out)")
        return run_compare(args)
    if getattr(args, "json", False):
        return _run_eval_json(args)
    missing = [flag for flag, value in (("--tasks", args.tasks), ("--out", args.out)) if not value]
    if args.model is None and args.adapter is None:
        missing.insert(0, "--model (or --adapter)")
    if missing:
        raise InputError(f"kgreason eval: missing {', '.join(missing)} (or use --compare DIR DIR ...)")

    from kgreason.evaluate.report import pct
    from kgreason.evaluate.runner import EvalOptions, evaluate_model
    from kgreason.kg.sources import open_kg
    from kgreason.models import load_model
    from kgreason.tasks.generate import load_tasks

    tasks_file = Path(args.tasks)
    tasks = load_tasks(tasks_file)
    if not tasks:
        raise InputError(f"{tasks_file}: no tasks")
    kg = open_kg(find_kg(tasks_file, args.kg), json_only=True)
    settings = _settings(args)
    model, tokenizer = load_model(args.model, adapter=args.adapter, dtype=args.dtype)
    options = EvalOptions(**asdict(settings))
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
        entropy = m["drift"].get("mean_entropy")
        print(f"drift KL {m['drift']['mean_kl']:.3g} nats/token"
              + (f", entropy {entropy:.3f} nats/token (base {m['drift']['base_mean_entropy']:.3f})" if entropy is not None else ""))
    print(f"wrote {Path(args.out) / 'report.md'}")
    return 0


def run_fact_recall(args: argparse.Namespace) -> int:
    """`eval --facts FILE`: fact recall (kgreason.evaluate.recall) instead of the question evaluation."""
    import json

    if args.tasks or args.compare:
        raise InputError("--facts: evaluates fact recall instead of a task file or a comparison; leave out "
                         f"{'--tasks' if args.tasks else '--compare'}")
    if args.model is None and args.adapter is None:
        raise InputError("kgreason eval --facts: missing --model (or --adapter)")
    facts_file = Path(args.facts)
    if not facts_file.is_file():
        raise InputError(f"{facts_file}: --facts file not found")
    from kgreason.evaluate.recall import evaluate_recall
    from kgreason.models import load_model

    model, tokenizer = load_model(args.model, adapter=args.adapter, dtype=args.dtype)
    result = evaluate_recall(model, tokenizer, facts_file, args.out, rows=_settings(args).batch_size)
    if getattr(args, "json", False):
        print(json.dumps(result))
        return 0
    for name, label in (("all", "every fact"), ("eval_queries", "the held-out paths' (head, relation) pairs")):
        r = result[name]
        print(f"{label}: {100 * r['edge_recall']:.1f}% of {r['edges']} edges recalled, precision "
              f"{100 * r['precision']:.1f}%, every tail exactly {100 * r['exact']:.1f}% of {r['queries']} queries")
    edges = result["eval_path_edges"]
    if edges["edge_recall"] is None:
        print(f"held-out gold path edges ({edges['edges']}): not measured, the facts have no head and relation ids")
    else:
        print(f"held-out gold path edges: {100 * edges['edge_recall']:.1f}% of {edges['edges']} recalled, precision "
              f"{100 * edges['precision']:.1f}%")
    if args.out:
        print(f"wrote {Path(args.out) / 'recall.json'}")
    return 0


# Per-item or bulky keys of metrics.json left out of `eval --json` (options holds the training tasks).
_NOT_FIGURES = frozenset({"options", "item_hops"})


def _run_eval_json(args: argparse.Namespace) -> int:
    """`eval --json`: the evaluation as usual, its summary lines and any library output moved to
    stderr, then one JSON object on stdout with the figures of metrics.json (scripts parse stdout)."""
    import contextlib
    import json

    from kgreason.io import read_json

    with contextlib.redirect_stdout(sys.stderr):
        run_eval(argparse.Namespace(**{**vars(args), "json": False}))
    out = Path(args.out)
    metrics = read_json(out / "metrics.json")
    figures = {k: v for k, v in metrics.items() if k not in _NOT_FIGURES}
    print(json.dumps({**figures, "out": str(out), "report": str(out / "report.md")}))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from kgreason.evaluate.compare import compare_markdown, load_evals

    evals = [e for path in args.compare for e in load_evals(path)]
    settings = _settings(args)
    text = compare_markdown(evals, seed=settings.seed, n_resamples=settings.n_resamples)
    sys.stdout.write(text)
    if args.out:
        atomic_write_text(Path(args.out) / "compare.md", text)
        print(f"wrote {Path(args.out) / 'compare.md'}", file=sys.stderr)
    return 0


def _settings(args: argparse.Namespace) -> Any:
    """EvalSettings: the defaults <- --config FILE <- the flags given."""
    from kgreason.config import EvalSettings
    from kgreason.options import leaves, resolve

    return resolve(EvalSettings, EvalSettings(), args.config, args, list(leaves(EvalSettings)))


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    from kgreason.config import EvalSettings
    from kgreason.options import add_options

    p.add_argument("--model", help="model reference: bundled:smollm2-135m, tiny:random, an HF folder or a .gguf; "
                   "omit with --adapter to use the base the adapter names")
    p.add_argument("--adapter", help="PEFT adapter folder (drift is measured against the same model with it disabled)")
    p.add_argument("--tasks", help="task JSONL to evaluate on (e.g. data/eval.jsonl)")
    p.add_argument("--facts", metavar="FILE", help="instead of --tasks: ask every (head, relation) of a facts.jsonl "
                   "greedily and report fact recall (closed book: what the model knows before it composes), over "
                   "all facts and the gold paths of the held-out file beside it; --out gets recall.json, "
                   "answers.jsonl. Of the evaluation options only --batch-size applies")
    p.add_argument("--out", type=out_dir, help="output folder: metrics.json, predictions.jsonl, report.md, PNG plots "
                   "(with --compare: where compare.md goes)")
    p.add_argument("--kg", help="kg.json or a KG source such as builtin:umls (default: kg.json beside the task file)")
    p.add_argument("--dtype", default=None, choices=DTYPE_CHOICES,
                   help="model precision (default: what the device runs fastest)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file of evaluation options (keys as in "
                   "kgreason/config.py's EvalSettings); flags override it")
    p.add_argument("--compare", nargs="+", metavar="DIR", help="compare eval folders or run folders side by side "
                   "with paired bootstrap differences (vs the first), instead of evaluating")
    p.add_argument("--json", action="store_true", help="print the figures (metrics.json without per-item data) as "
                   "one JSON object on stdout; progress and the summary lines go to stderr")
    add_options(p, EvalSettings, title="evaluation options (kgreason/config.py EvalSettings)")
