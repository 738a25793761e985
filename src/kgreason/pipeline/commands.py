"""`kgreason run`: the main job's command (its flags come from config.py's PipelineConfig).

cli.py declares the command and calls these handlers, which import the pipeline (and torch) lazily.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kgreason.argtypes import keep_epilog_lines, out_dir_path
from kgreason.train.commands import options_from_args


# --- kgreason run --------------------------------------------------------------------------------
def _run_skip() -> tuple[str, ...]:
    """Paths `kgreason run` takes no flag for: seeds and reward presets that follow --seed and --reward-preset."""
    from kgreason.config import PIPELINE_DERIVED

    return PIPELINE_DERIVED


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    from kgreason.config import PipelineConfig, pipeline_profile, profile_names
    from kgreason.options import add_options

    p.add_argument("--profile", default="quick", choices=profile_names(),
                   help="run profile (kgreason/profiles/NAME.yaml): quick, about 15 minutes on a 2-core CPU with AMX "
                        "(about 58 with AVX2 only; --dry-run estimates yours); "
                        "full, for a GPU; smoke, every stage on tiny:random in about a minute")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file of options laid over the profile (keys as in "
                   "kgreason/config.py's PipelineConfig, e.g. `sft: {train: {max_steps: 50}}`); flags override it")
    p.add_argument("--run-dir", type=out_dir_path,
                   help="run folder (default: runs/<profile>, or runs/<profile>-<hash> when options are overridden)")
    p.add_argument("--json", action="store_true",
                   help="print the final table as one JSON object on stdout; progress and messages go to stderr")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved options (as a --config file), the run folder, the stages and a time "
                        "estimate, and run nothing")
    add_options(p, PipelineConfig, defaults=pipeline_profile("quick"), skip=_run_skip(),
                title="options (defaults shown are the quick profile's)")
    p.epilog = RUN_EXAMPLES
    p.formatter_class = keep_epilog_lines(p.formatter_class)


RUN_EXAMPLES = """examples:
  kgreason run                                   # = make run: the quick profile, runs/quick
  kgreason run --kg tests/data/hobby_kg.json     # your own graph (kg.json, TSV/CSV triples, builtin:NAME)
  kgreason run --sft-max-steps 50 -k 8 --rsft-distribution curriculum
  kgreason run --rl grpo                         # GRPO with the KG reward instead of RSFT (same SFT adapter)
  kgreason run --config my.yaml --dry-run        # print the resolved options and the plan
  kgreason run --profile full                    # GPU-sized; --profile smoke: tiny:random in a minute
"""


def pipeline_config_from_args(args: argparse.Namespace) -> Any:
    from kgreason.config import PHASE_SECTIONS, PipelineConfig, pipeline_profile

    cfg = options_from_args(PipelineConfig, args, base=pipeline_profile(args.profile), skip=_run_skip())
    cfg.profile = args.profile
    cfg.seeded()
    for name in PHASE_SECTIONS:
        getattr(cfg, name).validate()
    from kgreason.kg.sources import check_kg_source

    check_kg_source(cfg.data.kg)
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    from kgreason.pipeline.stages import default_run_dir, dry_run_plan, run_pipeline

    cfg = pipeline_config_from_args(args)
    if args.dry_run:
        print(dry_run_plan(cfg, Path(args.run_dir) if args.run_dir else default_run_dir(cfg)))
        return 0
    if getattr(args, "json", False):
        return _run_as_json(cfg, args)
    run_pipeline(cfg, args.run_dir, argv=sys.argv)
    return 0


def _run_as_json(cfg: Any, args: argparse.Namespace) -> int:
    """`run --json`: the job as usual with its console output moved to stderr, then the final
    table as one JSON object on stdout (kgreason.runs.listing.run_table)."""
    import contextlib
    import json

    from kgreason.pipeline.stages import run_pipeline
    from kgreason.runs.listing import run_table

    with contextlib.redirect_stdout(sys.stderr):
        run = run_pipeline(cfg, args.run_dir, argv=sys.argv)
    print(json.dumps(run_table(run.root)))
    return 0
