"""`kgreason experiment GRID`: a grid file (a bundled name or a path; kgreason/experiments/arms.py)
and flags generated from kgreason/config.py's ExperimentConfig (the arms, the seeds and every option
of the recipe), the scale and --config file beneath them."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from kgreason.argtypes import out_dir
from kgreason.phases import training_phases

EXAMPLES = """examples:
  kgreason experiment reward                    # = experiments/reward.yaml: the reward ablation, 3 seeds
  kgreason experiment experiments/reward.yaml --arms rsft_answer,rsft_kgreason --seeds 1
  kgreason experiment distribution --scale quick --arms base,sft,rsft_easy,rsft_hard
  kgreason experiment distribution --scale quick --seeds 1 --rsft-rounds 3 --dry-run
  kgreason experiment my_grid.yaml --scale tiny --out /tmp/exp   # seconds an arm, for a smoke test
  kgreason experiment distribution --config my_experiment.yaml --report-only
  kgreason experiment reward --report-only --drift   # add drift and entropy to finished arm-seeds, then report
"""


def _skip() -> tuple[str, ...]:
    from kgreason.config import EXPERIMENT_DERIVED

    return EXPERIMENT_DERIVED


def add_experiment_arguments(p: argparse.ArgumentParser) -> None:
    from kgreason.argtypes import keep_epilog_lines
    from kgreason.config import ExperimentConfig, experiment_scale, scale_names
    from kgreason.experiments.arms import grid_names
    from kgreason.options import add_options

    p.add_argument("grid", metavar="GRID",
                   help=f"the experiment: a bundled grid ({', '.join(grid_names())}) or a grid YAML file "
                        "(question + arms, each arm a name, a kind and overrides of the run profile)")

    p.add_argument("--scale", default="quick", choices=scale_names(),
                   help="experiment scale (kgreason/profiles/scale-NAME.yaml): tiny (tiny:random, seconds per arm, "
                   "for tests), quick (bundled SmolLM2, the recipe of `kgreason run`'s quick profile, 3 seeds), "
                   "full (the full run profile, 3 seeds; for a GPU)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file of options laid over the scale (keys as in "
                   "kgreason/config.py's ExperimentConfig: seeds, arms, run: {...}); flags override it")
    p.add_argument("--out", default=None, type=out_dir,
                   help="experiment folder (default: experiments/<grid>-<scale>-<mode>)")
    p.add_argument("--report-only", action="store_true",
                   help="only aggregate the arm-seeds already finished into results.json and report.md")
    p.add_argument("--drift", action="store_true",
                   help="measure drift from the base and the model's entropy on each finished arm-seed whose "
                        "evaluation ran without them (teacher-forced passes over its saved greedy answers: 501 s "
                        "for a quick-scale arm-seed on an AVX2 CPU), for the report's entropy table and the findings page")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved options (as a --config file), the arm-seeds and a time estimate; run nothing")
    add_options(p, ExperimentConfig, defaults=experiment_scale("quick"), skip=_skip(),
                title="options (defaults shown are the quick scale's)")
    p.epilog = EXAMPLES
    p.formatter_class = keep_epilog_lines(p.formatter_class)


def experiment_from_args(args: argparse.Namespace) -> Any:
    from kgreason.config import ExperimentConfig, experiment_scale
    from kgreason.experiments.arms import load_grid
    from kgreason.experiments.grid import Experiment
    from kgreason.kg.sources import check_kg_source
    from kgreason.options import leaves, resolve

    cfg = resolve(ExperimentConfig, experiment_scale(args.scale), args.config, args, list(leaves(ExperimentConfig)),
                  _skip())
    cfg.scale = args.scale
    # Checked before the experiment folder is created, so a typo leaves nothing behind.
    grid = load_grid(args.grid)
    grid.select(cfg.arms)
    check_kg_source(cfg.run.data.kg)
    from kgreason.phases import phase_options

    for phase in {*training_phases(plugins=False), *(arm.kind for arm in grid.select(cfg.arms) if arm.kind != "base")}:
        phase_options(cfg.run, phase).validate()  # an arm of a phase without options is refused here
    from kgreason.experiments.grid import arm_config

    for arm in grid.select(cfg.arms):  # each arm's options must validate too
        arm_cfg = arm_config(cfg.run, arm, 0)
        for phase in training_phases(plugins=False):
            getattr(arm_cfg, phase).validate()
    out = Path(args.out or f"experiments/{grid.name}-{args.scale}-{cfg.run.data.mode}")
    return Experiment(out=out, config=cfg, grid=grid, report_only=args.report_only, drift=args.drift)


def dry_run_plan(exp: Any) -> str:
    from kgreason.experiments.arms import ARM_FILE, run_dir, seeds_for
    from kgreason.experiments.grid import shared_source
    from kgreason.experiments.share import expected_data_digest, sft_adapter_digest
    from kgreason.hardware import cpu_line
    from kgreason.options import to_dict, to_yaml
    from kgreason.pipeline.stages import cpu_units, estimate_seconds

    est = estimate_seconds(exp.recipe)
    per_kind = {"base": est["base_eval"] * exp.recipe.eval.max_new_tokens
                / max(1, exp.recipe.base_eval_max_new_tokens or exp.recipe.eval.max_new_tokens),
                **{p: est[p] + est[f"{p}_eval"] for p in training_phases() if p in est}}
    lines, total = [], 0.0
    sft_from: dict[int, str | None] = {}  # seed -> digest of the SFT adapter a copy would bring
    data = (expected_data_digest(exp.out, json.loads(json.dumps(to_dict(exp.recipe.data)))) if exp.config.share
            else None)
    for arm in exp.grid.select(exp.config.arms):
        for seed in seeds_for(arm, exp.seeds):
            done = (run_dir(exp.out, arm, seed) / ARM_FILE).is_file()
            source = None
            if not done and data is not None:
                source = shared_source(exp, arm, seed, sft_digest=sft_from.get(seed), data=data)
                if source is not None and arm.name == "sft":
                    sft_from[seed] = sft_adapter_digest(source.parent.parent, seed)
            seconds = 0.0 if done or source else per_kind.get(arm.kind)  # a new or plugin phase has no estimate
            total += seconds or 0.0
            when = ("done (reused)" if done else f"copied from {source}" if source
                    else "not estimated" if seconds is None else f"~{seconds / 60:5.1f} min")
            lines.append(f"#   {arm.name:<16} seed {seed}  {when}")
    return (f"# kgreason experiment {exp.grid.name} --scale {exp.config.scale}: resolved options (usable as --config)\n"
            f"{to_yaml(exp.config)}# experiment folder: {exp.out}\n"
            f"# arm-seeds and estimated time for {exp.recipe.model} on this 2-core CPU ({cpu_line()}: the quick "
            f"run {cpu_units()[1]}):\n" + "\n".join(lines) + f"\n#   total ~{total / 60:.0f} min"
            + (" and the arm-seeds not estimated" if any(ln.endswith("not estimated") for ln in lines) else "") + "\n")


def run_experiment(args: argparse.Namespace) -> int:
    from kgreason.experiments.grid import run_experiment as run
    from kgreason.experiments.report import drift_cell

    exp = experiment_from_args(args)
    if args.dry_run:
        sys.stdout.write(dry_run_plan(exp))
        return 0
    started = time.time()
    results = run(exp)
    hops = sorted(results["eval"]["by_hop"], key=int)
    print(f"\n{'arm':<22} {'seeds':>5} {'accuracy':>9} " + " ".join(f"{h + ' hops':>9}" for h in hops)
          + f" {'faithful':>9} {'drift KL':>9}")
    for a in results["arms"]:
        print(f"{a['label']:<22} {len(a['seeds_done']):>5} {100 * a['accuracy']['mean']:>8.1f}% "
              + " ".join(f"{100 * a['by_hop'][h]['mean']:>8.1f}%" if h in a["by_hop"] else f"{'–':>9}" for h in hops)
              + f" {100 * a['faithful_share']['mean']:>8.1f}% " + f"{drift_cell(a):>9}")
    print(f"\nwall time this invocation: {time.time() - started:.0f} s; report: {exp.out / 'report.md'}")
    return 0
