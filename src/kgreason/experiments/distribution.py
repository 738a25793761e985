"""The distribution experiment: which training distribution makes a small model answer held-out
4-5 hop questions?

Arms (all scored greedily on the same held-out eval set, never trained on):

    base              the model as shipped
    sft               SFT (LoRA) on facts + easy (1-3 hop) questions
    rsft_easy         SFT -> RSFT on the easy pool
    rsft_hard         SFT -> RSFT on the hard training pool (4-5 hops, disjoint from eval)
    rsft_curriculum   SFT -> RSFT easy rounds, then hard rounds
    rsft_mixed        SFT -> RSFT on half easy, half hard questions
    rsft_frontier     SFT -> RSFT on the mixed pool, keeping only questions with 0 < pass rate < 1
    grpo_easy         SFT -> GRPO on the easy pool

Every arm x seed is a run folder under <out>/runs/<arm>-s<seed>/ (the training engineer's layout,
trained with kgreason.train's functions, which resume themselves). An arm-seed is finished once
its arm.json is written (atomically, last); a rerun reuses it. All RSFT/GRPO arms of one seed start
from that seed's SFT adapter, so arms differ only in what follows SFT. The base arm decodes
greedily and trains nothing, so it has one seed whatever --seeds says.

Across seeds, an arm's interval resamples eval items (the per-item correctness averaged over the
arm's seeds), so it reflects item sampling; the spread across seeds is reported beside it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kgreason.io import InputError, atomic_write_json, read_json

ARM_FILE = "arm.json"
EXPERIMENT_FILE = "experiment.json"
RESULTS_FILE = "results.json"
EVAL_PHASE = "final"


@dataclass(frozen=True)
class Arm:
    name: str
    label: str
    kind: str  # base | sft | rsft | grpo
    distribution: str = "easy"  # rsft pool (kgreason.train.rsft.DISTRIBUTIONS), grpo pool
    frontier: bool = False
    description: str = ""

    @property
    def seeded(self) -> bool:
        return self.kind != "base"

    @property
    def needs_sft(self) -> bool:
        return self.kind in ("rsft", "grpo")


ARMS: tuple[Arm, ...] = (
    Arm("base", "base", "base", description="the model as shipped, no training"),
    Arm("sft", "SFT", "sft", description="LoRA SFT on facts and easy (1-3 hop) questions"),
    Arm("rsft_easy", "SFT→RSFT easy", "rsft", "easy", description="RSFT on the easy pool (1-3 hops)"),
    Arm("rsft_hard", "SFT→RSFT hard", "rsft", "hard",
        description="RSFT on the hard training pool (4-5 hops, disjoint from eval)"),
    Arm("rsft_curriculum", "SFT→RSFT curriculum", "rsft", "curriculum",
        description="RSFT easy rounds first, then hard rounds"),
    Arm("rsft_mixed", "SFT→RSFT mixed", "rsft", "mixed", description="RSFT on half easy, half hard questions"),
    Arm("rsft_frontier", "SFT→RSFT frontier", "rsft", "mixed", frontier=True,
        description="RSFT on the mixed pool, training only on questions with 0 < pass rate < 1"),
    Arm("grpo_easy", "SFT→GRPO easy", "grpo", "easy", description="GRPO on the easy pool"),
)
ARM_NAMES = tuple(a.name for a in ARMS)


@dataclass
class Preset:
    """Sizes and budgets of one experiment scale."""

    model: str
    seeds: int
    kg_size: str = "small"
    n_eval: int = 300
    n_easy: int = 1500
    n_hard: int = 600
    sft_steps: int = 300
    sft_batch: int = 8
    sft_max_examples: int = 0
    rsft_rounds: int = 3
    rsft_k: int = 8
    rsft_questions: int = 200
    rsft_epochs: float = 2.0
    rsft_lr: float = 1e-4
    rsft_temperature: float = 0.7
    rsft_keep: int = 1  # winners kept per question
    rsft_faithful_only: bool = False  # winners must also have a faithful trace
    grpo_steps: int = 100
    grpo_k: int = 8
    max_new_tokens: int = 160
    eval_max_new_tokens: int = 192
    eval_batch: int = 16
    n_resamples: int = 2000
    dtype: str = "auto"
    lora_r: int = 16
    sft_lr: float = 2e-4
    max_length: int = 512  # training sequence cap (prompt + completion tokens)
    eval_plots: bool = True  # per-arm eval PNGs (the experiment report draws its own)
    # Shuffled-options pass and KL drift per arm: on the 2-core CPU they cost ~4 extra minutes an
    # arm-seed (measured: 392 s for the base arm's evaluation with both, ~60 s without).
    eval_shuffle: bool = True
    eval_drift: bool = True


PRESETS: dict[str, Preset] = {
    # for tests and dry runs: minutes on 2 CPU cores, numbers meaningless
    "tiny": Preset(model="tiny:random", seeds=2, n_eval=6, n_easy=12, n_hard=6, sft_steps=1, sft_batch=2,
                   sft_max_examples=4, rsft_rounds=1, rsft_k=2, rsft_questions=2, rsft_epochs=1.0,
                   grpo_steps=1, grpo_k=2, max_new_tokens=8, eval_max_new_tokens=8, eval_batch=6,
                   n_resamples=200, dtype="fp32", lora_r=2, max_length=256, eval_plots=False),
    # the bundled SmolLM2-135M on the 2-core CPU, with the recipe of `kgreason run`'s quick preset (open
    # book, SFT on 1-3 hops, RSFT keeping correct answers with faithful traces); two RSFT rounds so
    # that the curriculum arm (an easy round, then a hard one) differs from the easy arm
    "quick": Preset(model="bundled:smollm2-135m", seeds=3, n_eval=150, n_easy=1000, n_hard=400, sft_steps=100,
                    sft_batch=8, sft_max_examples=0, sft_lr=5e-4, max_length=512, rsft_rounds=2, rsft_k=4,
                    rsft_questions=64, rsft_epochs=2.0, rsft_lr=2e-4, rsft_temperature=0.5, rsft_keep=2,
                    rsft_faithful_only=True, grpo_steps=8, grpo_k=4, max_new_tokens=128,
                    eval_max_new_tokens=128, eval_batch=16, eval_shuffle=False, eval_drift=False),
    # the real question: hundreds of eval items, several seeds (a GPU or a long CPU night)
    "full": Preset(model="bundled:smollm2-135m", seeds=3),
}


@dataclass
class ExperimentConfig:
    out: Path
    preset: str = "quick"
    mode: str = "open"
    kg: str = ""  # "" = the built-in DevOps KG; else a kg.json / TSV / CSV file or builtin:NAME
    seeds: int | None = None  # None: the preset's
    arms: tuple[str, ...] = ARM_NAMES
    model: str | None = None  # None: the preset's
    data_seed: int = 0
    progress: bool = True
    report_only: bool = False  # aggregate the finished arm-seeds, run nothing
    overrides: dict[str, Any] = field(default_factory=dict)  # Preset field -> value

    def resolved_preset(self) -> Preset:
        if self.preset not in PRESETS:
            raise InputError(f"--preset: expected one of {', '.join(PRESETS)}, got {self.preset!r}")
        p = replace(PRESETS[self.preset], **self.overrides)
        if self.model:
            p = replace(p, model=self.model)
        if self.seeds is not None:
            p = replace(p, seeds=self.seeds)
        return p


# --- layout ----------------------------------------------------------------------------------------
def run_dir(out: Path, arm: Arm, seed: int) -> Path:
    return out / "runs" / f"{arm.name}-s{seed}"


def seeds_for(arm: Arm, n_seeds: int) -> list[int]:
    return list(range(n_seeds)) if arm.seeded else [0]


def select_arms(names: Sequence[str]) -> list[Arm]:
    """The arms asked for, in canonical order; RSFT/GRPO arms bring the SFT arm they start from."""
    unknown = [n for n in names if n not in ARM_NAMES]
    if unknown:
        raise InputError(f"--arms: unknown arm(s) {', '.join(unknown)}; expected some of {', '.join(ARM_NAMES)}")
    wanted = set(names)
    if any(a.needs_sft for a in ARMS if a.name in wanted):
        wanted.add("sft")
    return [a for a in ARMS if a.name in wanted]


def check_or_write_experiment(out: Path, record: dict) -> None:
    """A rerun must ask for the same experiment (model, preset sizes, mode) to reuse finished arms."""
    path = out / EXPERIMENT_FILE
    if not path.exists():
        atomic_write_json(path, record)
        return
    saved = read_json(path)

    def comparable(rec: dict) -> dict:
        # more seeds may be added later, so the seed count is not part of what must match
        return {"mode": rec.get("mode"), "kg": rec.get("kg", ""), "preset": rec.get("preset"),
                "data_seed": rec.get("data_seed"),
                "settings": {k: v for k, v in (rec.get("settings") or {}).items() if k != "seeds"}}

    old, new = comparable(saved), comparable(record)
    diffs = [f"{k}: {old[k]!r} (saved) != {new[k]!r} (now)" for k in old if old[k] != new[k]]
    if diffs:
        raise InputError(f"{path}: this experiment folder was made with other settings; use another --out "
                         "(or delete it) to start afresh:\n  " + "\n  ".join(diffs))
    if saved.get("seeds", 0) < record["seeds"]:
        atomic_write_json(path, {**saved, "seeds": record["seeds"]})


# --- data ------------------------------------------------------------------------------------------
def prepare_data(out: Path, preset: Preset, mode: str, data_seed: int, kg_source: str = "") -> Path:
    """Build (or import) the KG and the task files once (eval held out, easy and hard training pools)."""
    data = out / "data"
    if (data / "manifest.json").is_file() and (data / "kg.json").is_file():
        return data
    from kgreason.kg.builtin import build_devops_kg
    from kgreason.kg.io import import_kg, save_kg
    from kgreason.tasks.generate import SplitSpec, TaskConfig, generate, write_dataset

    kg = import_kg(kg_source) if kg_source else build_devops_kg(seed=data_seed, size=preset.kg_size)
    config = TaskConfig(seed=data_seed, mode=mode, splits=(
        SplitSpec("eval", preset.n_eval, 4, 5, held_out=True),
        SplitSpec("train_easy", preset.n_easy, 1, 3),
        SplitSpec("train_hard", preset.n_hard, 4, 5, strict=True),
    ))
    dataset = generate(kg, config)
    save_kg(kg, data / "kg.json")
    write_dataset(dataset, data)  # manifest.json last: it marks the folder complete
    return data


# --- one arm-seed ----------------------------------------------------------------------------------
def _train_options(preset: Preset, seed: int, **kw: Any) -> Any:
    from kgreason.train.sft import LoraOptions, TrainOptions

    return TrainOptions(seed=seed, dtype=preset.dtype, max_length=preset.max_length,
                        lora=LoraOptions(r=preset.lora_r, alpha=2 * preset.lora_r), **kw)


def _sft(run: Any, preset: Preset, data: Path, mode: str, seed: int) -> Path:
    from kgreason.train.sft import SFTOptions, run_sft

    material = ["facts", "easy"] if mode == "closed" else ["easy"]
    options = SFTOptions(material=material, max_examples=preset.sft_max_examples,
                         train=_train_options(preset, seed, max_steps=preset.sft_steps, batch_size=preset.sft_batch,
                                             learning_rate=preset.sft_lr, save_steps=20, logging_steps=5))
    run_sft(run, preset.model, data, options, phase="sft")
    return run.adapter_dir("sft")


def _rsft(run: Any, arm: Arm, preset: Preset, data: Path, seed: int, init_adapter: Path, kg: Any) -> Path | None:
    from kgreason.train.rsft import RSFTOptions, run_rsft

    options = RSFTOptions(
        rounds=preset.rsft_rounds, k=preset.rsft_k, max_new_tokens=preset.max_new_tokens,
        distribution=arm.distribution, questions=preset.rsft_questions, frontier=arm.frontier, seed=seed,
        temperature=preset.rsft_temperature, keep=preset.rsft_keep, faithful_only=preset.rsft_faithful_only,
        train=_train_options(preset, seed, max_steps=0, epochs=preset.rsft_epochs, learning_rate=preset.rsft_lr,
                             batch_size=preset.sft_batch, save_steps=25, logging_steps=5),
    )
    info = run_rsft(run, preset.model, data, options, init_adapter=init_adapter, phase="rsft", kg=kg)
    return run.adapter_dir("rsft") if info.get("adapter") else init_adapter


def _grpo(run: Any, arm: Arm, preset: Preset, data: Path, seed: int, init_adapter: Path, kg: Any) -> Path:
    from kgreason.train.grpo import GRPOOptions, run_grpo
    from kgreason.train.sft import LoraOptions

    options = GRPOOptions(
        distribution=arm.distribution, questions=preset.rsft_questions, num_generations=preset.grpo_k,
        max_steps=preset.grpo_steps, batch_size=preset.grpo_k * max(1, preset.sft_batch // preset.grpo_k),
        max_completion_length=preset.max_new_tokens, dtype=preset.dtype, seed=seed, logging_steps=1,
        lora=LoraOptions(r=preset.lora_r, alpha=2 * preset.lora_r),
    )
    run_grpo(run, preset.model, data, options, init_adapter=init_adapter, phase="grpo", kg=kg)
    return run.adapter_dir("grpo")


def run_arm_seed(cfg: ExperimentConfig, preset: Preset, arm: Arm, seed: int, data: Path, kg: Any,
                 eval_tasks: list[Any]) -> dict:
    """Train (if needed) and evaluate one arm-seed; returns its arm.json record (reused when done)."""
    folder = run_dir(cfg.out, arm, seed)
    if (folder / ARM_FILE).is_file():
        return read_json(folder / ARM_FILE)
    from kgreason.evaluate.runner import EvalOptions, evaluate_model
    from kgreason.models import load_model
    from kgreason.train.runs import Run

    started = time.time()
    config = {"experiment": "distribution", "arm": asdict(arm), "seed": seed, "mode": cfg.mode,
              "model_ref": preset.model, "preset": cfg.preset}
    with Run.create_or_resume(folder, config) as run:
        adapter: Path | None = None
        if arm.kind == "sft":
            adapter = _sft(run, preset, data, cfg.mode, seed)
        elif arm.needs_sft:
            sft_adapter = run_dir(cfg.out, ARMS[ARM_NAMES.index("sft")], seed) / "adapters" / "sft"
            if not (sft_adapter / "adapter_config.json").is_file():
                raise InputError(f"{sft_adapter}: the SFT adapter this arm starts from is missing")
            if arm.kind == "rsft":
                adapter = _rsft(run, arm, preset, data, seed, sft_adapter, kg)
            else:
                adapter = _grpo(run, arm, preset, data, seed, sft_adapter, kg)
        model, tokenizer = load_model(preset.model, adapter=adapter, dtype=preset.dtype)
        options = EvalOptions(seed=0, batch_size=preset.eval_batch, max_new_tokens=preset.eval_max_new_tokens,
                              n_resamples=preset.n_resamples, run=run.name, phase=EVAL_PHASE, progress=cfg.progress,
                              plots=preset.eval_plots, shuffle=preset.eval_shuffle, drift=preset.eval_drift)
        metrics = evaluate_model(model, tokenizer, eval_tasks, kg, out_dir=run.eval_dir(EVAL_PHASE), options=options,
                                 meta={"tasks_file": str(data / "eval.jsonl"), "arm": arm.name, "seed": seed})
        del model
        run.mark_done(EVAL_PHASE, {"kind": "eval", "accuracy": metrics["accuracy"]["mean"],
                                   "by_hop": {h: iv["mean"] for h, iv in metrics["by_hop"].items()},
                                   "faithful": metrics["trace"]["faithful_share"]["mean"],
                                   "mean_reward": metrics["mean_reward"],
                                   "wall_s": metrics["wall_seconds"]})
    record = {"arm": arm.name, "seed": seed, "done": True, "run_dir": str(folder.relative_to(cfg.out)),
              "adapter": str(adapter.relative_to(cfg.out)) if adapter and adapter.is_relative_to(cfg.out) else None,
              "wall_s": round(time.time() - started, 1),
              "eval_dir": str(run.eval_dir(EVAL_PHASE).relative_to(cfg.out))}
    atomic_write_json(folder / ARM_FILE, record)  # written last: the arm-seed is finished
    return record


# --- the whole experiment ----------------------------------------------------------------------------
def run_distribution(cfg: ExperimentConfig) -> dict:
    """Run every missing arm-seed, then aggregate all finished ones into results.json + report.md."""
    from kgreason.kg.io import load_kg
    from kgreason.tasks.generate import load_tasks

    preset = cfg.resolved_preset()
    if cfg.mode not in ("closed", "open"):
        raise InputError(f"--mode: expected closed or open, got {cfg.mode!r}")
    cfg.out.mkdir(parents=True, exist_ok=True)
    arms = select_arms(cfg.arms)
    check_or_write_experiment(cfg.out, {
        "experiment": "distribution", "mode": cfg.mode, "kg": cfg.kg, "preset": cfg.preset, "data_seed": cfg.data_seed,
        "seeds": preset.seeds, "settings": {k: v for k, v in asdict(preset).items() if k != "seeds"},
    })
    started = time.time()
    data = prepare_data(cfg.out, preset, cfg.mode, cfg.data_seed, cfg.kg)
    kg = load_kg(data / "kg.json")
    eval_tasks = load_tasks(data / "eval.jsonl")
    jobs = [(arm, seed) for seed in range(preset.seeds) for arm in arms if seed in seeds_for(arm, preset.seeds)]
    for i, (arm, seed) in enumerate(jobs, start=1):
        done = (run_dir(cfg.out, arm, seed) / ARM_FILE).is_file()
        if cfg.report_only:
            print(f"[experiment] {i}/{len(jobs)} {arm.name} seed {seed}: {'done' if done else 'not finished (left out)'}")
            continue
        print(f"[experiment] {i}/{len(jobs)} {arm.name} seed {seed}: {'reused (done)' if done else 'running'}",
              flush=True)
        run_arm_seed(cfg, preset, arm, seed, data, kg, eval_tasks)
    results = aggregate(cfg.out, arms, preset, cfg, eval_tasks)
    results["wall_seconds_this_invocation"] = round(time.time() - started, 1)
    write_report(cfg.out, results)
    return results


# --- aggregation ---------------------------------------------------------------------------------------
@dataclass
class SeedResult:
    seed: int
    folder: Path
    metrics: dict
    correct: dict[str, float]  # task id -> 0/1
    faithful: dict[str, float]
    format_fail: dict[str, float]
    wall_s: float = 0.0


def _load_seed(out: Path, arm: Arm, seed: int) -> SeedResult | None:
    from kgreason.evaluate.runner import METRICS, PREDICTIONS, read_episodes

    folder = run_dir(out, arm, seed)
    if not (folder / ARM_FILE).is_file():
        return None
    eval_dir = folder / "eval" / EVAL_PHASE
    episodes = read_episodes(eval_dir / PREDICTIONS)
    return SeedResult(
        seed=seed, folder=folder, metrics=read_json(eval_dir / METRICS),
        correct={k: float(e.reward.correct) for k, e in episodes.items()},
        faithful={k: float(e.reward.faithful) for k, e in episodes.items()},
        format_fail={k: float(not e.reward.format_ok) for k, e in episodes.items()},
        wall_s=float(read_json(folder / ARM_FILE).get("wall_s", 0.0)),
    )


def _per_item_mean(seeds: list[SeedResult], field_name: str, ids: Sequence[str]) -> dict[str, float]:
    """Per item, the mean over the seeds that answered it."""
    out: dict[str, float] = {}
    for tid in ids:
        vals = [getattr(s, field_name)[tid] for s in seeds if tid in getattr(s, field_name)]
        if vals:
            out[tid] = sum(vals) / len(vals)
    return out


def _interval(values: dict[str, float], ids: Sequence[str], seed: int, n_resamples: int,
              per_seed: list[float] | None = None) -> dict:
    import numpy as np

    from kgreason.evaluate.bootstrap import bootstrap_mean

    iv = bootstrap_mean([values[t] for t in ids if t in values], seed=seed, n_resamples=n_resamples).to_dict()
    if per_seed is not None:
        iv["per_seed"] = per_seed
        known = [v for v in per_seed if v is not None]
        iv["seed_std"] = float(np.std(known, ddof=1)) if len(known) > 1 else None
    return iv


def _curves(seeds: list[SeedResult]) -> dict[str, list[list[float]]]:
    """Training curves from the runs' metrics.jsonl, averaged over seeds at each x.

    sft_loss: SFT loss per optimizer step; rsft_pass_rate / rsft_reward: per RSFT round, the mean
    pass rate over k samples and the mean sample reward; grpo_reward: GRPO mean reward per logged step.
    """
    from kgreason.train.runs import Run

    acc: dict[str, dict[float, list[float]]] = {}

    def add(name: str, x: float, y: Any) -> None:
        if isinstance(y, (int, float)) and not isinstance(y, bool):
            acc.setdefault(name, {}).setdefault(float(x), []).append(float(y))

    for s in seeds:
        for rec in Run(s.folder).read_metrics():
            phase = rec.get("phase")
            if phase == "sft" and "loss" in rec:
                add("sft_loss", rec["step"], rec["loss"])
            elif phase == "rsft" and "mean_pass_rate" in rec:
                add("rsft_pass_rate", rec["round"], rec["mean_pass_rate"])
                add("rsft_reward", rec["round"], rec.get("mean_reward"))
            elif phase == "grpo" and "reward" in rec:
                add("grpo_reward", rec["step"], rec["reward"])
    return {name: [[x, sum(ys) / len(ys)] for x, ys in sorted(points.items())] for name, points in acc.items()}


def arm_result(arm: Arm, seeds: list[SeedResult], hops: dict[str, int], n_resamples: int) -> dict:
    ids = list(hops)
    by_hop_ids: dict[int, list[str]] = {}
    for tid, h in hops.items():
        by_hop_ids.setdefault(h, []).append(tid)
    correct = _per_item_mean(seeds, "correct", ids)
    per_seed_acc = [s.metrics["accuracy"]["mean"] for s in seeds]
    drifts = [(s.metrics.get("drift") or {}).get("mean_kl") for s in seeds]
    drift_vals = [d for d in drifts if d is not None]
    confusion: dict[str, int] = {}
    for s in seeds:
        for k, v in s.metrics.get("confusion", {}).items():
            confusion[k] = confusion.get(k, 0) + int(v)
    shuffled = [s.metrics["shuffle"]["accuracy_shuffled"]["mean"] for s in seeds if s.metrics.get("shuffle")]
    changed = [s.metrics["shuffle"]["entity_changed_share"]["mean"] for s in seeds if s.metrics.get("shuffle")]
    return {
        "name": arm.name, "label": arm.label, "kind": arm.kind, "description": arm.description,
        "seeds_done": [s.seed for s in seeds],
        "accuracy": _interval(correct, ids, 0, n_resamples, per_seed_acc),
        "by_hop": {str(h): _interval(correct, t, h, n_resamples,
                                     [s.metrics["by_hop"].get(str(h), {}).get("mean") for s in seeds])
                   for h, t in sorted(by_hop_ids.items())},
        "faithful_share": _interval(_per_item_mean(seeds, "faithful", ids), ids, 1, n_resamples,
                                    [s.metrics["trace"]["faithful_share"]["mean"] for s in seeds]),
        "format_failure_rate": _interval(_per_item_mean(seeds, "format_fail", ids), ids, 2, n_resamples),
        "drift_kl": ({"mean": 0.0, "per_seed": [0.0], "note": "the base model itself"} if arm.kind == "base"
                     else {"mean": sum(drift_vals) / len(drift_vals), "per_seed": drift_vals} if drift_vals else None),
        "confusion": confusion,
        "shuffle": {"accuracy_shuffled": sum(shuffled) / len(shuffled), "entity_changed_share": sum(changed) / len(changed)}
        if shuffled else None,
        "mean_reward": _mean([s.metrics.get("mean_reward") for s in seeds]),
        "wall_s": round(sum(s.wall_s for s in seeds), 1),
        "runs": [str(s.folder.relative_to(s.folder.parent.parent)) for s in seeds],
        "curves": _curves(seeds),
        "_correct": correct,  # dropped before writing; used for paired differences
        "_seeds": seeds,  # dropped before writing; per-seed paired differences
    }


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def vs_reference(arm: dict, ref: dict, hops: dict[str, int], n_resamples: int) -> dict:
    from kgreason.evaluate.bootstrap import paired_bootstrap_difference

    def diff(ids: list[str], seed: int) -> dict:
        shared = [t for t in ids if t in arm["_correct"] and t in ref["_correct"]]
        return paired_bootstrap_difference([ref["_correct"][t] for t in shared], [arm["_correct"][t] for t in shared],
                                           seed=seed, n_resamples=n_resamples).to_dict()

    by_hop: dict[int, list[str]] = {}
    for tid, h in hops.items():
        by_hop.setdefault(h, []).append(tid)
    return {"reference": ref["name"], "accuracy": diff(list(hops), 0),
            "by_hop": {str(h): diff(ids, h) for h, ids in sorted(by_hop.items())}}


def per_seed_rows(arm: dict, sft: dict | None, n_resamples: int) -> list[dict]:
    """Each seed on its own: accuracy and faithful share with item-bootstrap intervals, and the
    paired difference from the SFT model of the same seed (the adapter this arm started from), so
    a reader can see whether the conclusion holds seed by seed, not only on the seed average."""
    from kgreason.evaluate.bootstrap import bootstrap_mean, paired_bootstrap_difference

    sft_by_seed = {s.seed: s for s in sft["_seeds"]} if sft and sft is not arm else {}
    rows = []
    for s in arm["_seeds"]:
        ids = sorted(s.correct)
        row = {"seed": s.seed, "run": str(s.folder.relative_to(s.folder.parent.parent)),
               "accuracy": bootstrap_mean([s.correct[t] for t in ids], seed=s.seed, n_resamples=n_resamples).to_dict(),
               "faithful_share": bootstrap_mean([s.faithful[t] for t in ids if t in s.faithful], seed=s.seed,
                                                n_resamples=n_resamples).to_dict(),
               "vs_sft": None}
        ref = sft_by_seed.get(s.seed)
        if ref is not None:
            shared = [t for t in ids if t in ref.correct]
            row["vs_sft"] = paired_bootstrap_difference([ref.correct[t] for t in shared], [s.correct[t] for t in shared],
                                                        seed=s.seed, n_resamples=n_resamples).to_dict()
        rows.append(row)
    return rows


def aggregate(out: Path, arms: Sequence[Arm], preset: Preset, cfg: ExperimentConfig, eval_tasks: Sequence[Any]) -> dict:
    """results.json: per arm, mean accuracy (overall, per hop) with item-bootstrap intervals, the seed
    spread, faithfulness, drift, the summed 2x2 table, training curves, and paired differences vs SFT."""
    from kgreason.train.runs import now_iso

    hops = {t.id: int(t.hop_len) for t in eval_tasks}
    arm_rows: list[dict] = []
    references: dict | None = None
    for arm in arms:
        seeds = [r for r in (_load_seed(out, arm, s) for s in seeds_for(arm, preset.seeds)) if r is not None]
        if not seeds:
            continue
        references = references or seeds[0].metrics.get("references")
        arm_rows.append(arm_result(arm, seeds, hops, preset.n_resamples))
    sft = next((a for a in arm_rows if a["name"] == "sft"), None)
    for a in arm_rows:
        a["vs_sft"] = vs_reference(a, sft, hops, preset.n_resamples) if sft and a is not sft else None
        a["per_seed"] = per_seed_rows(a, sft, preset.n_resamples)
    for a in arm_rows:
        a.pop("_correct")
        a.pop("_seeds")
    hop_counts: dict[str, int] = {}
    for h in hops.values():
        hop_counts[str(h)] = hop_counts.get(str(h), 0) + 1
    return {
        "experiment": "distribution",
        "schema_version": 1,
        "generated": now_iso(),
        "preset": cfg.preset,
        "mode": cfg.mode,
        "model": preset.model,
        "seeds": preset.seeds,
        "settings": asdict(preset),
        "eval": {"file": "data/eval.jsonl", "n_items": len(hops), "by_hop": hop_counts},
        "interval_method": "95% percentile bootstrap over eval items of the per-item correctness averaged "
                           "over the arm's seeds; seed_std is the standard deviation of per-seed accuracy",
        "drift_method": "mean per-token KL(model || base), teacher-forced on the arm's own greedy eval completions",
        "arms": arm_rows,
        "references": references or {},
        "wall_seconds_arms": round(sum(a["wall_s"] for a in arm_rows), 1),
    }


# --- report ------------------------------------------------------------------------------------------
ACCURACY_PNG = "accuracy_by_hop.png"
CONFUSION_PNG = "confusion_2x2.png"
CURVES_PNG = "training_curves.png"


def _diff_cell(d: dict | None) -> str:
    if not d or not d.get("n"):
        return "–"
    return f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"


def _seed_cell(iv: dict) -> str:
    from kgreason.evaluate.report import pct

    std = iv.get("seed_std")
    return pct(iv) + (f" ±{100 * std:.1f} (seeds)" if std is not None else "")


def report_markdown(results: dict, images: Sequence[str]) -> str:
    from kgreason.evaluate.report import md_table, num, pct

    hops = sorted(results["eval"]["by_hop"], key=int)
    s = results["settings"]
    head = [
        f"# Distribution experiment ({results['preset']} preset, {results['mode']}-book)",
        "Which training distribution makes a small model answer held-out 4-5 hop questions? Every arm is "
        "scored greedily on the same held-out eval set; no arm trains on it.",
        md_table(["", ""], [
            ["model", results["model"]],
            ["eval items", f"{results['eval']['n_items']} ({', '.join(f'{k} hops: {v}' for k, v in sorted(results['eval']['by_hop'].items()))})"],
            ["seeds", results["seeds"]],
            ["SFT", f"{s['sft_steps']} steps, batch {s['sft_batch']}, LoRA r={s['lora_r']}"],
            ["RSFT", f"{s['rsft_rounds']} round(s), k={s['rsft_k']}, {s['rsft_questions']} questions/round"],
            ["GRPO", f"{s['grpo_steps']} steps, k={s['grpo_k']}"],
            ["intervals", results["interval_method"]],
            ["drift", results["drift_method"]],
            ["wall time (all arm-seeds, summed)", f"{results['wall_seconds_arms']:.0f} s"],
        ]),
    ]
    rows = []
    for a in results["arms"]:
        d = a.get("drift_kl")
        rows.append([a["label"], len(a["seeds_done"]), _seed_cell(a["accuracy"]),
                     *(pct(a["by_hop"].get(h)) for h in hops), pct(a["faithful_share"]),
                     pct(a["format_failure_rate"]), f"{d['mean']:.3g}" if d else "–",
                     _diff_cell((a.get("vs_sft") or {}).get("accuracy"))])
    for name, ref in results.get("references", {}).items():
        rows.append([f"*{name}*", "–", pct(ref["accuracy"]), *(pct(ref["by_hop"].get(h)) for h in hops),
                     "–", "–", "–", "–"])
    table = md_table(["arm", "seeds", "accuracy", *(f"{h} hops" for h in hops), "faithful", "format fail",
                      "drift KL", "Δ acc vs SFT (pts, paired)"], rows)
    diff_rows = []
    for a in results["arms"]:
        vs = a.get("vs_sft")
        if vs:
            diff_rows.append([a["label"], _diff_cell(vs["accuracy"]),
                              *(_diff_cell(vs["by_hop"].get(h)) for h in hops),
                              num(vs["accuracy"]["p_value"], 3)])
    parts = [*head, "## Results\n\n" + table]
    if diff_rows:
        parts.append("## Paired differences vs SFT (same items, percentage points, 95% interval)\n\n"
                     + md_table(["arm", "all", *(f"{h} hops" for h in hops), "p (all)"], diff_rows))
    conf_rows = [[a["label"], a["confusion"].get("correct_faithful", 0), a["confusion"].get("correct_unfaithful", 0),
                  a["confusion"].get("wrong_faithful", 0), a["confusion"].get("wrong_unfaithful", 0)]
                 for a in results["arms"]]
    parts.append("## Answer correct × trace faithful (summed over seeds)\n\n" + md_table(
        ["arm", "correct+faithful", "correct+unfaithful", "wrong+faithful", "wrong+unfaithful"], conf_rows))
    shuf_rows = [[a["label"], pct(a["accuracy"]), f"{100 * a['shuffle']['accuracy_shuffled']:.1f}%",
                  f"{100 * a['shuffle']['entity_changed_share']:.1f}%"] for a in results["arms"] if a.get("shuffle")]
    if shuf_rows:
        parts.append("## Shuffle robustness (correct letter always moves; means over seeds)\n\n" + md_table(
            ["arm", "accuracy", "accuracy, shuffled options", "chosen entity changed"], shuf_rows))
    seed_rows = [[a["label"], r["seed"], pct(r["accuracy"]), pct(r["faithful_share"]), _diff_cell(r["vs_sft"]), r["run"]]
                 for a in results["arms"] for r in a.get("per_seed") or []]
    parts.append("## Per seed\n\nEach seed alone; Δ is paired against the SFT model of the same seed (the adapter the "
                 "arm started from), 95% item-bootstrap intervals.\n\n" + md_table(
                     ["arm", "seed", "accuracy", "faithful", "Δ acc vs SFT, same seed (pts, paired)", "run folder"],
                     seed_rows))
    parts += list(images)
    return "\n\n".join(parts) + "\n"


def write_report(out: Path, results: dict) -> None:
    """results.json, report.md and the PNG plots, each written atomically."""
    from kgreason.evaluate.report import plot_accuracy_by_hop, plot_confusion_grid, plot_curve_panels
    from kgreason.io import atomic_write_text

    arms = results["arms"]
    images: list[str] = []
    plots: dict[str, str] = {}
    if arms:
        plot_accuracy_by_hop({a["label"]: a["by_hop"] for a in arms}, out / ACCURACY_PNG,
                             f"Held-out accuracy by hop ({results['preset']}, mean over seeds, 95% CI)")
        plot_confusion_grid({a["label"]: a["confusion"] for a in arms}, out / CONFUSION_PNG,
                            "answer correct × trace faithful (summed over seeds)")
        plots.update(accuracy_by_hop=ACCURACY_PNG, confusion=CONFUSION_PNG)
        images += [f"![accuracy by hop]({ACCURACY_PNG})", f"![2x2 tables]({CONFUSION_PNG})"]

        def series(key: str) -> dict[str, list]:
            return {a["label"]: a["curves"].get(key, []) for a in arms}

        curves = plot_curve_panels({
            "SFT loss": ("optimizer step", series("sft_loss")),
            "RSFT pass rate (k samples)": ("round", series("rsft_pass_rate")),
            "RSFT mean sample reward": ("round", series("rsft_reward")),
            "GRPO mean reward": ("step", series("grpo_reward")),
        }, out / CURVES_PNG)
        if curves is not None:
            plots["training_curves"] = CURVES_PNG
            images.append(f"![training curves]({CURVES_PNG})")
    results["plots"] = plots
    atomic_write_json(out / RESULTS_FILE, results)
    atomic_write_text(out / "report.md", report_markdown(results, images))
