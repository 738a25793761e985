"""Handler behind `kgreason experiment distribution` (parser arguments here, logic in distribution.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kgreason.argtypes import out_dir, positive_int

ARM_HELP = "base, sft, rsft_easy, rsft_hard, rsft_curriculum, rsft_mixed, rsft_frontier, grpo_easy"


def add_distribution_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="quick", choices=["tiny", "quick", "full"],
                   help="scale: tiny (tiny:random, seconds per arm, for tests), quick (bundled SmolLM2, the "
                   "recipe of `kgreason run`: open book, 150 eval items, 3 seeds), full (300 eval items, 3 seeds, "
                   "longer training; for a GPU)")
    p.add_argument("--seeds", type=positive_int, default=None, help="seeds per trained arm (default: the preset's)")
    p.add_argument("--mode", default="open", choices=["closed", "open"],
                   help="closed-book (facts must be learnt) or open-book (relevant facts in the prompt)")
    p.add_argument("--kg", default="", help="your own graph: kg.json, TSV/CSV triples or builtin:NAME "
                   "(default: the built-in DevOps KG)")
    p.add_argument("--out", default=None, type=out_dir, help="experiment folder (default: experiments/distribution-<preset>-<mode>)")
    p.add_argument("--arms", default=None, help=f"comma list of arms to run (default: all): {ARM_HELP}; "
                   "RSFT/GRPO arms bring the SFT arm they start from")
    p.add_argument("--model", default=None, help="model reference overriding the preset's")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the KG and the task files (same for all arms)")
    p.add_argument("--report-only", action="store_true",
                   help="only aggregate the arm-seeds already finished into results.json and report.md")


def run_distribution(args: argparse.Namespace) -> int:
    from kgreason.experiments.distribution import ARM_NAMES, ExperimentConfig, select_arms
    from kgreason.experiments.distribution import run_distribution as run
    from kgreason.io import InputError
    from kgreason.kg.io import resolve_source

    out = Path(args.out or f"experiments/distribution-{args.preset}-{args.mode}")
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip()) if args.arms else ARM_NAMES
    # Checked before the experiment folder is created, so a typo leaves nothing behind.
    select_arms(arms)
    if args.kg and not resolve_source(args.kg).is_file():
        raise InputError(f"--kg {args.kg}: file not found")
    cfg = ExperimentConfig(out=out, preset=args.preset, mode=args.mode, kg=args.kg, seeds=args.seeds, arms=arms,
                           model=args.model, data_seed=args.data_seed, report_only=args.report_only)
    started = time.time()
    results = run(cfg)
    hops = sorted(results["eval"]["by_hop"], key=int)
    print(f"\n{'arm':<22} {'seeds':>5} {'accuracy':>9} " + " ".join(f"{h + ' hops':>9}" for h in hops)
          + f" {'faithful':>9} {'drift KL':>9}")
    for a in results["arms"]:
        d = a.get("drift_kl")
        print(f"{a['label']:<22} {len(a['seeds_done']):>5} {100 * a['accuracy']['mean']:>8.1f}% "
              + " ".join(f"{100 * a['by_hop'][h]['mean']:>8.1f}%" if h in a["by_hop"] else f"{'–':>9}" for h in hops)
              + f" {100 * a['faithful_share']['mean']:>8.1f}% " + (f"{d['mean']:>9.3g}" if d else f"{'–':>9}"))
    print(f"\nwall time this invocation: {time.time() - started:.0f} s; report: {out / 'report.md'}")
    return 0
