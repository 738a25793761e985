"""`kgreason bench train`'s flags and handler (torch-free to import: cli.py adds the flags when it
builds the parser; the benchmark itself, kgreason.bench.train, imports torch when it runs)."""

from __future__ import annotations

import argparse

from kgreason.argtypes import DTYPE_CHOICES, positive_int
from kgreason.config import BUNDLED_MODEL
from kgreason.io import InputError
from kgreason.tasks.defaults import MODES


# --- kgreason bench train ------------------------------------------------------------------------
def add_bench_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=BUNDLED_MODEL, help="model reference")
    p.add_argument("--steps", type=positive_int, default=4, help="timed optimizer steps per row (after 1 warm-up step)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="examples per step (the SFT default)")
    p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                   help="training precision (auto: the one training picks here)")
    p.add_argument("--seed", type=int, default=0, help="data seed")
    p.add_argument("--modes", default=",".join(MODES),
                   help="comma list of task modes to time: closed (closed-book) and/or open (open-book)")
    p.add_argument("--paths", default="reference,fast,compiled",
                   help="comma list of training paths: reference (TRL's stock path), fast, compiled (fast with "
                        "--compile-layers)")
    p.add_argument("--no-profile", dest="profile", action="store_false",
                   help="skip the second, profiled run of each fast/compiled row (no matmul/attention split, no "
                        "kernel bounds)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def cmd_bench_train(args: argparse.Namespace) -> int:
    import json

    from kgreason.bench.train import PATHS, bench_train

    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    paths = tuple(m.strip() for m in args.paths.split(",") if m.strip())
    if not modes or set(modes) - set(MODES):
        raise InputError(f"--modes: expected a comma list of {', '.join(MODES)}, got {args.modes!r}")
    if not paths or set(paths) - set(PATHS):
        raise InputError(f"--paths: expected a comma list of {', '.join(PATHS)}, got {args.paths!r}")
    result = bench_train(args.model, steps=args.steps, batch_size=args.batch_size, dtype=args.dtype, seed=args.seed,
                         modes=modes, paths=paths, quiet=args.json, profile=args.profile)
    if args.json:
        print(json.dumps(result))
    return 0
