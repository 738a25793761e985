"""Run an experiment grid: every arm x seed of a grid file (kgreason/experiments/arms.py), all
scored greedily on the same held-out eval set, never trained on.

The bundled grids (kgreason/experiments/grids/): `distribution` (which training distribution
makes a small model answer held-out 4-5 hop questions: base, SFT, RSFT on easy / hard / mixed /
curriculum / frontier questions, GRPO) and `reward` (RSFT and GRPO each with the answer-only, the
paper's overlap and kgreason's hop-verified reward).

Every arm x seed is a run folder under <out>/runs/<arm>-s<seed>/ (the training engineer's layout,
trained with kgreason.train's functions, which resume themselves). An arm-seed is finished once
its arm.json is written (atomically, last); a rerun reuses it, and refuses it if the arm's
definition in the grid has changed since. All RSFT/GRPO arms of one seed start from that seed's
SFT adapter, so arms differ only in what follows SFT. The base arm decodes greedily and trains
nothing, so it has one seed whatever --seeds says.

Across seeds, an arm's interval resamples eval items (the per-item correctness averaged over the
arm's seeds), so it reflects item sampling; the spread across seeds is reported beside it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kgreason.config import ExperimentConfig, PipelineConfig, experiment_scale
from kgreason.experiments.arms import (
    ARM_FILE,
    EVAL_PHASE,
    EXPERIMENT_FILE,
    Arm,
    Grid,
    grid_reference,
    load_grid,
    run_dir,
    seeds_for,
)
from kgreason.experiments.report import aggregate, write_report
from kgreason.experiments.share import copy_arm_seed, find_shared
from kgreason.hardware import cpu_line
from kgreason.io import InputError, atomic_write_json, read_json
from kgreason.options import to_dict, with_overrides
from kgreason.phases import get_phase
from kgreason.tasks.defaults import DataOptions
from kgreason.train.phase_model import PhaseModel


@dataclass
class Experiment:
    """One experiment to run: its options (kgreason/config.py's ExperimentConfig: the scale's recipe
    with the user's overrides) and where it goes."""

    out: Path
    config: ExperimentConfig = field(default_factory=lambda: experiment_scale("quick"))
    grid: Grid = field(default_factory=lambda: load_grid("distribution"))
    report_only: bool = False  # aggregate the finished arm-seeds, train nothing
    drift: bool = False  # measure drift and entropy on finished arm-seeds evaluated without them (measure_drift)
    progress: bool = True

    @property
    def seeds(self) -> int:
        return self.config.seeds

    @property
    def recipe(self) -> PipelineConfig:
        return self.config.run


def arm_config(recipe: PipelineConfig, arm: Arm, seed: int) -> PipelineConfig:
    """The recipe of one arm-seed: the experiment's run options with the seed (every stage's seed
    follows it; the data keeps the experiment's data seed), then the arm's overrides (after the
    seed, so an arm may set a phase's own reward preset)."""
    cfg = with_overrides(recipe, {"seed": seed}).seeded()
    return with_overrides(cfg, arm.overrides)


def check_or_write_experiment(out: Path, record: dict) -> None:
    """A rerun must ask for the same experiment (the same recipe: model, data, training) to reuse finished arms."""
    path = out / EXPERIMENT_FILE
    if not path.exists():
        atomic_write_json(path, record)
        return
    saved = read_json(path)

    def comparable(rec: dict) -> dict:
        # more seeds (and arms) may be added later, so they are not part of what must match; nor may
        # what the data stage refused be (--allow-shortcuts after a refusal: no task file was written)
        recipe = dict(rec.get("recipe") or {})
        if isinstance(recipe.get("data"), dict):
            recipe["data"] = {k: v for k, v in recipe["data"].items() if k not in ("allow_shortcuts", "max_shortcut")}
        return {"experiment": rec.get("experiment"), "scale": rec.get("scale"), "recipe": recipe}

    from kgreason.runs.folder import diff_configs

    diffs = diff_configs(comparable(saved), comparable(record))  # options added since are not differences
    if diffs:
        raise InputError(f"{path}: this experiment folder was made with other settings; use another --out "
                         "(or delete it) to start afresh:\n  " + "\n  ".join(diffs))
    if saved.get("seeds", 0) < record["seeds"]:
        atomic_write_json(path, {**saved, "seeds": record["seeds"]})


# --- data ------------------------------------------------------------------------------------------
def prepare_data(out: Path, data: DataOptions) -> Path:
    """The graph and the task files once for every arm (kgreason.tasks.build, the data stage of `kgreason run`)."""
    from kgreason.tasks.build import build_data_folder

    build_data_folder(out / "data", data)
    return out / "data"


# --- one arm-seed ----------------------------------------------------------------------------------
def _train_arm(run: Any, cfg: PipelineConfig, kind: str, data: Path, init_adapter: Path | None, kg: Any,
               held: PhaseModel) -> Path | None:
    """Train the arm's phase (kgreason/phases.py); its adapter, or the one it started from when the
    phase kept nothing to train on (an RSFT run without winners)."""
    from kgreason.phases import phase_options, run_phase

    info = run_phase(kind, run, cfg.model, data, phase_options(cfg, kind), init_adapter=init_adapter, kg=kg, held=held)
    if init_adapter is None or (info or {}).get("adapter"):
        return run.adapter_dir(kind)
    return init_adapter


def run_arm_seed(exp: Experiment, arm: Arm, seed: int, data: Path, kg: Any, eval_tasks: list[Any]) -> dict:
    """Train (if needed) and evaluate one arm-seed; returns its arm.json record (reused when done)."""
    folder = run_dir(exp.out, arm, seed)
    if (folder / ARM_FILE).is_file():
        return reuse_arm_seed(folder, arm)
    from kgreason.config import RunConfig
    from kgreason.evaluate.runner import EvalOptions, evaluate_model
    from kgreason.memory import release_between_phases
    from kgreason.models import load_model, load_tokenizer
    from kgreason.runs.folder import Run
    from kgreason.train.phase_model import held_for

    started = time.time()
    cfg = arm_config(exp.recipe, arm, seed)
    config = RunConfig(model_ref=cfg.model, reward_preset=cfg.reward_preset, dataset_seed=cfg.data.seed,
                       pipeline=cfg, experiment={"experiment": exp.grid.name, "arm": arm.to_dict(), "seed": seed,
                                                 "scale": exp.config.scale})
    # The arm's training phase loads its model once and its evaluation reuses it (phase_model.py).
    from kgreason.phases import phase_options

    own = phase_options(cfg, arm.kind) if get_phase(arm.kind).trains else cfg.sft  # base: only evaluated
    held = PhaseModel(cfg.model, own.train.dtype)
    with Run.create_or_resume(folder, config.to_dict()) as run:
        adapter: Path | None = None
        if arm.needs_sft:
            sft_adapter = run_dir(exp.out, exp.grid.arm("sft"), seed) / "adapters" / "sft"
            if not (sft_adapter / "adapter_config.json").is_file():
                raise InputError(f"{sft_adapter}: the SFT adapter this arm starts from is missing")
            adapter = _train_arm(run, cfg, arm.kind, data, sft_adapter, kg, held)
        elif get_phase(arm.kind).trains:
            adapter = _train_arm(run, cfg, arm.kind, data, None, kg, held)
        model = held_for(held, cfg.model, adapter, cfg.sft.train.dtype)
        if model is not None:
            release_between_phases()  # the training's freed memory, before the evaluation allocates its own
            tokenizer = load_tokenizer(cfg.model)
        else:
            model, tokenizer = load_model(cfg.model, adapter=adapter, dtype=cfg.sft.train.dtype)
        options = EvalOptions(**asdict(cfg.eval), run=run.name, phase=EVAL_PHASE, progress=exp.progress)
        metrics = evaluate_model(model, tokenizer, eval_tasks, kg, out_dir=run.eval_dir(EVAL_PHASE), options=options,
                                 meta={"tasks_file": str(data / "eval.jsonl"), "arm": arm.name, "seed": seed})
        del model
        held.release()
        run.mark_done(EVAL_PHASE, {"kind": "eval", "accuracy": metrics["accuracy"]["mean"],
                                   "by_hop": {h: iv["mean"] for h, iv in metrics["by_hop"].items()},
                                   "faithful": metrics["trace"]["faithful_share"]["mean"],
                                   "mean_reward": metrics["mean_reward"],
                                   "wall_s": metrics["wall_seconds"]})
    record = {"arm": arm.name, "seed": seed, "done": True, "definition": arm.to_dict(),
              "run_dir": str(folder.relative_to(exp.out)),
              "adapter": str(adapter.relative_to(exp.out)) if adapter and adapter.is_relative_to(exp.out) else None,
              "wall_s": round(time.time() - started, 1), "cpu": cpu_line(),
              "eval_dir": str(run.eval_dir(EVAL_PHASE).relative_to(exp.out))}
    atomic_write_json(folder / ARM_FILE, record)  # written last: the arm-seed is finished
    return record


def measure_drift(exp: Experiment, arms: list[Arm], eval_tasks: list[Any]) -> None:
    """Drift and entropy (kgreason.evaluate.runner.add_drift) for every finished trained arm-seed of
    `arms` whose evaluation has no drift.jsonl, from the adapter its arm.json names."""
    from kgreason.evaluate.runner import DRIFT_ITEMS, METRICS, EvalOptions, add_drift
    from kgreason.memory import release_between_phases
    from kgreason.models import load_model

    for arm in dict.fromkeys(arms):
        if not get_phase(arm.kind).trains:
            continue  # the base model: no adapter, nothing to drift from
        for seed in seeds_for(arm, exp.seeds):
            folder = run_dir(exp.out, arm, seed)
            if not (folder / ARM_FILE).is_file():
                continue
            record = read_json(folder / ARM_FILE)
            eval_dir = exp.out / record.get("eval_dir", f"{folder.relative_to(exp.out)}/eval/{EVAL_PHASE}")
            measured = ((read_json(eval_dir / METRICS).get("drift") or {}).get("mean_entropy") is not None
                        if (eval_dir / METRICS).is_file() else False)
            if (eval_dir / DRIFT_ITEMS).is_file() and measured:
                continue
            adapter = exp.out / record["adapter"] if record.get("adapter") else None
            if adapter is None or not (adapter / "adapter_config.json").is_file():
                print(f"[experiment] {arm.name} seed {seed}: its adapter ({adapter or f'none in {ARM_FILE}'}) is "
                      "missing; drift not measured", flush=True)
                continue
            cfg = arm_config(exp.recipe, arm, seed)
            began = time.time()
            model, tokenizer = load_model(cfg.model, adapter=adapter, dtype=cfg.sft.train.dtype)
            options = EvalOptions(**asdict(cfg.eval), phase=EVAL_PHASE, progress=exp.progress)
            drift = add_drift(eval_dir, model, tokenizer, eval_tasks, options) or {}
            del model
            release_between_phases()
            print(f"[experiment] {arm.name} seed {seed}: drift KL {drift.get('mean_kl', float('nan')):.4f}, entropy "
                  f"{drift.get('mean_entropy', float('nan')):.3f} nats ({time.time() - began:.0f} s)", flush=True)


def reuse_arm_seed(folder: Path, arm: Arm) -> dict:
    """A finished arm-seed's record, refused when the grid now defines the arm differently (its
    results would be labelled with options it was not trained with)."""
    record = read_json(folder / ARM_FILE)
    saved = record.get("definition")
    if saved is not None and (saved.get("kind"), saved.get("overrides")) != (arm.kind, arm.to_dict()["overrides"]):
        raise InputError(f"{folder / ARM_FILE}: arm {arm.name} was trained as {saved.get('kind')} with overrides "
                         f"{saved.get('overrides')}, the grid now says {arm.kind} with {arm.to_dict()['overrides']}; "
                         "rename the arm, or use another --out")
    return record


# --- the whole experiment ----------------------------------------------------------------------------
def run_experiment(exp: Experiment) -> dict:
    """Run every missing arm-seed, then aggregate all finished ones into results.json + report.md."""
    from kgreason.kg.kgjson import load_kg
    from kgreason.tasks.generate import load_tasks

    exp.out.mkdir(parents=True, exist_ok=True)
    arms = exp.grid.select(exp.config.arms)
    recipe = to_dict(exp.recipe)
    recipe.pop("seed", None)  # each arm-seed sets its own
    if not exp.report_only:  # aggregating what finished needs no promise about what runs next
        check_or_write_experiment(exp.out, {"experiment": exp.grid.name, "grid": grid_reference(exp.grid.source),
                                            "scale": exp.config.scale, "seeds": exp.seeds, "recipe": recipe})
    started = time.time()
    data = prepare_data(exp.out, exp.recipe.data)
    kg = load_kg(data / "kg.json")
    eval_tasks = load_tasks(data / "eval.jsonl")
    jobs = [(arm, seed) for seed in range(exp.seeds) for arm in arms if seed in seeds_for(arm, exp.seeds)]
    from kgreason.runs.folder import git_revision

    revision = git_revision()[0]
    for i, (arm, seed) in enumerate(jobs, start=1):
        done = (run_dir(exp.out, arm, seed) / ARM_FILE).is_file()
        if exp.report_only:
            print(f"[experiment] {i}/{len(jobs)} {arm.name} seed {seed}: {'done' if done else 'not finished (left out)'}")
            continue
        if not done and exp.config.share and (source := shared_source(exp, arm, seed)) is not None:
            record = copy_arm_seed(source, exp.out, arm, seed, {"experiment": exp.grid.name, "arm": arm.to_dict(),
                                                                 "seed": seed, "scale": exp.config.scale})
            print(f"[experiment] {i}/{len(jobs)} {arm.name} seed {seed}: copied from {source} (the same data, "
                  "recipe and starting adapter)", flush=True)
            if record.get("copied_revision") != revision or record.get("copied_dirty"):
                print(f"  warning: trained by code revision {record.get('copied_revision') or 'unknown'}"
                      f"{' with uncommitted changes' if record.get('copied_dirty') else ''}, this is "
                      f"{revision or 'unknown'}; --no-share trains it with this code", flush=True)
            continue
        print(f"[experiment] {i}/{len(jobs)} {arm.name} seed {seed}: {'reused (done)' if done else 'running'}",
              flush=True)
        if exp.recipe.stage_processes and not done:
            _run_arm_seed_in_child(exp, arm, seed, data)
        else:
            run_arm_seed(exp, arm, seed, data, kg, eval_tasks)
    if exp.drift:
        measure_drift(exp, [arm for arm, _ in jobs], eval_tasks)
    # every arm of the grid with a finished seed, whatever --arms ran this time: results.json is the
    # experiment's, not the invocation's (findings read it)
    results = aggregate(exp.out, exp.grid.arms, exp, eval_tasks)
    results["wall_seconds_this_invocation"] = round(time.time() - started, 1)
    write_report(exp.out, results)
    return results


def shared_source(exp: Experiment, arm: Arm, seed: int, sft_digest: str | None = None,
                  data: str | None = None) -> Path | None:
    """A finished run of this arm-seed in a sibling experiment folder (kgreason/experiments/share.py);
    None when this arm-seed has a folder of its own already (an interrupted run resumes itself).
    `sft_digest`, `data`: see find_shared (a dry run's SFT adapter and data that would come first)."""
    if run_dir(exp.out, arm, seed).exists():
        return None
    pipeline = to_dict(arm_config(exp.recipe, arm, seed))  # JSON types, as config.json holds it
    return find_shared(exp.out, arm, seed, pipeline, sft_digest=sft_digest, data=data,
                       defaults=to_dict(PipelineConfig()))


def _arm_seed_child(exp: Experiment, arm_name: str, seed: int, data: str) -> dict:
    import sys

    from kgreason.kg.kgjson import load_kg
    from kgreason.tasks.generate import load_tasks

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  (see pipeline.stages)
    folder = Path(data)
    return run_arm_seed(exp, exp.grid.arm(arm_name), seed, folder, load_kg(folder / "kg.json"),
                        load_tasks(folder / "eval.jsonl"))


def _run_arm_seed_in_child(exp: Experiment, arm: Arm, seed: int, data: Path) -> dict:
    """One arm-seed in a spawned process, so an experiment's memory does not grow arm after arm
    (see kgreason.pipeline.stages.run_model_stages)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from kgreason.pipeline.stages import stage_allocator

    with stage_allocator(exp.recipe.allocator), \
            ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_arm_seed_child, exp, arm.name, seed, str(data)).result()

