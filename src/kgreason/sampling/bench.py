"""`kgreason bench sampler`: our sampler against the hobby project's loop, same model and prompts, one run.

(a) naive: one `model.generate` call per sample, fp32, as the hobby project samples for RSFT.
(b) ours: `get_sampler(...).generate` at its defaults (bf16 where supported, batched, shared prefill).
Both use the same prompts, k, temperature and max_new_tokens. The comparable figure is generated
tokens per second; ours is also shown as a share of the compute limit: this machine's measured bf16
matmul throughput divided by 2 x parameters FLOPs per generated token.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def bench_items(n_prompts: int, tasks: str | None) -> list[tuple[str, list[dict]]]:
    """Eval-style prompts: from a task file, else generated from the built-in KG."""
    from kgreason.tasks.format import chat_messages

    if tasks:
        from kgreason.tasks.generate import load_tasks

        chosen = load_tasks(Path(tasks))[:n_prompts]
    else:
        from kgreason.kg.builtin import build_devops_kg
        from kgreason.tasks.generate import generate_tasks

        splits = generate_tasks(build_devops_kg(seed=0))
        pool = splits.get("eval") or [t for ts in splits.values() for t in ts]
        chosen = pool[:n_prompts]
    return [(t.id, chat_messages(t)) for t in chosen]


def matmul_gflops(dtype: torch.dtype = torch.bfloat16, size: int = 1024, seconds: float = 1.0) -> float:
    """Measured dense matmul throughput (GFLOP/s) on this machine, all threads torch uses."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start) / 1e9


def naive_loop(model, tokenizer, items, k: int, temperature: float, max_new_tokens: int, seed: int) -> tuple[int, int, float]:
    """The hobby project's loop: one generate() per sample. Returns (samples, new tokens, seconds)."""
    torch.manual_seed(seed)
    samples = tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for _, messages in items:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"]
            for _ in range(k):
                out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=temperature > 0,
                                     temperature=temperature if temperature > 0 else None,
                                     max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
                new = out[0, ids.shape[1]:].tolist()
                if tokenizer.eos_token_id in new:
                    new = new[: new.index(tokenizer.eos_token_id) + 1]
                tokens += len(new)
                samples += 1
    return samples, tokens, time.perf_counter() - start


def cmd_bench_sampler(args: argparse.Namespace) -> int:
    from kgreason.models import load_model
    from kgreason.models.dtype import dtype_name
    from kgreason.sampling import SamplingParams, get_sampler

    items = bench_items(args.n_prompts, args.tasks)
    naive_items = items[: args.naive_prompts]
    print(f"model {args.model}; {len(items)} prompts x k={args.k}, temperature {args.temperature}, "
          f"max_new_tokens {args.max_new_tokens}; torch threads {torch.get_num_threads()}")

    gflops = matmul_gflops(torch.bfloat16)
    gflops32 = matmul_gflops(torch.float32)

    naive_model, tok = load_model(args.model, dtype="fp32")
    n_params = sum(p.numel() for p in naive_model.parameters())
    ns, nt, nsec = naive_loop(naive_model, tok, naive_items, args.k, args.temperature, args.max_new_tokens, args.seed)
    del naive_model
    naive_tps = nt / nsec
    print(f"(a) naive loop, fp32, one generate() per sample: {ns} samples, {nt} tokens in {nsec:.1f}s "
          f"= {naive_tps:.1f} tokens/s, {ns / nsec:.2f} samples/s")

    model, tok = load_model(args.model, dtype=args.dtype)
    sampler = get_sampler(model, tok, backend="hf", batch_size=args.batch_size)
    params = SamplingParams(k=args.k, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed)
    sampler.generate(items[:1], SamplingParams(k=1, temperature=0, max_new_tokens=4), progress=False)  # warm-up
    start = time.perf_counter()
    done = sampler.generate(items, params, progress=not args.quiet)
    osec = time.perf_counter() - start
    ot = sum(c.completion_tokens for c in done)
    ours_tps = ot / osec
    finishes = {r: sum(c.finish_reason == r for c in done) for r in ("answer", "eos", "length")}
    print(f"(b) kgreason hf sampler, {dtype_name(model.dtype)}, batch {sampler.batch_size} rows: {len(done)} samples, "
          f"{ot} tokens in {osec:.1f}s = {ours_tps:.1f} tokens/s, {len(done) / osec:.2f} samples/s; finish {finishes}")

    limit_tps = gflops * 1e9 / (2 * n_params)
    print(f"speed-up (b)/(a): {ours_tps / naive_tps:.1f}x tokens/s, {(len(done) / osec) / (ns / nsec):.1f}x samples/s")
    print(f"compute limit: bf16 matmul {gflops:.0f} GFLOP/s (fp32 {gflops32:.0f}), {n_params / 1e6:.1f}M parameters "
          f"-> {limit_tps:.0f} tokens/s; ours = {100 * ours_tps / limit_tps:.0f}% of it")
    return 0
