"""The main job, `kgreason run` (what `make run` calls): the whole method, end to end, resumable.

Stages, each marked done in summary.json so a second `kgreason run` with the same arguments
reuses them: data (default KG + tasks) → model (prepare the bundled SmolLM2) → base_eval → sft →
sft_eval → rsft → rsft_eval; then the table (phase × held-out 4-5 hop accuracy, per hop, trace
faithfulness, mean reward) is printed and written to report.md.

Presets: `quick` (default) is sized for about 20 minutes on a 2-core CPU; `full` is for a GPU;
`smoke` runs every stage on tiny:random in about a minute (tests, dry runs).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kgreason.io import InputError, atomic_write_text
from kgreason.train.evaluation import EvalPhaseOptions, eval_phase_name, evaluate_phase
from kgreason.train.rsft import RSFTOptions, run_rsft
from kgreason.train.runs import Run, dump_options
from kgreason.train.sft import SFTOptions, TrainOptions, run_sft

BUNDLED = "bundled:smollm2-135m"
MODEL_PHASES = ("base", "sft", "rsft")


@dataclass
class DataOptions:
    seed: int = 0
    kg: str = ""  # "" = the built-in DevOps KG of `kg_size`; else a kg.json / TSV / CSV file or builtin:NAME
    kg_size: str = "small"
    mode: str = "closed"
    eval_size: int = 300
    train_easy: int = 1500
    train_hard: int = 600


@dataclass
class PipelineConfig:
    preset: str = "quick"
    model: str = BUNDLED
    data: DataOptions = field(default_factory=DataOptions)
    eval: EvalPhaseOptions = field(default_factory=EvalPhaseOptions)
    sft: SFTOptions = field(default_factory=SFTOptions)
    rsft: RSFTOptions = field(default_factory=RSFTOptions)
    # The untrained model never writes the answer format, so a short budget shows that as well as a
    # long one and saves minutes on a CPU (0: the same budget as the other phases).
    base_eval_max_new_tokens: int = 0


def preset_config(name: str) -> PipelineConfig:
    """The embedded defaults. quick: measured to fit about 20 minutes on the 2-core CPU (see README)."""
    if name == "quick":
        # Open book: each hop is an in-context lookup, which a 135M model learns in minutes on 2 CPU
        # cores; closed book first needs every fact memorised (see docs/learning.md). SFT sees only
        # 1-3 hop questions; RSFT samples the 4-5 hop training pool (never the eval file) and keeps
        # correct answers with faithful traces. Sized from measured idle runs (docs/learning.md).
        return PipelineConfig(
            preset="quick",
            data=DataOptions(mode="open", eval_size=150, train_easy=1000, train_hard=400),
            base_eval_max_new_tokens=48,
            eval=EvalPhaseOptions(max_items=0, max_new_tokens=128, batch_size=16),
            sft=SFTOptions(material=["easy"], max_examples=0,
                           train=TrainOptions(max_steps=100, batch_size=8, learning_rate=5e-4, max_length=512,
                                              save_steps=20, logging_steps=5)),
            rsft=RSFTOptions(rounds=2, k=4, questions=64, distribution="hard", faithful_only=True, keep=2,
                             temperature=0.5, max_new_tokens=128, chunk=16,
                             train=TrainOptions(max_steps=0, epochs=2.0, batch_size=8, learning_rate=2e-4,
                                                max_length=512, save_steps=10, logging_steps=1)),
        )
    if name == "full":
        return PipelineConfig(
            preset="full",
            eval=EvalPhaseOptions(max_items=0, max_new_tokens=192, batch_size=64, shuffle=True, drift=True),
            sft=SFTOptions(material=["facts", "easy"], max_examples=0,
                           train=TrainOptions(max_steps=1500, batch_size=16, learning_rate=2e-4, save_steps=250)),
            rsft=RSFTOptions(rounds=4, k=8, questions=400, distribution="curriculum", max_new_tokens=192, chunk=64,
                             train=TrainOptions(max_steps=0, epochs=2.0, batch_size=16, learning_rate=1e-4,
                                                save_steps=100)),
        )
    if name == "smoke":
        small = TrainOptions(max_steps=2, batch_size=2, max_length=256, save_steps=1, logging_steps=1)
        return PipelineConfig(
            preset="smoke", model="tiny:random",
            data=DataOptions(eval_size=12, train_easy=40, train_hard=12),
            eval=EvalPhaseOptions(max_items=6, max_new_tokens=16, batch_size=8, references=False, plots=False),
            sft=SFTOptions(material=["facts", "easy"], max_examples=8, train=small),
            rsft=RSFTOptions(rounds=1, k=2, questions=3, max_new_tokens=16, chunk=2, train=replace(small)),
        )
    raise InputError(f"--preset: expected quick, full or smoke, got {name!r}")


PRESETS = ("quick", "full", "smoke")


def default_run_dir(config: PipelineConfig, root: Path = Path("runs")) -> Path:
    """runs/<preset> for the embedded defaults; runs/<preset>-<hash> when options were overridden,
    so the same arguments always land in (and resume) the same folder."""
    base = dump_options(preset_config(config.preset))
    mine = dump_options(config)
    if mine == base:
        return root / config.preset
    digest = hashlib.sha1(json.dumps(mine, sort_keys=True).encode()).hexdigest()[:8]
    return root / f"{config.preset}-{digest}"


# --- stages --------------------------------------------------------------------------------------
def stage_data(run: Run, opts: DataOptions) -> dict:
    """Build (or import) the KG and generate the task files into the run's data/ folder."""
    from kgreason.kg.builtin import build_devops_kg
    from kgreason.kg.io import import_kg, save_kg
    from kgreason.tasks.generate import DEFAULT_SPLITS, TaskConfig, generate, write_dataset

    if run.is_done("data"):
        return run.phase_info("data") or {}
    start = time.perf_counter()
    if opts.kg:
        print(f"[data] importing the KG {opts.kg} and generating {opts.mode}-book tasks (seed {opts.seed})")
        kg = import_kg(opts.kg)
    else:
        print(f"[data] building the DevOps KG (seed {opts.seed}, size {opts.kg_size}) and generating "
              f"{opts.mode}-book tasks")
        kg = build_devops_kg(seed=opts.seed, size=opts.kg_size)
    sizes = {"eval": opts.eval_size, "train_easy": opts.train_easy, "train_hard": opts.train_hard}
    splits = tuple(replace(s, size=sizes.get(s.name, s.size)) for s in DEFAULT_SPLITS)
    dataset = generate(kg, TaskConfig(seed=opts.seed, mode=opts.mode, splits=splits), progress=True)
    save_kg(kg, run.data_dir / "kg.json")
    write_dataset(dataset, run.data_dir)
    counts = {name: len(tasks) for name, tasks in dataset.splits.items()} | {"facts": len(dataset.facts)}
    info = {"kind": "data", "kg": {"entities": len(kg.entities), "edges": len(kg.edges)}, "counts": counts,
            "wall_s": round(time.perf_counter() - start, 2)}
    run.mark_done("data", info)
    print(f"[data] {info['kg']['entities']} entities, {info['kg']['edges']} edges; {counts}")
    return info


