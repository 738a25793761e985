"""The main job, `kgreason run` (what `make run` calls): the whole method, end to end, resumable.

Stages, each marked done in summary.json so a second `kgreason run` with the same arguments
reuses them: data (default KG + tasks) → model (prepare the bundled SmolLM2) → base_eval → sft →
sft_eval → rsft → rsft_eval; then the table (phase × held-out 4-5 hop accuracy, per hop, trace
faithfulness, mean reward) is printed and written to report.md.

Run profiles (kgreason/profiles/*.yaml over the defaults in kgreason/config.py): `quick` (default)
takes about 15 minutes on a 2-core CPU with AMX, about 58 with AVX2 only; `full` is for a GPU; `smoke` runs every stage on
tiny:random in about a minute (tests, dry runs).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from kgreason.config import RL_PHASES, PipelineConfig, RunConfig, pipeline_profile
from kgreason.evaluate.headline import run_headline
from kgreason.io import InputError, RunFailed, atomic_write_text
from kgreason.options import to_dict
from kgreason.phases import get_phase, phase_options, phase_order, run_phase, training_phases
from kgreason.runs.folder import Run
from kgreason.stats import share_interval_from_record
from kgreason.tasks.defaults import DataOptions
from kgreason.train.evaluation import eval_phase_name, evaluate_phase
from kgreason.train.phase_model import PhaseModel

REFUSAL_OPTIONS = ("pipeline.data.allow_shortcuts", "pipeline.data.max_shortcut")
MODEL_PHASES = phase_order(plugins=False)  # the table's order (kgreason/phases.py); a run has one KG-reward phase (--rl)


def default_run_dir(config: PipelineConfig, root: Path = Path("runs")) -> Path:
    """runs/<profile> for a profile's own values; runs/<profile>-<hash> when options were
    overridden, so the same arguments always land in (and resume) the same folder."""
    base = to_dict(pipeline_profile(config.profile))
    mine = to_dict(config)
    if mine == base:
        return root / config.profile
    digest = hashlib.sha1(json.dumps(mine, sort_keys=True).encode()).hexdigest()[:8]
    return root / f"{config.profile}-{digest}"


# --- stages --------------------------------------------------------------------------------------
def stage_data(run: Run, opts: DataOptions) -> dict:
    """The graph and the task files in the run's data/ folder (kgreason.tasks.build, shared with experiments)."""
    from kgreason.tasks.build import build_data_folder

    if run.is_done("data"):
        return run.phase_info("data") or {}
    start = time.perf_counter()
    print(f"[data] {opts.kg} (data seed {opts.seed}): generating {opts.mode}-book tasks")
    info = {"kind": "data", **build_data_folder(run.data_dir, opts, progress=True),
            "wall_s": round(time.perf_counter() - start, 2)}
    run.mark_done("data", info)
    if "kg" in info:
        print(f"[data] {info['kg']['entities']} entities, {info['kg']['edges']} edges; {info['counts']}")
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


# --- the model stages, each in its own process ------------------------------------------------------
def _eval_tasks(run: Run) -> tuple[Any, list]:
    from kgreason.kg.kgjson import load_kg
    from kgreason.tasks.generate import load_tasks

    return load_kg(run.data_dir / "kg.json"), load_tasks(run.data_dir / "eval.jsonl")


def _base_eval(run: Run, cfg: PipelineConfig, held: PhaseModel) -> None:
    kg, tasks = _eval_tasks(run)
    budget = cfg.base_eval_max_new_tokens or cfg.eval.max_new_tokens
    evaluate_phase(run, "base", cfg.model, None, tasks, kg, replace(cfg.eval, max_new_tokens=budget))


def _sft_eval(run: Run, cfg: PipelineConfig, held: PhaseModel) -> None:
    kg, tasks = _eval_tasks(run)
    evaluate_phase(run, "sft", cfg.model, run.adapter_dir("sft"), tasks, kg, cfg.eval, held=held)


def _own_model(held: PhaseModel, cfg: PipelineConfig, dtype: str) -> PhaseModel:
    """`held` when it trains in `dtype`, else a fresh holder (a phase trained in another dtype than SFT)."""
    if held.same_dtype(dtype):
        return held
    held.release()
    return PhaseModel(cfg.model, dtype)


