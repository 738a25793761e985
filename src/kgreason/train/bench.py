"""`kgreason bench train`: SFT training throughput, fp32 versus the chosen dtype, and as a share of
this machine's matmul throughput measured in the same run.

FLOPs per trained token (stated, not measured): with LoRA the frozen base still runs forward (2N)
and backward through the activations (2N) but computes no weight gradients, so
    LoRA:  4 x N_base + 6 x N_lora    FLOPs per token (N_base: parameters in matmuls, lm head included)
    full:  6 x N                      (the usual figure, printed for comparison)
Attention score FLOPs are left out (sequences here are a few hundred tokens). "Tokens" are every
non-padding token the model processes (prompt and completion); the loss covers the completion only.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class StepClock(TrainerCallback):
    """Wall time and cumulative non-padding tokens after every optimizer step (from the Trainer logs)."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs and "num_tokens" in logs:
            self.marks.append((time.perf_counter(), float(logs["num_tokens"])))


def matmul_flops(dtype: Any, n: int = 1024, seconds: float = 1.5) -> float:
    """Sustained FLOP/s of an n x n matmul in `dtype` on this machine (all threads torch uses)."""
    import torch

    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start)


def count_params(model_ref: str, lora_r: int) -> tuple[int, int]:
    """(matmul parameters of the base, LoRA parameters) for the training defaults."""
    from peft import get_peft_model

    from kgreason.models import load_model
    from kgreason.train.sft import LoraOptions

    model, _ = load_model(model_ref, dtype="fp32")
    embed = model.get_input_embeddings().weight.numel()
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    total = sum(p.numel() for p in model.parameters())
    base = total if tied else total - embed  # a tied embedding is still the lm head's matmul
    peft = get_peft_model(model, LoraOptions(r=lora_r, alpha=2 * lora_r).peft_config())
    lora = sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n)
    return base, lora


def bench_examples(batch_size: int, steps: int, seed: int) -> list[dict]:
    """SFT examples at the defaults (facts + easy questions, full traces) from the built-in KG."""
    import random

    from kgreason.kg.builtin import build_devops_kg
    from kgreason.tasks.generate import TaskConfig, fact_records, generate_tasks
    from kgreason.train.sft import fact_examples, question_examples

    kg = build_devops_kg(seed=seed)
    tasks = generate_tasks(kg, TaskConfig(seed=seed))["train_easy"]
    examples = question_examples(tasks) + fact_examples(fact_records(kg), Path("<built-in facts>"))
    random.Random(seed).shuffle(examples)
    return examples[: batch_size * (steps + 1)]


def time_training(model_ref: str, examples: list[dict], dtype: str, steps: int, batch_size: int) -> dict:
    from kgreason.train.sft import TrainOptions, train_lora

    clock = StepClock()
    options = TrainOptions(max_steps=steps + 1, batch_size=batch_size, dtype=dtype, logging_steps=1,
                           save_steps=10_000, warmup_ratio=0.0)
    with tempfile.TemporaryDirectory(prefix="kgreason-bench-train-") as tmp:
        train_lora(model_ref, examples, Path(tmp) / "adapter", options, callbacks=[clock])
    (t0, n0), (t1, n1) = clock.marks[0], clock.marks[-1]  # the first step (warm-up) is not timed
    return {"dtype": dtype, "tokens": n1 - n0, "seconds": t1 - t0, "tokens_per_s": (n1 - n0) / (t1 - t0)}


def bench_train(model_ref: str = "bundled:smollm2-135m", steps: int = 4, batch_size: int = 8, dtype: str = "auto",
                seed: int = 0) -> dict:
    import torch

    from kgreason.models.dtype import default_device, dtype_name, resolve_dtype

    chosen = dtype_name(resolve_dtype(dtype, default_device()))
    base, lora = count_params(model_ref, lora_r=16)
    per_token = 4 * base + 6 * lora
    examples = bench_examples(batch_size, steps, seed)
    print(f"kgreason bench train: {model_ref}, LoRA r=16, batch {batch_size}, {steps} timed steps "
          f"(+1 warm-up) per precision, torch threads {torch.get_num_threads()}")
    print(f"parameters in matmuls N_base = {base / 1e6:.1f}M, LoRA N_lora = {lora / 1e6:.2f}M; "
          f"FLOPs per token: LoRA 4*N_base + 6*N_lora = {per_token / 1e9:.3f} GFLOP "
          f"(full fine-tuning would be 6*N = {6 * base / 1e9:.3f} GFLOP)")
    rows = []
    for name in dict.fromkeys(["fp32", chosen]):
        peak = matmul_flops(resolve_dtype(name))
        result = time_training(model_ref, examples, name, steps, batch_size)
        achieved = result["tokens_per_s"] * per_token
        rows.append({**result, "matmul_flops": peak, "achieved_flops": achieved, "share": achieved / peak})
    fp32 = rows[0]["tokens_per_s"]
    print(f"{'dtype':6} {'tokens/s':>9} {'vs fp32':>8} {'achieved GFLOP/s':>17} {'matmul GFLOP/s':>15} {'share':>6}")
    for r in rows:
        print(f"{r['dtype']:6} {r['tokens_per_s']:9.1f} {r['tokens_per_s'] / fp32:7.2f}x "
              f"{r['achieved_flops'] / 1e9:17.1f} {r['matmul_flops'] / 1e9:15.1f} {100 * r['share']:5.1f}%")
    print("tokens: non-padding prompt+completion tokens processed; share = tokens/s x FLOPs per token / "
          "measured n x n matmul FLOP/s in the same dtype (measured just before each timing).")
    return {"rows": rows, "flops_per_token": per_token, "n_base": base, "n_lora": lora}