def stage_model(run: Run, model_ref: str) -> dict:
    """Convert the bundled GGUF into a Hugging Face folder once (`kgreason model prepare`)."""
    if run.is_done("model"):
        return run.phase_info("model") or {}
    from kgreason.models import prepare_model, resolve_model_ref

    start = time.perf_counter()
    if resolve_model_ref(model_ref).kind == "tiny":
        info: dict[str, Any] = {"kind": "model", "ref": model_ref, "path": None}
    else:
        print(f"[model] preparing {model_ref}")
        folder, converted = prepare_model(model_ref)
        info = {"kind": "model", "ref": model_ref, "path": str(folder), "converted_now": converted}
    info["wall_s"] = round(time.perf_counter() - start, 2)
    run.mark_done("model", info)
    return info


def run_pipeline(config: PipelineConfig, run_dir: Path | None = None, argv: list[str] | None = None) -> Run:
    """Every stage in order, each skipped when done; prints the table at the end."""
    from kgreason.kg.io import load_kg
    from kgreason.tasks.generate import load_tasks

    run_dir = Path(run_dir) if run_dir else default_run_dir(config)
    run = Run.create_or_resume(run_dir, {"pipeline": dump_options(config), "model_ref": config.model,
                                         "dataset_seed": config.data.seed, "command": argv or []})
    started = time.perf_counter()
    print(f"kgreason run: preset {config.preset}, model {config.model}, run folder {run.root}")
    with run:
        stage_data(run, config.data)
        stage_model(run, config.model)
        kg = load_kg(run.data_dir / "kg.json")
        eval_tasks = load_tasks(run.data_dir / "eval.jsonl")
        base_budget = config.base_eval_max_new_tokens or config.eval.max_new_tokens
        evaluate_phase(run, "base", config.model, None, eval_tasks, kg, replace(config.eval, max_new_tokens=base_budget))
        run_sft(run, config.model, run.data_dir, config.sft)
        sft_adapter = run.adapter_dir("sft")
        evaluate_phase(run, "sft", config.model, sft_adapter, eval_tasks, kg, config.eval)
        info = run_rsft(run, config.model, run.data_dir, config.rsft, init_adapter=sft_adapter, kg=kg)
        rsft_adapter = run.root / info["adapter"] if info.get("adapter") else sft_adapter
        evaluate_phase(run, "rsft", config.model, rsft_adapter, eval_tasks, kg, config.eval)
        table = results_table(run)
        gains = paired_gains(run)
        report = write_run_report(run, table + ("\n\n" + gains if gains else ""), time.perf_counter() - started)
    print()
    print(table)
    if gains:
        print()
        print(gains)
    print()
    print(f"run folder: {run.root}")
    print(f"report:     {report}")
    print(f"TensorBoard: tensorboard --logdir {run.tb_dir()}")
    return run