def _train(name: str) -> Any:
    """The training stage of phase `name` (kgreason/phases.py): SFT from the base model, a phase that
    continues another from that phase's adapter, with the run's graph as its reward."""
    def stage(run: Run, cfg: PipelineConfig, held: PhaseModel) -> None:
        from kgreason.kg.kgjson import load_kg

        phase, options = get_phase(name), phase_options(cfg, name)
        if phase.starts_from is None:
            run_phase(name, run, cfg.model, run.data_dir, options, held=held)
            return
        run_phase(name, run, cfg.model, run.data_dir, options, init_adapter=run.adapter_dir(phase.starts_from),
                  kg=load_kg(run.data_dir / "kg.json"), held=_own_model(held, cfg, options.train.dtype))
    return stage


def _rl_eval(phase: str) -> Any:
    """The evaluation stage of a KG-reward phase (its adapter; SFT's when the phase trained nothing)."""
    def stage(run: Run, cfg: PipelineConfig, held: PhaseModel) -> None:
        kg, tasks = _eval_tasks(run)
        info = run.phase_info(phase) or {}
        adapter = run.root / info["adapter"] if info.get("adapter") else run.adapter_dir("sft")
        evaluate_phase(run, phase, cfg.model, adapter, tasks, kg, cfg.eval, held=held)
    return stage


# the built-in phases' (plugins=False: importing a plugin at import time could be circular)
MODEL_STAGES = {"base_eval": _base_eval, "sft_eval": _sft_eval,
                **{name: _train(name) for name in training_phases(plugins=False)},
                **{f"{name}_eval": _rl_eval(name) for name in training_phases(plugins=False) if name != "sft"}}


def stage_names(cfg: PipelineConfig) -> tuple[str, ...]:
    """The model stages of a run, in order: the KG-reward phase is RSFT or GRPO (`--rl`)."""
    return ("base_eval", "sft", "sft_eval", cfg.rl, f"{cfg.rl}_eval")


# The stages that share a process. A training stage loads its model once for all its work
# (kgreason/train/phase_model.py); its evaluation reuses that model only in-process (no
# stage_processes). With stage processes each evaluation runs in its own: after training in the
# same process the quick profile's evaluations peaked at 2.62 and 2.54 GB even with the freed
# memory purged in between, against 1.97 and 1.96 GB on their own (the issue's bound is 2.5 GB).
def stage_groups(cfg: PipelineConfig) -> tuple[tuple[str, ...], ...]:
    return tuple((name,) for name in stage_names(cfg))


def _phase_model(cfg: PipelineConfig, names: tuple[str, ...]) -> PhaseModel:
    """The model a group of stages shares, in the dtype of its first training stage (`_rsft`
    replaces it when RSFT trains in another dtype than SFT)."""
    first = next((name for name in names if name in training_phases(plugins=False)), "sft")
    return PhaseModel(cfg.model, getattr(cfg, first).train.dtype)


def end_with_parent(parent_pid: int) -> None:
    """Have Linux send this process SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG).

    Why: a stage's child otherwise outlives a `kgreason run` that was killed (measured: an
    orphaned evaluation went on for minutes, writing into a run folder that had been deleted, and
    slowing the next job). A stage killed this way resumes from its checkpoint on the next run."""
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the request: no signal would come
        os.kill(os.getpid(), signal.SIGTERM)


def _stages_in_child(names: tuple[str, ...], run_root: str, config: dict, parent_pid: int) -> None:
    """A group of model stages in a fresh process (the child's entry point; spawn pickles only
    these plain values), ended by Linux if the parent dies."""
    import sys

    from kgreason.options import from_dict

    end_with_parent(parent_pid)

    # A spawned child block-buffers stdout when it is a file or a pipe; its lines would reach a log
    # only when the stage ends.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    cfg = from_dict(PipelineConfig, config)
    held = _phase_model(cfg, names)
    with Run(run_root) as run:
        for name in names:
            MODEL_STAGES[name](run, cfg, held)


def run_model_stages(run: Run, cfg: PipelineConfig, names: tuple[str, ...]) -> None:
    """Run a group of model stages (a training stage and its evaluation), each skipped when done.
    With `stage_processes` the group runs in a spawned child: a process's freed tensors mostly stay
    in its allocator's arenas, so in one long process every stage's peak memory would start where
    the last one ended (measured: 8.8 GB by the last stage of the quick profile, against 2.5-3 GB
    for any stage on its own)."""
    if not cfg.stage_processes or all(run.is_done(name) for name in names):
        held = _phase_model(cfg, names)  # done stages print their "already done" line and return
        for name in names:
            MODEL_STAGES[name](run, cfg, held)
        held.release()
        return
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with stage_allocator(group_allocator(cfg, names)), \
            ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            pool.submit(_stages_in_child, names, str(run.root), to_dict(cfg), os.getpid()).result()
        except BrokenProcessPool:
            raise RunFailed(f"the process of the {' and '.join(names)} stage died before it finished (killed, out "
                            "of memory, or a native library aborted; its last output is above). Finished stages "
                            "are kept: rerun the same command to resume.") from None


