"""Handlers for `kgreason tasks generate|audit` and `kgreason bench tasks` (cli.py stays thin)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from kgreason.argtypes import (
    at_least,
    non_negative_float,
    non_negative_int,
    out_dir,
    positive_int,
    unit_interval,
)
from kgreason.families import DEFAULT_FAMILY, FAMILIES
from kgreason.io import InputError
from kgreason.tasks import defaults as cfg  # the task-generation defaults, shared with tasks/generate.py

# The flag prefix and help of each default split: --eval-size, --easy-name, --hard-hops, ...
SPLIT_FLAGS = {
    "eval": ("eval", "held-out evaluation set"),
    "train_easy": ("easy", "short training questions"),
    "train_hard": ("hard", "pool of long training questions (never shares an item with eval)"),
}


def parse_hops(text: str) -> tuple[int, int]:
    """"4-5" -> (4, 5); "3" -> (3, 3)."""
    try:
        lo, _, hi = text.partition("-")
        lo_i, hi_i = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a hop range like 1-3 or 4, got {text!r}") from None
    if lo_i < 1 or hi_i < lo_i:
        raise argparse.ArgumentTypeError(f"hop range must satisfy 1 <= min <= max, got {text!r}")
    return lo_i, hi_i


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kg", required=True, help="the graph: kg.json or the hobby project's JSON "
                   "(github.com/softwarewrighter/multi-hop-reasoning)")
    p.add_argument("--out", required=True, type=out_dir,
                   help="output folder for the split JSONL files, facts.jsonl, manifest.json")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed and graph give byte-identical files")
    p.add_argument("--mode", choices=cfg.MODES, default=cfg.TASK_MODE,
                   help="closed: the model must know the facts; open: a bounded set of facts is in each prompt")
    for spec in cfg.DEFAULT_SPLITS:
        key, what = SPLIT_FLAGS[spec.name]
        p.add_argument(f"--{key}-name", default=spec.name, help=f"file name (without .jsonl) of the {what}")
        # The held-out split must have items; a training split may be left out with 0.
        p.add_argument(f"--{key}-size", type=positive_int if spec.held_out else non_negative_int,
                       default=spec.size, help=f"items in the {what}")
        # A string default goes through `type` too, and the help then shows it as typed ("4-5").
        p.add_argument(f"--{key}-hops", type=parse_hops, default=f"{spec.min_hops}-{spec.max_hops}",
                       metavar="MIN-MAX", help=f"hop lengths of the {what}")
    p.add_argument("--max-context-facts", type=at_least(5), default=cfg.TASK_MAX_CONTEXT_FACTS,
                   help="open mode: facts per prompt, gold path included (at least 5)")
    p.add_argument("--attempts-per-item", type=positive_int, default=cfg.TASK_ATTEMPTS_PER_ITEM,
                   help="sampling budget: candidate items tried per wanted item before giving up")
    p.add_argument("--cover-eval-edges", type=unit_interval, default=cfg.TASK_COVER_EVAL_EDGES,
                   help="share (0..1) of each shorter training split steered onto edges of eval paths")
    p.add_argument("--any-type-distractors", action="store_true",
                   help="allow distractors of another type than the answer (default: same type where types exist)")
    p.add_argument("--strict-distractors", choices=cfg.STRICT_CHOICES, default=cfg.TASK_STRICT_DISTRACTORS,
                   help="which splits must have structure-matched distractors (an item without three is "
                        "rejected); the others fall back to weaker, balanced kinds (default: held_out)")
    p.add_argument("--image-decoys", choices=("auto", "on", "off"), default="auto",
                   help="decoys also from the stated chain's image (entities the chain reaches from other "
                        "starts), for graphs whose hubs funnel chains; auto (default): generate again with them when "
                        "a chain-image baseline is over --max-shortcut")
    p.add_argument("--family", choices=FAMILIES.names(), default=DEFAULT_FAMILY,
                   help="how items are asked: multiple_choice (four options A-D) or free_form (no options; the "
                        "answer line names the entity; default: %(default)s)")
    p.add_argument("--max-shortcut", type=unit_interval, default=None, metavar="ACC",
                   help="refuse (exit 2, nothing written) when a shortcut baseline answers more than this share "
                        "of a held-out split (0..1, default: the family's, 0.35 multiple choice, 0.05 free form)")
    p.add_argument("--allow-shortcuts", action="store_true",
                   help="write the files even when a shortcut baseline is above --max-shortcut; the manifest "
                        "records it and a run trained on them says so in its 'What went wrong' paragraph")


def generate_command(args: argparse.Namespace) -> int:
    from kgreason.kg.sources import open_kg
    from kgreason.tasks.build import generate_with_image_decoys
    from kgreason.tasks.generate import EmptyHeldOutSplit, TaskConfig, write_dataset

    def from_flags(spec: cfg.SplitSpec) -> cfg.SplitSpec:  # held_out and strict stay the default split's
        key = SPLIT_FLAGS[spec.name][0]
        lo, hi = getattr(args, f"{key}_hops")
        return replace(spec, name=getattr(args, f"{key}_name"), size=getattr(args, f"{key}_size"),
                       min_hops=lo, max_hops=hi)

    splits = tuple(from_flags(spec) for spec in cfg.DEFAULT_SPLITS)
    config = TaskConfig(seed=args.seed, mode=args.mode, splits=splits, max_context_facts=args.max_context_facts,
                        attempts_per_item=args.attempts_per_item, cover_eval_edges=args.cover_eval_edges,
                        same_type_distractors=not args.any_type_distractors,
                        strict_distractors=args.strict_distractors, family=args.family,
                        max_shortcut=args.max_shortcut)
    t0 = time.perf_counter()
    kg = open_kg(args.kg, json_only=True)
    t1 = time.perf_counter()
    try:
        data = generate_with_image_decoys(kg, config, args.image_decoys, args.max_shortcut,
                                          progress=sys.stderr.isatty(), fail_on_empty_held_out=True)
    except EmptyHeldOutSplit as exc:
        raise InputError(f"{args.kg}: {exc}; nothing written") from None
    for spec in splits:  # an empty held-out split is no dataset: say why, write nothing
        if spec.held_out and spec.size > 0 and not data.splits[spec.name]:
            rej = data.manifest["rejections"][spec.name]
            why = ", ".join(f"{k} {v}" for k, v in sorted(rej.items(), key=lambda kv: -kv[1])) or "no candidates"
            raise InputError(f"{args.kg}: the graph gives no well-posed item for the held-out split "
                             f"{spec.name!r} (rejected: {why}); nothing written")
    from kgreason.tasks.refusal import guard_shortcuts

    guard_shortcuts(args.kg, kg, data, args.max_shortcut, args.allow_shortcuts)  # warns when it lets data through
    paths = write_dataset(data, args.out)
    t2 = time.perf_counter()
    m = data.manifest
    print(f"graph {args.kg}: {m['kg']['entities']} entities, {m['kg']['edges']} edges (loaded in {t1 - t0:.2f}s)")
    for spec in splits:
        n = m["counts"][spec.name]
        short = "" if n >= spec.size else f"  (asked {spec.size}: the graph has too few well-posed items)"
        rej = m["rejections"][spec.name]
        rej_text = ", ".join(f"{k} {v}" for k, v in rej.items()) or "none"
        print(f"{paths[spec.name]}: {n} items, hops {m['by_hop'][spec.name]}{short}\n    rejected: {rej_text}")
    ho = m["held_out_edges"]
    print(f"{paths[config.facts_name]}: {m['counts'][config.facts_name]} facts; eval path edges {ho['distinct']}: "
          f"taught by facts {ho['taught_by_facts']}, asked in training questions {ho['asked_in_training_questions']}")
    print(f"{paths['manifest']}: seed {config.seed}, mode {config.mode}; generated in {t2 - t1:.2f}s")
    return 0


def add_audit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="task JSONL to audit, ours or the hobby project's "
                   "(github.com/softwarewrighter/multi-hop-reasoning)")
    p.add_argument("--kg", required=True, help="the graph the tasks were made from")
    p.add_argument("--against", nargs="*", default=[], metavar="TRAIN",
                   help="training files (task JSONL and/or facts.jsonl) to check overlap and taught edges against")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when the file is empty, anything is ill posed or leaked, or a shortcut baseline "
                        "beats --max-shortcut")
    p.add_argument("--max-shortcut", type=unit_interval, default=None, metavar="ACC",
                   help="highest accuracy a shortcut baseline may reach under --strict (0..1, default: the task "
                        "family's, 0.35 multiple choice, 0.05 free form)")


def audit_command(args: argparse.Namespace) -> int:
    from kgreason.kg.sources import open_kg
    from kgreason.tasks.audit import EntityIndex, audit_tasks, format_report, load_material
    from kgreason.tasks.generate import load_tasks

    kg = open_kg(args.kg, json_only=True)
    tasks = load_tasks(args.file)
    index = EntityIndex(kg)
    against = [load_material(p, index) for p in args.against]
    report = audit_tasks(kg, tasks, against, max_shortcut=args.max_shortcut)
    report["file"] = str(args.file)
    print(json.dumps(report, indent=2) if args.json else format_report(args.file, report))
    return 1 if args.strict and report["problems"] else 0


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--edges", type=positive_int, default=1_000_000, help="edges in the generated graph (at least 100)")
    p.add_argument("--graph", choices=["builtin", "synthetic"], default="builtin",
                   help="builtin: the DevOps KG grown to --edges; synthetic: a random typed graph (faster to build)")
    p.add_argument("--seed", type=int, default=0, help="graph and task seed")
    p.add_argument("--items", type=positive_int, default=400, help="questions to generate on each graph (4-5 hops)")
    p.add_argument("--naive-seconds", type=non_negative_float, default=20.0,
                   help="time budget of the naive (enumerate every path) baseline; it stops there")
    p.add_argument("--tmp", default=None, help="folder for the graph file (default: a temporary folder)")
    p.add_argument("--generation", action="store_true",
                   help="only time task generation on the built-in graph at the default split sizes, for each "
                        "task family and mode (the scale figures are skipped)")
    p.add_argument("--json", action="store_true", help="with --generation: print one JSON object")


def bench_tasks_command(args: argparse.Namespace) -> int:
    from kgreason.tasks.bench import run_bench

    if args.generation:
        from kgreason.hardware import cpu_line
        from kgreason.tasks.bench import generation_seconds

        rows = generation_seconds(seed=args.seed)
        if args.json:
            print(json.dumps({"cpu": cpu_line(), "seed": args.seed, "generation": rows}))
        else:
            print(cpu_line())
            for r in rows:
                made = ", ".join(f"{k} {v}/{r['asked'][k]}" for k, v in r["made"].items())
                print(f"{r['family']:>16} {r['mode']:>6}: {r['seconds']:.1f} s ({made})")
        return 0
    if args.edges < 100:
        raise InputError(f"--edges must be at least 100, got {args.edges}")
    run_bench(edges=args.edges, seed=args.seed, items=args.items, naive_seconds=args.naive_seconds,
              tmp=Path(args.tmp) if args.tmp else None, graph=args.graph)
    return 0
