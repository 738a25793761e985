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
    rounds = max(1, min(args.naive_prompts, len(items)))
    print(f"model {args.model}; {len(items)} prompts x k={args.k}, temperature {args.temperature}, "
          f"max_new_tokens {args.max_new_tokens}; naive loop on {rounds} of the prompts; "
          f"torch threads {torch.get_num_threads()}")

    naive_model, tok = load_model(args.model, dtype="fp32")
    n_params = sum(p.numel() for p in naive_model.parameters())
    model, tok = load_model(args.model, dtype=args.dtype)
    sampler = get_sampler(model, tok, backend="hf", batch_size=args.batch_size)
    params = SamplingParams(k=args.k, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed)
    sampler.generate(items[:1], SamplingParams(k=1, temperature=0, max_new_tokens=4), progress=False)  # warm-up

    # The machine may be shared: alternate (a) and (b) in rounds so both see the same load, and
    # measure the matmul limit in every round too.
    naive = [0, 0, 0.0]  # samples, tokens, seconds
    ours: list = [[], 0.0]  # completions, seconds
    gflops: list[float] = []
    per_round = -(-len(items) // rounds)
    for r in range(rounds):
        gflops.append(matmul_gflops(torch.bfloat16, seconds=0.5))
        ns, nt, nsec = naive_loop(naive_model, tok, items[r : r + 1], args.k, args.temperature, args.max_new_tokens,
                                  args.seed)
        naive = [naive[0] + ns, naive[1] + nt, naive[2] + nsec]
        start = time.perf_counter()
        ours[0] += sampler.generate(items[r * per_round : (r + 1) * per_round], params, progress=not args.quiet)
        ours[1] += time.perf_counter() - start
    ns, nt, nsec = naive
    done, osec = ours
    ot = sum(c.completion_tokens for c in done)
    naive_tps, ours_tps = nt / nsec, ot / osec
    finishes = {r: sum(c.finish_reason == r for c in done) for r in ("answer", "eos", "length")}
    print(f"(a) naive loop, fp32, one generate() per sample: {ns} samples, {nt} tokens in {nsec:.1f}s "
          f"= {naive_tps:.1f} tokens/s, {ns / nsec:.2f} samples/s")
    print(f"(b) kgreason hf sampler, {dtype_name(model.dtype)}, batch {sampler.batch_size} rows: {len(done)} samples, "
          f"{ot} tokens in {osec:.1f}s = {ours_tps:.1f} tokens/s, {len(done) / osec:.2f} samples/s; finish {finishes}")
    print(f"speed-up (b)/(a): {ours_tps / naive_tps:.1f}x tokens/s, {(len(done) / osec) / (ns / nsec):.1f}x samples/s")
    mean_gflops = sum(gflops) / len(gflops)
    limit_tps = mean_gflops * 1e9 / (2 * n_params)
    print(f"compute limit: bf16 matmul {mean_gflops:.0f} GFLOP/s (mean of {len(gflops)} rounds, "
          f"range {min(gflops):.0f}-{max(gflops):.0f}), {n_params / 1e6:.1f}M parameters -> {limit_tps:.0f} tokens/s; "
          f"ours = {100 * ours_tps / limit_tps:.0f}% of it")
    return 0