def openvino_stages(cfg: PipelineConfig, names: tuple[str, ...]) -> list[str]:
    """The stages of `names` that decode with the openvino backend (evaluations use `cfg.eval`'s)."""
    def backend(name: str) -> str | None:
        return getattr(cfg.eval if name.endswith("_eval") else getattr(cfg, name, None), "backend", None)

    return [name for name in names if backend(name) == "openvino"]


def group_allocator(cfg: PipelineConfig, names: tuple[str, ...]) -> str:
    """`cfg.allocator`, except that a group decoding with OpenVINO runs on the system allocator
    (under jemalloc the engine aborts its process); `--allocator jemalloc` with it is refused."""
    chosen = openvino_stages(cfg, names)
    if not chosen or cfg.allocator == "system":
        return cfg.allocator
    from kgreason.sampling.openvino_backend import JEMALLOC_CONFLICT

    if cfg.allocator == "jemalloc":
        raise InputError(f"--allocator jemalloc with {', '.join(chosen)}: {JEMALLOC_CONFLICT}")
    print(f"[{names[0]}] the system allocator for this stage: the openvino backend cannot run under jemalloc")
    return "system"


def stage_allocator(allocator: str) -> Any:
    """The environment a stage's process starts with, for `allocator` (see kgreason/memory.py)."""
    from kgreason.memory import allocator_environment, child_environment

    try:
        return child_environment(allocator_environment(allocator))
    except ValueError as err:
        raise InputError(f"--allocator: {err}") from None


def run_pipeline(config: PipelineConfig, run_dir: Path | None = None, argv: list[str] | None = None) -> Run:
    """Every stage in order, each skipped when done; prints the table at the end."""
    run_dir = Path(run_dir) if run_dir else default_run_dir(config)
    # a rerun may change the KG-reward phase it does not run, and may allow what the data stage
    # refused (a refused data stage writes no task file, so nothing was built with the old value;
    # a written free-form split screened for another --max-shortcut is refused by tasks/build.py)
    unused = tuple(f"pipeline.{phase}" for phase in RL_PHASES if phase != config.rl) + REFUSAL_OPTIONS
    run = Run.create_or_resume(run_dir, RunConfig(model_ref=config.model, reward_preset=config.reward_preset,
                                                  dataset_seed=config.data.seed, pipeline=config,
                                                  command=argv or []).to_dict(), ignore=unused)
    started = time.perf_counter()
    print(f"kgreason run: profile {config.profile}, model {config.model}, run folder {run.root}")
    with run:
        stage_data(run, config.data)
        stage_model(run, config.model)
        if config.stage_processes:
            for names in stage_groups(config):
                run_model_stages(run, config, names)
        else:  # one process: each training phase's evaluation reuses the model it trained
            run_model_stages(run, config, stage_names(config))
        table = results_table(run)
        gains = paired_gains(run)
        head = run_headline(run.root)
        headline = head.sentence
        diagnosis = head.diagnosis["paragraph"] if head.diagnosis else ""
        report = write_run_report(run, table + ("\n\n" + gains if gains else ""), time.perf_counter() - started,
                                  headline, diagnosis)
    print()
    print(table)
    if gains:
        print()
        print(gains)
    print()
    print(f"run folder: {run.root}")
    print(f"report:     {report}")
    print(f"TensorBoard: tensorboard --logdir {run.tb_dir()}")
    print()
    print(headline)  # last, and first in report.md and on the demo's landing page (evaluate/headline.py)
    if diagnosis:  # a result that is not one says so where the user looks last (evaluate/diagnosis.py)
        print()
        print(f"WHAT WENT WRONG: {diagnosis}")
    return run


