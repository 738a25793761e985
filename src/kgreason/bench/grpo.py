"""`kgreason bench grpo`: seconds per GRPO step, kgreason's generation and shared-prompt update
against TRL's stock path.

All rows run TRL's GRPOTrainer on the same hard (4-5 hop) open-book questions of the built-in
graph, with the same model, group size, batch, token cap, temperature, seed and KG reward; they
differ only in who samples the groups: `trl` (transformers' `generate` on the training model,
TRL's default without vLLM) or `kgreason` (kgreason's batched sampler through TRL's
`rollout_func`, `--generation kgreason`); the third row adds kgreason's update, which runs each
group's prompt once (`--share-prompt`, kgreason.train.grpo_prefix). Each row runs in a process of its own (its own peak RSS)
and times `steps` optimizer steps after one untimed warm-up step, split into generation (TRL's
`_generate`, which calls the rollout), scoring (the KG reward function) and the rest (the
log-probability passes, backward and optimizer step). Ratios are within one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# row name -> (who generates, shared-prompt update)
ROWS = {"trl": ("trl", False), "kgreason": ("kgreason", False), "kgreason-shared-prompt": ("kgreason", True)}
GENERATIONS = tuple(ROWS)


def bench_data(folder: Path, seed: int = 0, questions: int = 32) -> None:
    """kg.json and the task files of a small open-book data folder (hard pool of `questions`)."""
    from dataclasses import replace

    from kgreason.kg.builtin import build_devops_kg
    from kgreason.kg.kgjson import save_kg
    from kgreason.tasks.generate import DEFAULT_SPLITS, TaskConfig, generate, write_dataset

    kg = build_devops_kg(seed=seed)
    sizes = {"train_hard": questions}
    splits = tuple(replace(s, size=sizes.get(s.name, 8)) for s in DEFAULT_SPLITS)
    write_dataset(generate(kg, TaskConfig(seed=seed, mode="open", splits=splits)), folder)
    save_kg(kg, folder / "kg.json")


class _Clock:
    """Wall-clock marks at each optimizer step's end, and seconds spent generating and scoring."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.generation: list[tuple[float, float]] = []  # (end time, seconds)
        self.scoring: list[tuple[float, float]] = []
        self.completion_tokens: list[tuple[float, int]] = []


def time_grpo(spec: dict) -> dict:
    """One row: GRPO steps with timers around generation and scoring (a child process's work, or
    this process's with `bench_grpo(isolate=False)`; the patch on TRL is undone afterwards)."""
    from trl import GRPOTrainer

    clock = _Clock()
    original = GRPOTrainer._generate

    def timed_generate(self: Any, prompts: list) -> Any:
        start = time.perf_counter()
        out = original(self, prompts)
        end = time.perf_counter()
        clock.generation.append((end, end - start))
        clock.completion_tokens.append((end, sum(len(ids) for ids in out[1])))
        return out

    GRPOTrainer._generate = timed_generate  # type: ignore[method-assign]
    try:
        return _timed_steps(spec, clock)
    finally:
        GRPOTrainer._generate = original  # type: ignore[method-assign]


