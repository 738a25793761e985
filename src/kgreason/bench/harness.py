"""What every `kgreason bench` shares: the measured limit (sustained matmul FLOP/s at the model's
shapes), the kernel time split of a profiled run and the bounds it gives, one measurement per child
process (its own peak RSS), and the model's parameter counts (FLOPs per token).

The benchmarks' modules (train, sampler, grpo, eval_batch) state their own methods in their docstrings.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULT_MARK = "KGREASON_BENCH_RESULT "


def kernel_times(profiler: Any) -> dict:
    """Seconds of the profiled steps inside matmul kernels, inside attention kernels, and inside any
    recorded event at all (self time, so nested calls are not counted twice; events such as the
    optimizer step or autograd's per-node records carry some Python in their self time). Why: tokens
    / matmul seconds is how fast training could go if everything but the matmuls, run as this CPU
    runs them inside the step, cost nothing: a bound on share_of_limit. The profiler adds a little
    time to every operator, the many small LoRA matmuls included, so the bound errs low by that."""
    matmul = attention = ops = 0.0
    for event in profiler.key_averages():
        if event.key.startswith("ProfilerStep"):  # the schedule's step marker: its self time is Python
            continue
        seconds = event.self_cpu_time_total / 1e6
        ops += seconds
        name = event.key
        if name in MATMUL_OPS or name.startswith("mkldnn::_linear"):
            matmul += seconds
        elif "scaled_dot_product" in name or "flash_attention" in name:
            attention += seconds
    return {"matmul_s": round(matmul, 3), "attention_s": round(attention, 3), "ops_s": round(ops, 3)}


MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_addmm_activation"}


def kernel_bounds(profiles: list[dict], flops_per_token: float, limit: float, digits: int = 4) -> dict:
    """From kernel profiles ({tokens, wall_s} + kernel_times): share_of_limit if only the matmuls
    took time, the same with the attention kernels, and the split of the wall time; over all given."""
    profiles = [k for k in profiles if k.get("matmul_s")]
    if not profiles:
        return {}
    tokens, wall = sum(k["tokens"] for k in profiles), sum(k["wall_s"] for k in profiles)
    matmul, attention = sum(k["matmul_s"] for k in profiles), sum(k["attention_s"] for k in profiles)
    other = max(0.0, sum(k["ops_s"] for k in profiles) - matmul - attention)
    return {"matmul_bound_share": round(tokens / matmul * flops_per_token / limit, digits),
            "kernel_bound_share": round(tokens / (matmul + attention) * flops_per_token / limit, digits),
            "step_time_split": {"matmul": round(matmul / wall, 3), "attention": round(attention / wall, 3),
                                "other_ops": round(other / wall, 3)}}


def matmul_flops(dtype: Any, m: int, k: int, n: int, windows: int = 3, window_s: float = 0.4,
                 warmup_s: float = 0.3) -> float:
    """Sustained FLOP/s of an [m x k] @ [k x n] matmul: the median of `windows` timed windows."""
    import torch

    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    start = time.perf_counter()
    while time.perf_counter() - start < warmup_s:
        a @ b
    rates = []
    for _ in range(windows):
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < window_s:
            a @ b
            reps += 1
        rates.append(2 * m * k * n * reps / (time.perf_counter() - start))
    return statistics.median(rates)


def probe_shapes(hidden: int, intermediate: int, vocab: int, rows: int) -> list[tuple[str, int, int, int]]:
    """(name, m, k, n): the model's projections at `rows` tokens, the LM head, a large square."""
    return [
        (f"{rows}x{hidden}@{hidden}x{intermediate} (gate/up)", rows, hidden, intermediate),
        (f"{rows}x{intermediate}@{intermediate}x{hidden} (down)", rows, intermediate, hidden),
        (f"{rows}x{hidden}@{hidden}x{hidden} (q/o)", rows, hidden, hidden),
        (f"256x{hidden}@{hidden}x{vocab} (lm head, completion rows)", 256, hidden, vocab),
        ("2048x2048@2048x2048 (square)", 2048, 2048, 2048),
    ]


def probe_limit(dtypes: list[str], shapes: list[tuple[str, int, int, int]], window_s: float = 0.4) -> dict:
    """Every probe's GFLOP/s per dtype, and the best one per dtype (the limit)."""
    from kgreason.models.dtype import resolve_dtype

    results = []
    for name in dtypes:
        for label, m, k, n in shapes:
            rate = matmul_flops(resolve_dtype(name), m, k, n, window_s=window_s, warmup_s=0.75 * window_s)
            results.append({"dtype": name, "shape": label, "gflops": round(rate / 1e9, 1)})
    best = {name: max((r for r in results if r["dtype"] == name), key=lambda r: r["gflops"]) for name in dtypes}
    return {"results": results, "best": best,
            "method": f"median of 3 x {window_s} s windows after a warm-up, per shape; limit = best shape"}


def run_child(spec: dict, workdir: Path, module: str, label: str | None = None) -> dict:
    """One timed measurement in a fresh Python process (its own peak RSS, no allocator leftovers).

    `module` runs as `python -m module SPEC.json` and prints its result after RESULT_MARK; the
    sampler bench (kgreason.bench.sampler) runs its rows through here too.
    """
    label = label or f"{spec['mode']}-{spec['path']}"
    spec_file = workdir / f"spec-{label}.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    from kgreason.memory import allocator_environment

    # The fast path runs as `kgreason run` runs its stages (jemalloc where installed); the reference
    # path as stock TRL does, on the system allocator.
    allocator = spec.get("allocator", "auto" if spec.get("path") != "reference" else "system")
    env = {**os.environ, "TQDM_DISABLE": "1", **allocator_environment(allocator)}
    proc = subprocess.run([sys.executable, "-m", module, str(spec_file)], capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    tail = (proc.stdout + proc.stderr)[-3000:]
    raise RuntimeError(f"bench child ({label}) failed with exit code {proc.returncode}:\n{tail}")


def count_params(model_ref: str, lora_r: int) -> dict:
    """Matmul parameters of the base (lm head included), of its LM head, and of LoRA; model shape."""
    from peft import get_peft_model

    from kgreason.config import LoraOptions
    from kgreason.models import load_model

    model, _ = load_model(model_ref, dtype="fp32")
    embed = model.get_input_embeddings().weight.numel()
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    total = sum(p.numel() for p in model.parameters())
    base = total if tied else total - embed  # a tied embedding is still the lm head's matmul
    head = model.get_output_embeddings().weight.numel()
    cfg = model.config
    peft = get_peft_model(model, LoraOptions(r=lora_r).peft_config())
    lora = sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n)
    return {"n_base": base, "n_head": head, "n_lora": lora, "hidden": cfg.hidden_size,
            "intermediate": cfg.intermediate_size, "vocab": cfg.vocab_size}
