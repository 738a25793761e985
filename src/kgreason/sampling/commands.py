"""Handler for `kgreason sample`.

`sample` is append-only and resumable: each completion is appended (and flushed) as soon as it and
the lower-numbered samples of its prompt are done, so an interrupted run keeps everything it
finished, and a rerun skips every prompt that already has its k samples and completes the others.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from kgreason.families import family_of_tasks
from kgreason.io import InputError, JsonlAppender, iter_jsonl
from kgreason.records import Completion


# ---- sample ----------------------------------------------------------------------------------
def _load_items(path: Path, limit: int | None) -> tuple[list[tuple[str, list[dict]]], str]:
    from kgreason.tasks.format import chat_messages
    from kgreason.tasks.generate import load_tasks

    tasks = load_tasks(path)
    if limit is not None:
        tasks = tasks[:limit]
    seen: set[str] = set()
    for t in tasks:
        if t.id in seen:
            raise InputError(f"{path}: duplicate task id {t.id!r}; resuming needs unique ids")
        seen.add(t.id)
    return [(t.id, chat_messages(t)) for t in tasks], family_of_tasks(tasks)


def finished_counts(out: Path, model_ref: str, temperature: float) -> Counter[str]:
    """Completions already in `out` per task id; refuses a file written with other settings."""
    counts: Counter[str] = Counter()
    if not out.exists():
        return counts
    for line, rec in iter_jsonl(out, tolerate_torn_tail=True):
        if rec.get("model") != model_ref or float(rec.get("temperature", -1)) != float(temperature):
            raise InputError(
                f"{out}:{line}: existing completions come from model {rec.get('model')!r} at temperature "
                f"{rec.get('temperature')}, not {model_ref!r} at {temperature}; choose another --out to start fresh"
            )
        counts[str(rec["task_id"])] += 1
    return counts


def run_sample(model_ref: str | None, tasks: Path, out: Path, *, k: int = 8, temperature: float = 0.7,
               top_p: float = 1.0, max_new_tokens: int = 256, seed: int = 0, adapter: str | None = None,
               backend: str = "auto", dtype: str | None = None, batch_size: int | None = None,
               chunk: int | None = None, limit: int | None = None, progress: bool = True) -> tuple[int, int]:
    """Sample k completions per task into `out`, skipping tasks already done. Returns (written, skipped)."""
    from kgreason.models import load_model
    from kgreason.sampling import SamplingParams, get_sampler

    items, family = _load_items(tasks, limit)
    params = SamplingParams(k=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                            family=family)
    model, tokenizer = load_model(model_ref, adapter=adapter, dtype=dtype, merge=True)
    counts = finished_counts(out, model.kgreason_ref, temperature)
    todo = [it for it in items if counts[it[0]] < k]
    skipped = len(items) - len(todo)
    already = sum(min(counts[task_id], k) for task_id, _ in items)
    if already:
        print(f"sample: {already} of {len(items) * k} samples already written to {out}, continuing", file=sys.stderr)
    sampler = get_sampler(model, tokenizer, backend=backend, batch_size=batch_size)
    written = 0
    with JsonlAppender(out) as log:

        def write(c: Completion) -> None:
            # A prompt cut off mid-write earlier keeps the samples it has; only missing ones are added.
            # The sampler hands a prompt's samples on in index order, so "missing" is "index >= count".
            nonlocal written
            if c.sample_index >= counts[c.task_id]:
                log.write(c.to_dict())
                written += 1

        # One generate call keeps the batch full across all prompts (and one progress bar); `chunk`
        # only splits it for tests.
        step = chunk or max(1, len(todo))
        for lo in range(0, len(todo), step):
            sampler.generate(todo[lo : lo + step], params, progress=progress, on_completion=write)
    return written, skipped


def cmd_sample(args: argparse.Namespace) -> int:
    if args.model is None and args.adapter is None:
        raise InputError("give --model (or --adapter, whose folder names its base model)")
    start = time.perf_counter()
    written, skipped = run_sample(
        args.model, Path(args.tasks), Path(args.out), k=args.k, temperature=args.temperature, top_p=args.top_p,
        max_new_tokens=args.max_new_tokens, seed=args.seed, adapter=args.adapter, backend=args.backend,
        dtype=args.dtype, batch_size=args.batch_size, limit=args.limit, progress=not args.quiet,
    )
    print(f"wrote {written} completions to {args.out} ({skipped} prompts already done) "
          f"in {time.perf_counter() - start:.1f}s")
    return 0