def _timed_steps(spec: dict, clock: _Clock) -> dict:
    from transformers import TrainerCallback

    from kgreason.config import GRPOOptions, TrainOptions
    from kgreason.kg.kgjson import load_kg
    from kgreason.reward.score import Scorer
    from kgreason.runs.folder import Run, peak_rss_mb
    from kgreason.train.grpo import run_grpo

    class TimedScorer:
        def __init__(self, scorer: Any) -> None:
            self.scorer = scorer

        def score(self, task: Any, text: str) -> Any:
            start = time.perf_counter()
            out = self.scorer.score(task, text)
            end = time.perf_counter()
            clock.scoring.append((end, end - start))
            return out

    class StepMarks(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.marks.append(time.perf_counter())

    data = Path(spec["data"])
    kg = load_kg(data / "kg.json")
    options = GRPOOptions(distribution="hard", questions=0, num_generations=spec["num_generations"],
                          temperature=spec["temperature"], max_completion_length=spec["max_new_tokens"],
                          beta=spec["beta"], generation=spec["generation"], use_vllm="no",
                          share_prompt=spec.get("share_prompt", False),
                          train=TrainOptions(max_steps=spec["steps"] + 1, batch_size=spec["batch_size"],
                                             grad_accum=spec["grad_accum"], learning_rate=1e-5,
                                             dtype=spec["dtype"], logging_steps=1, save_steps=10_000,
                                             warmup_ratio=0.0, seed=spec["seed"]))
    with tempfile.TemporaryDirectory(prefix="kgreason-bench-grpo-") as tmp:
        run = Run.create_or_resume(Path(tmp) / "run", {"model_ref": spec["model"]})
        with run:
            run_grpo(run, spec["model"], data, options, kg=kg, callbacks=[StepMarks()],
                     scorer=TimedScorer(Scorer(kg, preset="kgreason")))
    start, end = clock.marks[0], clock.marks[-1]  # step 1 is the warm-up

    def within(series: list) -> float:
        return sum(v for t, v in series if start < t <= end)

    seconds, steps = end - start, len(clock.marks) - 1
    generation, scoring = within(clock.generation), within(clock.scoring)
    from kgreason.memory import allocator_in_use

    return {"row": spec.get("row", spec["generation"]), "generation": spec["generation"],
            "share_prompt": spec.get("share_prompt", False), "steps": steps, "seconds": round(seconds, 3),
            "seconds_per_step": round(seconds / steps, 3),
            "generation_s_per_step": round(generation / steps, 3),
            "scoring_s_per_step": round(scoring / steps, 4),
            "update_s_per_step": round((seconds - generation - scoring) / steps, 3),
            "completion_tokens_per_step": within(clock.completion_tokens) / steps,
            "generated_tokens_per_s": round(within(clock.completion_tokens) / generation, 1) if generation else None,
            "peak_rss_mb": peak_rss_mb(), "allocator": allocator_in_use()}


def _child(spec_path: str) -> None:
    from kgreason.bench.harness import RESULT_MARK

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    print(RESULT_MARK + json.dumps(time_grpo(spec)), flush=True)


def bench_grpo(model_ref: str = "bundled:smollm2-135m", steps: int = 2, batch_size: int = 8, grad_accum: int = 2,
               num_generations: int = 4, max_new_tokens: int = 128, temperature: float = 0.7, beta: float = 0.0,
               dtype: str = "auto", seed: int = 0, generations: tuple[str, ...] = GENERATIONS,
               quiet: bool = False, isolate: bool = True) -> dict:
    import torch

    from kgreason.bench.harness import run_child
    from kgreason.hardware import cpu_description
    from kgreason.models.dtype import default_device, dtype_name, resolve_dtype

    chosen = dtype_name(resolve_dtype(dtype, default_device()))
    cpu = cpu_description()
    if not quiet:
        print(f"CPU: {cpu['model']} ({cpu['matrix_isa']})")
        print(f"kgreason bench grpo: {model_ref}, {chosen}, "
              f"{batch_size * grad_accum // num_generations} prompts x {num_generations} completions per step, "
              f"{steps} timed steps (+1 warm-up) per row, torch threads {torch.get_num_threads()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kgreason-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        prompts_per_step = batch_size * grad_accum // num_generations
        bench_data(data, seed, questions=max(8, prompts_per_step * (steps + 1)))
        for row in generations:
            generation, share = ROWS[row]
            if not quiet:
                print(f"  timing {row} ...", flush=True)
            spec = {"model": model_ref, "data": str(data), "dtype": chosen, "steps": steps, "batch_size": batch_size,
                    "grad_accum": grad_accum, "num_generations": num_generations, "max_new_tokens": max_new_tokens,
                    "temperature": temperature, "beta": beta, "seed": seed, "generation": generation,
                    "share_prompt": share, "row": row, "path": "fast", "mode": "open"}
            rows.append(run_child(spec, Path(tmp), module="kgreason.bench.grpo", label=f"grpo-{row}") if isolate
                        else time_grpo(spec))
    by = {r["row"]: r for r in rows}
    result: dict[str, Any] = {"model": model_ref, "dtype": chosen, "cpu": cpu, "steps": steps,
                              "prompts_per_step": batch_size * grad_accum // num_generations,
                              "num_generations": num_generations, "max_new_tokens": max_new_tokens, "beta": beta,
                              "threads": torch.get_num_threads(), "isolated": isolate, "rows": rows}
    if "trl" in by and "kgreason" in by:
        result["speedup_step"] = round(by["trl"]["seconds_per_step"] / by["kgreason"]["seconds_per_step"], 2)
        result["speedup_generation"] = round(by["trl"]["generation_s_per_step"]
                                             / max(by["kgreason"]["generation_s_per_step"], 1e-9), 2)
    shared = by.get("kgreason-shared-prompt")
    if shared is not None and "kgreason" in by:
        result["speedup_update_shared_prompt"] = round(by["kgreason"]["update_s_per_step"]
                                                       / max(shared["update_s_per_step"], 1e-9), 2)
    if shared is not None and "trl" in by:
        result["speedup_step_shared_prompt"] = round(by["trl"]["seconds_per_step"] / shared["seconds_per_step"], 2)
    if not quiet:
        print_table(result)
    return result


def print_table(result: dict) -> None:
    print("\n| row | s/step | generation s | scoring s | update s | completion tokens/step | "
          "generated tokens/s | peak RSS MB |\n|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r.get('row', r['generation'])} | {r['seconds_per_step']:.1f} | {r['generation_s_per_step']:.1f} | "
              f"{r['scoring_s_per_step']:.3f} | {r['update_s_per_step']:.1f} | {r['completion_tokens_per_step']:.0f} | "
              f"{r['generated_tokens_per_s'] or 0:.0f} | {r['peak_rss_mb']:.0f} |")
    if "speedup_step" in result:
        print(f"\nkgreason's generation: {result['speedup_step']:.2f}x TRL's stock path per GRPO step, "
              f"{result['speedup_generation']:.2f}x in generation alone")
    if "speedup_update_shared_prompt" in result:
        print(f"shared-prompt update: {result['speedup_update_shared_prompt']:.2f}x the update of TRL's path"
              + (f"; with kgreason's generation {result['speedup_step_shared_prompt']:.2f}x TRL's stock step"
                 if "speedup_step_shared_prompt" in result else ""))


def add_bench_grpo_arguments(p: argparse.ArgumentParser) -> None:
    from kgreason import argtypes as at

    p.add_argument("--model", default="bundled:smollm2-135m", help="model reference")
    p.add_argument("--steps", type=at.positive_int, default=2, help="timed optimizer steps per row (+1 warm-up)")
    p.add_argument("--batch-size", type=at.positive_int, default=8, help="completions per micro-batch")
    p.add_argument("--grad-accum", type=at.positive_int, default=2,
                   help="micro-batches per step (prompts per step = batch size x grad accum / group size)")
    p.add_argument("--num-generations", type=at.at_least(2), default=4, help="group size")
    p.add_argument("--max-new-tokens", type=at.positive_int, default=128, help="completion cap")
    p.add_argument("--temperature", type=at.non_negative_float, default=0.7, help="sampling temperature")
    p.add_argument("--beta", type=at.non_negative_float, default=0.0, help="KL coefficient (> 0 adds a reference pass)")
    p.add_argument("--dtype", default="auto", choices=at.DTYPE_CHOICES, help="training dtype")
    p.add_argument("--seed", type=int, default=0, help="data and sampling seed")
    p.add_argument("--generation", "--rows", dest="generation", default=",".join(GENERATIONS),
                   help=f"comma list of rows: {', '.join(GENERATIONS)}")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.epilog = ("examples:\n  kgreason bench grpo --json\n"
                "  kgreason bench grpo --steps 4 --num-generations 8 --generation kgreason\n")


def cmd_bench_grpo(args: argparse.Namespace) -> int:
    from kgreason.io import InputError

    rows = tuple(g.strip() for g in args.generation.split(",") if g.strip())
    if not rows or set(rows) - set(GENERATIONS):
        raise InputError(f"--generation: expected a comma list of {', '.join(GENERATIONS)}, got {args.generation!r}")
    if (args.batch_size * args.grad_accum) % args.num_generations:
        raise InputError(f"--batch-size x --grad-accum ({args.batch_size * args.grad_accum}) must be a multiple of "
                         f"--num-generations ({args.num_generations})")
    result = bench_grpo(args.model, steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
                        num_generations=args.num_generations, max_new_tokens=args.max_new_tokens,
                        temperature=args.temperature, beta=args.beta, dtype=args.dtype, seed=args.seed,
                        generations=rows, quiet=args.json or args.quiet)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":  # a child of bench_grpo: python -m kgreason.bench.grpo SPEC.json
    _child(sys.argv[1])