# --- the table -----------------------------------------------------------------------------------
def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}%"


def results_table(run: Run) -> str:
    """Markdown table: phase × accuracy (held-out eval), per hop, faithful share, mean reward."""
    phases = run.summary.get("phases", {})
    rows = [(p, phases[eval_phase_name(p)]) for p in MODEL_PHASES if eval_phase_name(p) in phases]
    hops = sorted({h for _, row in rows for h in (row.get("by_hop") or {})}, key=int)
    header = ["phase", "accuracy", "95% CI", *[f"{h}-hop" for h in hops], "faithful", "format fail",
              "mean reward", "n"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows:
        ci = row.get("accuracy_ci") or [None, None]
        cells = [name, _pct(row.get("accuracy")),
                 "-" if ci[0] is None else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]",
                 *[_pct((row.get("by_hop") or {}).get(h)) for h in hops],
                 _pct(row.get("faithful")), _pct(row.get("format_failure")),
                 "-" if row.get("mean_reward") is None else f"{row['mean_reward']:.3f}", str(row.get("n", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_gains(run: Run) -> str:
    """Each trained phase against the one before it on the same held-out items: the paired
    bootstrap 95% interval of the accuracy and faithful-share differences."""
    from kgreason.evaluate.compare import _load_one, _paired

    done = [p for p in MODEL_PHASES if (run.eval_dir(p) / "metrics.json").is_file()]
    lines = []
    for before, after in zip(done, done[1:], strict=False):
        a, b = _load_one(run.eval_dir(before), before), _load_one(run.eval_dir(after), after)
        acc = _paired(a, b, None, "correct", 0, 2000)
        faith = _paired(a, b, None, "faithful", 0, 2000)
        lines.append(f"- {after} vs {before} (paired, n={acc.n}): accuracy {100 * acc.diff:+.1f} points "
                     f"[{100 * acc.low:+.1f}, {100 * acc.high:+.1f}], faithful {100 * faith.diff:+.1f} points "
                     f"[{100 * faith.low:+.1f}, {100 * faith.high:+.1f}]")
    return "\n".join(lines)


def stage_times(run: Run) -> str:
    phases = run.summary.get("phases", {})
    lines = ["| stage | wall seconds |", "|---|---|"]
    for name, info in phases.items():
        lines.append(f"| {name} | {info.get('wall_s', '-')} |")
    return "\n".join(lines)


def write_run_report(run: Run, table: str, wall_s: float) -> Path:
    cfg = run.config
    links = "\n".join(f"- {p}: [eval/{p}/report.md](eval/{p}/report.md)" for p in MODEL_PHASES
                      if (run.eval_dir(p) / "report.md").exists())
    text = (f"# Run {run.name}\n\n"
            f"Model `{cfg.get('model_ref')}`, dataset seed {cfg.get('dataset_seed')}, "
            f"git revision `{cfg.get('git_revision')}`.\n\n"
            "## Held-out eval (4-5 hops)\n\n" + table + "\n\n"
            "Accuracy: share of held-out items answered with the right letter (greedy). Faithful: the "
            "trace's claimed hops lead from the start to the chosen answer along the stated relations.\n\n"
            "## Stages\n\n" + stage_times(run) + f"\n\nThis invocation: {wall_s:.0f} s.\n\n"
            "## Per-phase reports\n\n" + (links or "-") + "\n")
    path = run.root / "report.md"
    atomic_write_text(path, text)
    return path
