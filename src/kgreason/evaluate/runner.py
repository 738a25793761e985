"""Evaluate one model on a task file: greedy answers, KG reward, every metric, report.

`evaluate_model(model, tokenizer, tasks, kg, out_dir=...)` is the one entry point; `kgreason eval`
and the training job (`kgreason run`, after each phase) both call it. With an `out_dir` the answers
are appended to predictions.jsonl as they are scored, so an interrupted evaluation resumes where
it stopped; metrics are always recomputed from the whole file.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kgreason.config import EvalSettings
from kgreason.evaluate.metrics import join_episodes, letter_accuracy, summarize
from kgreason.evaluate.shuffle import shuffle_report, shuffle_tasks
from kgreason.io import JsonlAppender, atomic_write_json, iter_jsonl, read_json
from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import Episode, Task
from kgreason.reward.episode import scored_episode

PREDICTIONS = "predictions.jsonl"
SHUFFLED_PREDICTIONS = "predictions_shuffled.jsonl"
METRICS = "metrics.json"
DRIFT_ITEMS = "drift.jsonl"  # per item: completion tokens, KL from the base, the model's and the base's entropy


@dataclass
class EvalOptions(EvalSettings):
    """EvalSettings (the options a user sets, declared in kgreason/config.py) plus what the caller
    knows: the training items, and the run and phase the episodes are filed under."""

    train_tasks: list[Task] | None = None  # training items, for the answer-prior shortcut baselines
    run: str = "eval"
    phase: str = "eval"
    step: int = 0
    progress: bool = True


def select_items(tasks: Sequence[Task], max_items: int | None, seed: int) -> list[Task]:
    """All tasks (max_items 0 or None), or a seeded random subset kept in file order (eval files
    are often sorted by hop)."""
    if not max_items or max_items >= len(tasks):
        return list(tasks)
    keep = sorted(random.Random(f"subset:{seed}").sample(range(len(tasks)), max_items))
    return [tasks[i] for i in keep]


def read_episodes(path: Path) -> dict[str, Episode]:
    """task id -> episode from an append-only predictions file (a torn last line is ignored)."""
    if not path.exists():
        return {}
    out: dict[str, Episode] = {}
    for _, rec in iter_jsonl(path, tolerate_torn_tail=True):
        ep = Episode.from_dict(rec)
        out.setdefault(ep.task_id, ep)
    return out


def answer_tasks(
    model: Any,
    tokenizer: Any,
    tasks: Sequence[Task],
    scorer: Any,
    options: EvalOptions,
    phase: str,
    done: dict[str, Episode],
    sink: Callable[[Episode], None] | None = None,
) -> dict[str, Episode]:
    """Greedy answers for the tasks not in `done`, scored and handed to `sink` chunk by chunk."""
    from kgreason.families import family_of_tasks
    from kgreason.sampling import SamplingParams, get_sampler
    from kgreason.tasks.format import chat_messages

    todo = [t for t in tasks if t.id not in done]
    if not todo:
        return done
    sampler = get_sampler(model, tokenizer, backend=options.backend, batch_size=options.batch_size)
    params = SamplingParams(k=1, temperature=0.0, max_new_tokens=options.max_new_tokens, seed=options.seed,
                            family=family_of_tasks(todo))
    chunk = max(1, options.batch_size)  # appended after each chunk: resume loses at most one chunk
    bar = None
    if options.progress:
        from kgreason.console import progress

        bar = progress(len(todo), _stage(phase), unit="item")
    try:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            completions = sampler.generate([(t.id, chat_messages(t)) for t in part], params, progress=False)
            by_id = {t.id: t for t in part}
            for c in completions:
                if c.task_id in done:
                    continue
                task = by_id[c.task_id]
                # the first answer line decides (a no-op cut when the sampler stopped there)
                ep = scored_episode(scorer, task, c.text, run=options.run, phase=phase, step=options.step,
                                    sample_index=c.sample_index)
                done[task.id] = ep
                if sink is not None:
                    sink(ep)
            if bar is not None:
                bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    return done


def _stage(phase: str) -> str:
    """How the console names an evaluation: "sft_eval" or "eval" as they are, "eval sft" for a bare phase."""
    return phase if "eval" in phase.split("_") else f"eval {phase}"


def _answer_with_log(model: Any, tokenizer: Any, tasks: Sequence[Task], scorer: Any, options: EvalOptions,
                     phase: str, path: Path | None) -> dict[str, Episode]:
    done = {k: v for k, v in read_episodes(path).items()} if path else {}
    already = sum(t.id in done for t in tasks)
    if already:
        print(f"{_stage(phase)}: {already} of {len(tasks)} answers already written to {path}, continuing", flush=True)
    if path is None:
        return answer_tasks(model, tokenizer, tasks, scorer, options, phase, done)
    with JsonlAppender(path) as log:
        return answer_tasks(model, tokenizer, tasks, scorer, options, phase, done,
                            sink=lambda ep: log.write(ep.to_dict()))


@contextlib.contextmanager
def merged_for_sampling(model: Any) -> Iterator[None]:
    """Fold a LoRA adapter into the weights while sampling, then restore them bit for bit.

    An unmerged PEFT model runs every adapted layer twice (base + low-rank branch): sampling
    measured 5x slower on tiny:random. Merging in place is fast, but unmerging leaves rounding
    error in bf16 weights, and drift later compares against those base weights; so the base
    weights are copied first and put back exactly.
    """
    from kgreason.models.lora import has_adapter

    if not has_adapter(model) or not hasattr(model, "merge_adapter"):
        yield
        return
    import torch

    saved = {n: p.detach().clone() for n, p in model.named_parameters() if ".base_layer." in n}
    model.merge_adapter()
    try:
        yield
    finally:
        model.unmerge_adapter()
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, value in saved.items():
                params[name].copy_(value)


def reference_rows(kg: KnowledgeGraph, tasks: Sequence[Task], seed: int, n_resamples: int,
                   train_tasks: Sequence[Task] | None = None) -> dict[str, dict]:
    """Accuracy of every registered shortcut baseline and of the KG oracle on the same items
    (`train_tasks`, the training files, enable the answer-prior baselines)."""
    from kgreason.tasks import audit

    def by_id(preds: Sequence[str | None]) -> dict[str, str | None]:
        return {t.id: p for t, p in zip(tasks, preds, strict=True)}

    rows: dict[str, dict] = {}
    rows["KG oracle"] = letter_accuracy(tasks, by_id(audit.oracle_predictions(kg, list(tasks))), seed, n_resamples)
    for name, preds in audit.shortcut_predictions(kg, list(tasks), train_tasks).items():
        rows[f"shortcut: {name}"] = letter_accuracy(tasks, by_id(preds), seed, n_resamples)
    return rows


def _drift(model: Any, tokenizer: Any, tasks: Sequence[Task], episodes: dict[str, Episode],
           base_model: Any, options: EvalOptions, out: Path | None = None) -> tuple[dict | None, str | None]:
    """The drift summary (metrics.json's "drift"), or None and why not; with `out`, each item's row
    goes to out/drift.jsonl (written whole, then renamed)."""
    from kgreason.evaluate.drift import mean_token_kl
    from kgreason.models.lora import has_adapter
    from kgreason.tasks.format import chat_messages

    if not has_adapter(model) and base_model is None:
        return None, "not measured: the evaluated model is the base model (no adapter), so its drift is 0 by definition."
    answered = [t for t in tasks if t.id in episodes]
    pairs = [(chat_messages(t), episodes[t.id].completion) for t in answered]
    result = mean_token_kl(model, tokenizer, pairs, base_model=base_model,
                           batch_size=max(1, options.batch_size // 2), progress=options.progress)
    if result is not None and out is not None:
        from kgreason.io import atomic_write_jsonl

        atomic_write_jsonl(out / DRIFT_ITEMS, [{"task_id": t.id, **asdict(row)}
                                               for t, row in zip(answered, result.per_item, strict=True) if row])
    return (result.to_dict() if result else None), None


def read_drift_items(eval_dir: Path) -> dict[str, dict]:
    """task id -> its drift row (tokens, kl, entropy, base_entropy); empty when not measured."""
    path = Path(eval_dir) / DRIFT_ITEMS
    return {rec["task_id"]: rec for _, rec in iter_jsonl(path)} if path.is_file() else {}


def add_drift(eval_dir: str | Path, model: Any, tokenizer: Any, tasks: Sequence[Task], options: EvalOptions,
              base_model: Any = None) -> dict | None:
    """Measure drift and entropy for an evaluation that ran without them, from its own greedy answers
    (predictions.jsonl): writes drift.jsonl and adds "drift" to metrics.json. Returns the summary."""
    out = Path(eval_dir)
    episodes = read_episodes(out / PREDICTIONS)
    items = [t for t in tasks if t.id in episodes]
    drift, note = _drift(model, tokenizer, items, episodes, base_model, options, out)
    metrics = read_json(out / METRICS)
    metrics["drift"] = drift
    if note:
        metrics["drift_note"] = note
    metrics["drift_measured_after"] = True  # by add_drift, on the saved answers (options say how the eval ran)
    atomic_write_json(out / METRICS, metrics)
    from kgreason.evaluate.report import write_eval_report

    write_eval_report(out, metrics, plots=False)  # the plots show accuracy, which did not change
    return drift


def _log_chatter_near(out: Path) -> None:
    """Library chatter to the run's log.txt when `out` is a run's eval/<phase>/ folder (as the
    training phases do), else to <out>/log.txt (kgreason.console)."""
    from kgreason.console import LOG_NAME, log_to

    run_root = out.parent.parent
    in_run = out.parent.name == "eval" and (run_root / "config.json").is_file()
    log_to((run_root if in_run else out) / LOG_NAME)


def evaluate_model(
    model: Any,
    tokenizer: Any,
    tasks: Sequence[Task],
    kg: KnowledgeGraph,
    out_dir: str | Path | None = None,
    options: EvalOptions | None = None,
    *,
    base_model: Any = None,
    meta: dict | None = None,
    **overrides: Any,
) -> dict:
    """Evaluate `model` (a PEFT model is compared with its own disabled-adapter base for drift).

    Returns the metrics dict that is also written to `out_dir/metrics.json` (with predictions.jsonl,
    predictions_shuffled.jsonl, report.md and PNG plots) when `out_dir` is given. Keyword
    `overrides` set EvalOptions fields, e.g. `evaluate_model(..., phase="sft", drift=False)`.
    """
    from kgreason.families import DEFAULT_FAMILY, family_of_tasks, get_family
    from kgreason.families.base import mean_chance
    from kgreason.reward import Scorer

    opts = replace(options or EvalOptions(), **overrides)
    started = time.time()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _log_chatter_near(out)
        # a drift.jsonl left by an earlier evaluation would describe other answers (or none)
        (out / DRIFT_ITEMS).unlink(missing_ok=True)
    items = select_items(tasks, opts.max_items, opts.seed)
    scorer = Scorer(kg, preset=opts.reward_preset)
    family = get_family(family_of_tasks(items))
    shuffle_note = None
    if opts.shuffle and not family.offers_options:
        # The shuffle test moves options between letters; a family without options has none to move.
        opts = replace(opts, shuffle=False)
        shuffle_note = f"not measured: {family.name} items offer no options to shuffle"

    with merged_for_sampling(model):
        episodes = _answer_with_log(model, tokenizer, items, scorer, opts, opts.phase,
                                    out / PREDICTIONS if out else None)
        shuffled = shuffle_tasks(items, seed=opts.seed) if opts.shuffle else []
        shuf_eps = _answer_with_log(model, tokenizer, shuffled, scorer, opts, f"{opts.phase}_shuffled",
                                    out / SHUFFLED_PREDICTIONS if out else None) if opts.shuffle else {}
    scored = join_episodes(items, episodes.values())
    metrics: dict[str, Any] = {
        "run": opts.run,
        "phase": opts.phase,
        "model": getattr(model, "kgreason_ref", None) or getattr(getattr(model, "config", None), "_name_or_path", None),
        "adapter": getattr(model, "kgreason_adapter", None),
        "n_tasks": len(tasks),
        "decoding": f"greedy, max {opts.max_new_tokens} new tokens",
        "reward_preset": opts.reward_preset,
        "options": asdict(opts),
        **(meta or {}),
        **summarize(scored, opts.seed, opts.n_resamples),
        # shares (every value 0 or 1) get Wilson intervals, the rest the percentile bootstrap
        # (evaluate/bootstrap.py); "shares" says so, for readers of files from before and after
        "bootstrap": {"method": "percentile", "shares": "wilson", "n_resamples": opts.n_resamples,
                      "confidence": 0.95, "seed": opts.seed},
        # task id -> hop count, so `eval --compare` can pair runs by item and hop without the task file
        "item_hops": {t.id: int(t.hop_len) for t in items},
    }
    if opts.shuffle:
        metrics["shuffle"] = shuffle_report(items, episodes, shuffled, shuf_eps, opts.seed, opts.n_resamples)
    elif shuffle_note:
        metrics["shuffle_note"] = shuffle_note
    if family.name != DEFAULT_FAMILY:
        metrics["family"] = family.name
        metrics["chance"] = mean_chance(items, len(kg.entities))
    if opts.references:
        metrics["references"] = reference_rows(kg, items, opts.seed, opts.n_resamples, opts.train_tasks)
    if opts.drift:
        drift, note = _drift(model, tokenizer, items, episodes, base_model, opts, out)
        metrics["drift"] = drift
        if note:
            metrics["drift_note"] = note
    metrics["wall_seconds"] = round(time.time() - started, 2)
    if out is not None:
        from kgreason.evaluate.report import write_eval_report

        atomic_write_json(out / METRICS, metrics)
        write_eval_report(out, metrics, plots=opts.plots)
    return metrics
