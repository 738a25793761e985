"""Evaluation inside a run: `evaluate_phase` scores one phase's model on the held-out eval set.

It delegates to `kgreason.evaluate.evaluate_model` (greedy answers, KG reward, accuracy by hop with
bootstrap intervals, faithfulness, report.md), writing to `eval/<phase>/`, then copies the scored
answers into the run's episodes.jsonl and records a summary row (accuracy, by_hop, faithful share,
mean reward, wall seconds) in summary.json under `<phase>_eval`. The pipeline calls only this
function, so the evaluator behind it can be swapped without touching the training code.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kgreason.config import EvalSettings
from kgreason.records import Episode, Task
from kgreason.runs.folder import Run, is_main_process
from kgreason.train.phase_model import PhaseModel, held_for

# Evaluations run in the device's default dtype (bf16 where it is native), whatever the training used.
EVAL_DTYPE = "auto"


def eval_phase_name(model_phase: str) -> str:
    """summary.json / episodes.jsonl name of the evaluation of a model phase: "sft" -> "sft_eval"."""
    return f"{model_phase}_eval"


def evaluate_phase(run: Run, model_phase: str, model_ref: str, adapter: Path | None, tasks: list[Task],
                   kg: Any, options: EvalSettings, held: PhaseModel | None = None) -> dict:
    """Evaluate the model after `model_phase` ("base", "sft", "rsft", ...); skipped when done.

    When `held` holds that model (the training phase just before, in this process), it is
    evaluated in place; otherwise it is loaded. Both see the same weights: the held one folds its
    adapter in while it answers, the loaded one is merged at load time.
    """
    phase = eval_phase_name(model_phase)
    if run.is_done(phase):
        return run.phase_info(phase) or {}
    from kgreason.evaluate.runner import EvalOptions, evaluate_model
    from kgreason.memory import release_between_phases
    from kgreason.models import load_model, load_tokenizer

    start = time.perf_counter()
    model = held_for(held, model_ref, adapter, EVAL_DTYPE)
    if model is not None:
        release_between_phases()  # the training's freed memory, before the evaluation allocates its own
        tokenizer = load_tokenizer(model_ref)
    else:
        # Merging folds LoRA into the weights for plain-model sampling speed; drift needs the adapter
        # unmerged (it compares against the same model with the adapter disabled).
        merge = adapter is not None and not options.drift
        model, tokenizer = load_model(model_ref, adapter=adapter, dtype=EVAL_DTYPE, merge=merge)
    print(f"[{phase}] greedy answers on {options.max_items or len(tasks)} held-out items "
          f"({model_ref}{' + ' + str(adapter) if adapter else ''})")
    metrics = evaluate_model(
        model, tokenizer, tasks, kg, out_dir=run.eval_dir(model_phase),
        options=EvalOptions(**asdict(options), train_tasks=training_tasks(run), run=run.name, phase=phase),
    )
    copy_episodes(run, phase, run.eval_dir(model_phase) / "predictions.jsonl")
    row = summary_row(metrics)
    row["wall_s"] = round(time.perf_counter() - start, 2)
    row["reused_model"] = held_for(held, model_ref, adapter, EVAL_DTYPE) is not None
    row["eval_dir"] = str(run.eval_dir(model_phase).relative_to(run.root))
    run.log_metrics(phase, 0, {k: v for k, v in row.items() if isinstance(v, (int, float))})
    run.mark_done(phase, row)
    return run.phase_info(phase) or row


def training_tasks(run: Run) -> list[Task] | None:
    """The run's training items (every task file in data/ except the held-out eval), or None."""
    from kgreason.tasks.generate import load_tasks

    files = [p for p in sorted(run.data_dir.glob("*.jsonl")) if p.stem not in ("eval", "facts")]
    return [t for p in files for t in load_tasks(p)] or None


def summary_row(metrics: dict) -> dict:
    """The headline numbers of an evaluation, flattened for summary.json and the run table."""

    def mean(d: Any) -> float | None:
        return None if not isinstance(d, dict) else d.get("mean")

    return {
        "kind": "eval",
        "n": metrics.get("n_items"),
        "accuracy": mean(metrics.get("accuracy")),
        "accuracy_ci": [metrics["accuracy"]["low"], metrics["accuracy"]["high"]] if metrics.get("accuracy") else None,
        "by_hop": {h: mean(iv) for h, iv in (metrics.get("by_hop") or {}).items()},
        "faithful": mean((metrics.get("trace") or {}).get("faithful_share")),
        "format_failure": mean(metrics.get("format_failure_rate")),
        "mean_reward": metrics.get("mean_reward"),
    }


def copy_episodes(run: Run, phase: str, predictions: Path) -> int:
    """Append the evaluation's scored answers to episodes.jsonl once (a rerun does not duplicate)."""
    from kgreason.io import iter_jsonl

    if not predictions.exists() or not is_main_process():
        return 0
    seen = {ep["task_id"] for ep in run.iter_episodes(phase)}
    n = 0
    for _, rec in iter_jsonl(predictions, tolerate_torn_tail=True):
        if rec.get("task_id") in seen:
            continue
        ep = Episode.from_dict(rec)
        ep.run, ep.phase = run.name, phase
        run.append_episode(ep)
        seen.add(ep.task_id)
        n += 1
    return n