# --- the plan --------------------------------------------------------------------------------------
# Seconds per unit of work on the 2-core CPU with the bundled SmolLM2, per matrix ISA, each table
# measured on that kind of CPU with the quick profile (hf decoding). Used only by --dry-run, scaled
# linearly; a GPU or another model differs. The stages do not all slow down alike on a CPU without
# native bf16 (fp32 training costs more than decoding), so each ISA has its own table.
UNIT_SECONDS: dict[str, dict[str, float]] = {
    # Intel with AMX (README), two machines: data 22 and 13 s; 150-item evaluations 38 s at a 48-token
    # budget (56 s on the second), 74-86 s at 128; SFT 399 and 406 s for 100 steps of 8 (498 s beside
    # other work; 543 s before the memory work of issue 11); RSFT rounds of 64 questions x 4 samples: 83-88 s sampling, ~92 s
    # training on ~38 winners x 2 epochs (102 s on 30 + 31 on the second); GRPO's 28 steps of 32
    # completions 733-801 s (the second machine, 2026-12-08, experiments/reward-grpo-amx, seed 0's arms).
    "AMX": {"data": 18.0, "eval_item_token": 84.0 / (150 * 128), "sft_example": 403.0 / 800,
            "sample": 86.0 / 256, "rsft_example_epoch": 92.0 / 76, "grpo_completion": 766.0 / (28 * 32)},
    # AMD EPYC with AVX2 only (bf16 emulated: fp32), 2026-12-07: data 26 s; hf evaluations of 150
    # items at 128 tokens 232 and 254 s (runs/quick-s37); SFT 1,646 and 1,782 s for 100 steps of 8
    # (runs/quick-ov, runs/quick-s37); RSFT sampling 231 s for 64 questions x 4, training 295 s on
    # 53 winners x 2 epochs (experiments/reward-quick-open, rsft_answer seed 0) and 148-193 s on
    # 28-37 (runs/quick-ov); GRPO's 28 steps of 32 completions 1,908-2,074 s over three seeds.
    "AVX2": {"data": 26.0, "eval_item_token": 243.0 / (150 * 128), "sft_example": 1714.0 / 800,
             "sample": 231.0 / 256, "rsft_example_epoch": 2.7, "grpo_completion": 1991.0 / (28 * 32)},
}
# ISAs without a table of their own: a multiple of one that has. AMD EPYC with AVX-512 BF16 ran the
# quick run's data, base eval, SFT and SFT eval in 1,079 s against the AMX CPU's 539 s (2.0x);
# AVX-512 without BF16 trains in fp32 like AVX2 and has not been measured.
ISA_FROM = {"AVX-512 BF16": ("AMX", 2.0), "AVX-512": ("AVX2", 1.0)}


def unit_seconds(isa: str) -> tuple[dict[str, float], str]:
    """The seconds-per-unit table for a matrix ISA and where it comes from (for the dry run's line);
    an unknown ISA gets AVX2's, the slowest measured."""
    if isa in UNIT_SECONDS:
        return dict(UNIT_SECONDS[isa]), f"measured on an {isa} CPU"
    base, factor = ISA_FROM.get(isa, ("AVX2", 1.0))
    return ({k: v * factor for k, v in UNIT_SECONDS[base].items()},
            f"the {base} table x {factor:g}" if factor != 1.0 else f"the {base} table")


def cpu_units() -> tuple[dict[str, float], str, str]:
    """This machine's table, its source, and its ISA."""
    from kgreason.hardware import cpu_description

    isa = cpu_description()["matrix_isa"]
    table, source = unit_seconds(isa)
    return table, source, isa


def estimate_seconds(cfg: PipelineConfig) -> dict[str, float]:
    """A rough per-stage time estimate for the bundled model on this 2-core CPU (UNIT_SECONDS of this
    CPU's matrix ISA)."""
    c = cpu_units()[0]
    items = cfg.eval.max_items or cfg.data.eval_size
    per_eval = items * c["eval_item_token"] * cfg.eval.max_new_tokens * (2 if cfg.eval.shuffle else 1)
    base_tokens = cfg.base_eval_max_new_tokens or cfg.eval.max_new_tokens
    sft_steps = cfg.sft.train.max_steps if cfg.sft.train.max_steps > 0 else 100
    questions = cfg.rsft.questions or cfg.data.train_hard
    winners = questions * 0.3 * min(cfg.rsft.keep, cfg.rsft.k)  # 77 winners of 2 x 64 questions, keep 2 (quick run)
    rsft = cfg.rsft.rounds * (questions * cfg.rsft.k * c["sample"] * cfg.rsft.max_new_tokens / 128
                              + winners * cfg.rsft.train.epochs * c["rsft_example_epoch"])
    # GRPO: every step samples batch x grad_accum completions and trains on each once (no extra
    # log-probability pass when generation and optimizer steps are aligned, as in our settings).
    completions = cfg.grpo.train.batch_size * cfg.grpo.train.grad_accum
    grpo = max(cfg.grpo.train.max_steps, 1) * completions * c["grpo_completion"] * cfg.grpo.max_completion_length / 128
    return {"data": c["data"], "base_eval": items * c["eval_item_token"] * base_tokens,
            "sft": sft_steps * cfg.sft.train.batch_size * cfg.sft.train.grad_accum * c["sft_example"],
            "rsft": rsft, "grpo": grpo,
            # every phase's evaluation costs the same, a phase without a training estimate included
            **{f"{name}_eval": per_eval for name in training_phases()}}


def dry_run_plan(cfg: PipelineConfig, run_dir: Path) -> str:
    """What `kgreason run --dry-run` prints: the resolved options as a --config file, the run folder,
    the stages and the time estimate."""
    from kgreason.hardware import cpu_line
    from kgreason.options import to_yaml

    every = estimate_seconds(cfg)
    # a phase without a measured estimate (a new one, a plugin's) says so instead of guessing
    est = {name: every.get(name) for name in ("data", *stage_names(cfg))}
    stages = "\n".join(f"#   {name:<10} " + (f"~{seconds / 60:5.1f} min" if seconds is not None else "not estimated")
                       for name, seconds in est.items())
    known = sum(seconds for seconds in est.values() if seconds is not None)
    done = ""
    if (run_dir / "summary.json").is_file():
        phases = (Run.load(run_dir).summary.get("phases") or {}).keys()
        done = f"# already done there (reused): {', '.join(phases) or 'nothing'}\n"
    return (f"# kgreason run --profile {cfg.profile}: resolved options (usable as --config FILE)\n"
            f"{to_yaml(cfg)}"
            f"# run folder: {run_dir}\n{done}"
            f"# stages and estimated time for {cfg.model} on this 2-core CPU ({cpu_line()}: the quick run "
            f"{cpu_units()[1]}; a GPU is faster):\n{stages}\n"
            f"#   {'total':<10} ~{known / 60:5.1f} min"
            + (" and the stages not estimated" if None in est.values() else "") + "\n")


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
        # A run resumed from before shares got Wilson intervals keeps the bootstrap's collapsed
        # [0, 0] / [1, 1] in summary.json; show the Wilson interval instead.
        ci = share_interval_from_record(row.get("accuracy"), ci[0], ci[1], row.get("n"))
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
    from kgreason.evaluate.compare import load_eval, paired_difference

    done = [p for p in MODEL_PHASES if (run.eval_dir(p) / "metrics.json").is_file()]
    lines = []
    for before, after in zip(done, done[1:], strict=False):
        a, b = load_eval(run.eval_dir(before), before), load_eval(run.eval_dir(after), after)
        acc = paired_difference(a, b, "correct", n_resamples=2000)
        faith = paired_difference(a, b, "faithful", n_resamples=2000)
        lines.append(f"- {after} vs {before} (paired, n={acc.n}): accuracy {100 * acc.diff:+.1f} points "
                     f"[{100 * acc.low:+.1f}, {100 * acc.high:+.1f}], faithful {100 * faith.diff:+.1f} points "
                     f"[{100 * faith.low:+.1f}, {100 * faith.high:+.1f}]")
    return "\n".join(lines)


def stage_times(run: Run) -> str:
    """Wall time and peak resident memory of each stage (the stage's own process when stages run
    in processes of their own, else since the previous stage finished)."""
    phases = run.summary.get("phases", {})
    lines = ["| stage | wall seconds | peak RSS (MB) |", "|---|---|---|"]
    for name, info in phases.items():
        lines.append(f"| {name} | {info.get('wall_s', '-')} | {info.get('peak_rss_mb', '-')} |")
    peaks = [info.get("peak_rss_mb") or 0 for info in phases.values()]
    lines.append(f"| largest | | {max(peaks, default=0)} |")
    return "\n".join(lines)


def write_run_report(run: Run, table: str, wall_s: float, headline: str = "", diagnosis: str = "") -> Path:
    cfg = run.config
    links = "\n".join(f"- {p}: [eval/{p}/report.md](eval/{p}/report.md)" for p in MODEL_PHASES
                      if (run.eval_dir(p) / "report.md").exists())
    text = (f"# Run {run.name}\n\n" + (f"**{headline}**\n\n" if headline else "") +
            (f"## What went wrong\n\n{diagnosis}\n\n" if diagnosis else "") +
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
