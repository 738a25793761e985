"""`kgreason bench train`: SFT training throughput of the stock path (TRL as configured before) and
the fast path, side by side in one run, as tokens/s, a share of this machine's measured limit, and
peak memory.

The limit: the best sustained matmul FLOP/s among probes at the shapes the model runs (token rows x
576 @ 576 x 1536 and back, 576 x 576, the LM head's 576 x 49152) and a large square one, in the
training dtype (fp32 probed too, for reference). Each probe's figure is the median of a few timed
windows after a warm-up: this host's speed drifts (bursts, throttling), and a single window can be
2-3x off either way.

FLOPs per token (stated, not measured): with LoRA the frozen base still runs forward (2N) and
backward through the activations (2N) but computes no weight gradients, so
    LoRA:  4 x N_base + 6 x N_lora    FLOPs per token (N_base: parameters in matmuls, lm head included)
`share_of_limit` = tokens/s x that / limit, for both paths. The fast path runs the LM head only at
completion positions, so it executes fewer FLOPs per token; `executed_share` counts only those.
Attention score FLOPs are left out. "Tokens" are every non-padding token the model processes
(prompt and completion); the loss covers the completion only.

Paths: `reference` (TRL's stock SFT path), `fast` (what kgreason trains with), `compiled` (the fast
path with --compile-layers). Every row trains 1 untimed warm-up step, then times `steps` more: the
same batches for every path. The compiled path first compiles its layer graphs in a throwaway run
(compile_warmup), whose seconds it reports as `compile_s`.

Where the time goes: each fast and compiled row trains the same steps once more under torch.profiler,
in the same process after its timed run (whose time and peak RSS are read first: the profiler's
records would inflate both; a process of its own would cost one more start-up). Its matmul and
attention kernel seconds give `step_time_split` and two bounds: `matmul_bound_share`, the share of
the limit if everything but the matmuls (as this CPU runs them inside the step) cost nothing, and
`kernel_bound_share`, the same with the attention kernels counted too. A share above the bound
would need faster matmul kernels, not less overhead.

Each (mode, path) trains in its own child process, one at a time, so each peak RSS is its own.
Examples are built with the project's functions (built-in KG, `generate` for closed- and open-book
tasks, `write_dataset`, then SFT's `load_material`), so prompt format changes show up here.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from kgreason.bench.harness import (
    RESULT_MARK,
    count_params,
    kernel_bounds,
    kernel_times,
    probe_limit,
    probe_shapes,
    run_child,
)
from kgreason.tasks.defaults import MODES

PATHS = ("reference", "fast", "compiled")  # compiled: the fast path with --compile-layers
MATERIAL = ["facts", "easy"]  # the SFT default
POOL = 128  # examples per material: enough for group_by_length to batch similar lengths, as in real runs


class StepClock(TrainerCallback):
    """Wall time and cumulative non-padding tokens after every optimizer step (from the Trainer logs).
    With `profile_steps`, torch.profiler records that many steps after the first (the timed ones): it is
    started before training, so its start-up stays out of every timed step (see kernel_times)."""

    def __init__(self, profile_steps: int = 0) -> None:
        self.marks: list[tuple[float, float]] = []
        self.profile_steps = profile_steps
        self.profiler: Any = None
        self._profiling = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.profile_steps:
            import torch

            # warmup=1: the profiler prepares its trace on entry (before training) and runs, discarding
            # its records, through the untimed first step; it records the timed steps only
            schedule = torch.profiler.schedule(wait=0, warmup=1, active=self.profile_steps, repeat=1)
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                                   schedule=schedule)
            self.profiler.__enter__()
            self._profiling = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs and "num_tokens" in logs:
            self.marks.append((time.perf_counter(), float(logs["num_tokens"])))
            if self.profiler is not None:
                self.profiler.step()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.stop_profiler()

    def stop_profiler(self) -> None:
        """Leave the profiler (once): at the end of training, or after a training that raised, so a
        caller's process (bench train with isolate=False) is not left profiling."""
        if self._profiling:
            self._profiling = False
            self.profiler.__exit__(None, None, None)


# --- the limit -----------------------------------------------------------------------------------


# --- examples --------------------------------------------------------------------------------------
def bench_examples(mode: str, seed: int = 0, pool: int = POOL) -> list[dict]:
    """SFT examples (facts + easy questions) built as `kgreason kg build` + `kgreason tasks generate
    [--mode open]` + `kgreason train sft` would build them, in a temporary data folder."""
    from dataclasses import replace

    from kgreason.kg.builtin import build_devops_kg
    from kgreason.tasks.generate import DEFAULT_SPLITS, TaskConfig, generate, write_dataset
    from kgreason.train.sft import SFTOptions, load_material

    kg = build_devops_kg(seed=seed)
    sizes = {"train_easy": pool}
    splits = tuple(replace(s, size=sizes.get(s.name, min(s.size, 8))) for s in DEFAULT_SPLITS)
    with tempfile.TemporaryDirectory(prefix="kgreason-bench-data-") as tmp:
        write_dataset(generate(kg, TaskConfig(seed=seed, mode=mode, splits=splits)), tmp)
        return load_material(Path(tmp), SFTOptions(material=list(MATERIAL), max_examples=pool))


# --- one timed training (child process) --------------------------------------------------------
def compile_warmup(model_ref: str, examples: list[dict], dtype: str, batch_size: int, seed: int) -> float:
    """A throwaway 2-step compiled training on the longest and the shortest examples; its seconds
    (loading a model, compiling, 2 steps). The compiled row's peak RSS includes this run's model.

    Why: the decoder layers' graph is compiled for every input variant a run meets (passes of one
    row or more), ~10 s each on this CPU. In a long run that is paid once; in a few timed steps it
    would be most of the time. The compiled graphs stay cached in this process, so the timed run
    after this compiles nothing.
    """
    from kgreason.train.sft import TrainOptions, train_lora

    by_length = sorted(examples, key=lambda e: len(json.dumps(e)))
    chosen = by_length[-batch_size:] + by_length[:batch_size]
    options = TrainOptions(max_steps=2, batch_size=batch_size, dtype=dtype, logging_steps=1, save_steps=10_000,
                           warmup_ratio=0.0, seed=seed, compile_layers=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kgreason-bench-compile-") as tmp:
        train_lora(model_ref, chosen, Path(tmp) / "adapter", options, path="fast")
    return time.perf_counter() - start


def time_training(model_ref: str, examples: list[dict], dtype: str, steps: int, batch_size: int,
                  path: str, seed: int = 0, profile: bool = False) -> dict:
    """Train `steps` + 1 optimizer steps (the first is warm-up, not timed) and time them (the
    compiled path after compile_warmup, whose seconds are reported as `compile_s`); with
    `profile`, the same steps are trained once more under torch.profiler, after the timed row's time
    and peak RSS are read, and their kernel times are reported too."""
    from kgreason.runs.folder import peak_rss_mb
    from kgreason.train.sft import TrainOptions, train_lora

    compile_s = compile_warmup(model_ref, examples, dtype, batch_size, seed) if path == "compiled" else None
    options = TrainOptions(max_steps=steps + 1, batch_size=batch_size, dtype=dtype, logging_steps=1,
                           save_steps=10_000, warmup_ratio=0.0, seed=seed, compile_layers=path == "compiled")

    def train(clock: StepClock) -> Any:
        with tempfile.TemporaryDirectory(prefix="kgreason-bench-train-") as tmp:
            return train_lora(model_ref, examples, Path(tmp) / "adapter", options, callbacks=[clock],
                              path="reference" if path == "reference" else "fast")

    clock = StepClock()
    result = train(clock)
    (t0, n0), (t1, n1) = clock.marks[0], clock.marks[-1]
    from kgreason.memory import allocator_in_use

    out = {"path": path, "dtype": dtype, "tokens": n1 - n0, "seconds": t1 - t0, "allocator": allocator_in_use(),
           "compile_s": round(compile_s, 1) if compile_s is not None else None,
           "tokens_per_s": (n1 - n0) / (t1 - t0), "peak_rss_mb": peak_rss_mb(),
           "completion_share": (result.trained_tokens_per_epoch / result.tokens_per_epoch
                                if result.tokens_per_epoch else None)}
    if profile:  # the same steps again, under the profiler, now that the timed row's figures are read
        profiled = StepClock(profile_steps=steps)
        try:
            train(profiled)
        finally:
            profiled.stop_profiler()
        (p0, m0), (p1, m1) = profiled.marks[0], profiled.marks[-1]
        out["kernel_profile"] = {"steps": steps, "tokens": m1 - m0, "wall_s": round(p1 - p0, 3),
                                 **kernel_times(profiled.profiler)}
    return out


def _time_spec(spec: dict) -> dict:
    examples = json.loads(Path(spec["examples"]).read_text(encoding="utf-8"))
    return time_training(spec["model"], examples, spec["dtype"], spec["steps"], spec["batch_size"],
                         spec["path"], spec["seed"], spec.get("profile", False))


def _child(spec_path: str) -> None:
    out = _time_spec(json.loads(Path(spec_path).read_text(encoding="utf-8")))
    print(RESULT_MARK + json.dumps(out), flush=True)


# --- the benchmark -------------------------------------------------------------------------------


def bench_train(model_ref: str = "bundled:smollm2-135m", steps: int = 4, batch_size: int = 8, dtype: str = "auto",
                seed: int = 0, modes: tuple[str, ...] = MODES, paths: tuple[str, ...] = PATHS,
                quiet: bool = False, probe_window_s: float = 0.4, pool: int = POOL, profile: bool = True,
                isolate: bool = True) -> dict:
    """Time every (mode, path) row against the matmul limit probed in the same run; `isolate=False`
    trains the rows in this process (tests: no interpreter start per row), whose peak RSS is then
    this process's, not the row's."""
    import torch

    from kgreason.models.dtype import default_device, dtype_name, resolve_dtype

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    chosen = dtype_name(resolve_dtype(dtype, default_device()))
    params = count_params(model_ref, lora_r=16)
    per_token = 4 * params["n_base"] + 6 * params["n_lora"]
    from kgreason.hardware import cpu_description, cpu_line

    say(f"CPU: {cpu_line()}")
    say(f"kgreason bench train: {model_ref}, LoRA r=16, {chosen}, batch {batch_size}, {steps} timed steps "
        f"(+1 warm-up) per row, torch threads {torch.get_num_threads()}")
    say(f"FLOPs per token: 4*N_base + 6*N_lora = 4*{params['n_base'] / 1e6:.1f}M + 6*{params['n_lora'] / 1e6:.2f}M "
        f"= {per_token / 1e9:.3f} GFLOP")
    shapes = probe_shapes(params["hidden"], params["intermediate"], params["vocab"], rows=2048)
    probe = probe_limit(list(dict.fromkeys([chosen, "fp32"])), shapes, probe_window_s)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kgreason-bench-") as tmp:
        for mode in modes:
            examples = bench_examples(mode, seed, pool)
            ex_file = Path(tmp) / f"examples-{mode}.json"
            ex_file.write_text(json.dumps(examples), encoding="utf-8")
            for path in paths:
                say(f"  timing {mode}-book examples, {path} path"
                    f"{' (then profiling the same steps)' if profile and path != 'reference' else ''} ...")
                spec = {"model": model_ref, "examples": str(ex_file), "dtype": chosen, "steps": steps,
                        "batch_size": batch_size, "path": path, "seed": seed, "mode": mode,
                        "profile": profile and path != "reference"}
                rows.append({"mode": mode, **(run_child(spec, Path(tmp), module="kgreason.bench.train") if isolate
                                              else _time_spec(spec))})
    # The probes once more after the training: the host's speed drifts, the limit is the best seen.
    again = probe_limit([chosen], shapes, probe_window_s)
    probe["results"] += [{**r, "repeat": True} for r in again["results"]]
    if again["best"][chosen]["gflops"] > probe["best"][chosen]["gflops"]:
        probe["best"][chosen] = again["best"][chosen]
    limit = probe["best"][chosen]["gflops"] * 1e9
    head_share = params["n_head"] / params["n_base"]
    for r in rows:
        r["share_of_limit"] = r["tokens_per_s"] * per_token / limit
        executed = per_token
        if r["path"] in ("fast", "compiled") and r.get("completion_share") is not None:
            executed -= 4 * params["n_head"] * (1 - r["completion_share"])
        r["executed_share"] = r["tokens_per_s"] * executed / limit
        if r.get("kernel_profile"):
            r["kernel_profile"].update(kernel_bounds([r["kernel_profile"]], per_token, limit))
    summary = _summary(rows, limit, per_token)
    result = {
        "cpu": cpu_description(), "model": model_ref, "dtype": chosen, "batch_size": batch_size, "steps": steps,
        "threads": torch.get_num_threads(), "flops_per_token": per_token, **params,
        "lm_head_share_of_flops": round(head_share, 3),
        "limit_gflops": round(limit / 1e9, 1), "limit_tokens_per_s": round(limit / per_token, 1),
        "probe": probe, **summary, "isolated": isolate, "rows": rows,
    }
    if not quiet:
        print_table(result)
    return result


def _totals(rows: list[dict]) -> dict:
    tokens = sum(r["tokens"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    return {"tokens_per_s": tokens / seconds if seconds else 0.0,
            "peak_rss_mb": max((r["peak_rss_mb"] or 0) for r in rows) if rows else None}


def _summary(rows: list[dict], limit: float, per_token: float) -> dict:
    """Headline figures: the fast path over every mode (tokens / seconds), the reference as baseline,
    the compiled fast path beside it, and the kernel bounds of each."""
    def block(path: str) -> dict:
        mine = [r for r in rows if r["path"] == path]
        totals = _totals(mine)
        return {"tokens_per_s": round(totals["tokens_per_s"], 1),
                "share_of_limit": round(totals["tokens_per_s"] * per_token / limit, 4),
                "peak_rss_mb": totals["peak_rss_mb"],
                **kernel_bounds([r["kernel_profile"] for r in mine if r.get("kernel_profile")], per_token, limit)}

    fast, ref = block("fast"), block("reference")
    out: dict[str, Any] = {**fast, "baseline": {k: ref[k] for k in ("tokens_per_s", "share_of_limit", "peak_rss_mb")}}
    if any(r["path"] == "compiled" for r in rows):
        out["compiled"] = block("compiled")
        out["compiled"]["compile_s"] = max((r.get("compile_s") or 0) for r in rows if r["path"] == "compiled")
        if fast["tokens_per_s"]:
            out["compiled"]["vs_fast"] = round(out["compiled"]["tokens_per_s"] / fast["tokens_per_s"], 2)
    if ref["tokens_per_s"] and fast["tokens_per_s"]:
        out["vs_baseline"] = round(fast["tokens_per_s"] / ref["tokens_per_s"], 2)
        out["vs_baseline_by_mode"] = {
            m: round(f["tokens_per_s"] / r["tokens_per_s"], 2)
            for m in dict.fromkeys(x["mode"] for x in rows)
            for f in rows if f["mode"] == m and f["path"] == "fast"
            for r in rows if r["mode"] == m and r["path"] == "reference"
        }
    return out


def print_table(result: dict) -> None:
    print("limit probes (GFLOP/s):")
    for p in result["probe"]["results"]:
        print(f"  {p['dtype']:5} {p['shape']:48} {p['gflops']:8.1f}{'  (repeat)' if p.get('repeat') else ''}")
    best = result["probe"]["best"][result["dtype"]]
    print(f"limit: {result['limit_gflops']:.1f} GFLOP/s ({result['dtype']}, best probe: {best['shape']}) "
          f"= {result['limit_tokens_per_s']:.0f} tokens/s at {result['flops_per_token'] / 1e9:.3f} GFLOP/token")
    print(f"{'mode':7} {'path':10} {'tokens/s':>9} {'share':>7} {'executed':>9} {'peak RSS':>9} {'vs ref':>7}")
    refs = {r["mode"]: r["tokens_per_s"] for r in result["rows"] if r["path"] == "reference"}
    for r in result["rows"]:
        ratio = f"{r['tokens_per_s'] / refs[r['mode']]:6.2f}x" if refs.get(r["mode"]) else "      -"
        print(f"{r['mode']:7} {r['path']:10} {r['tokens_per_s']:9.1f} {100 * r['share_of_limit']:6.1f}% "
              f"{100 * r['executed_share']:8.1f}% {r['peak_rss_mb'] or 0:7.0f}MB {ratio}")
    base = result["baseline"]
    line = (f"fast path, all modes: {result['tokens_per_s']:.1f} tokens/s, {100 * result['share_of_limit']:.1f}% of "
            f"the limit, peak RSS {result['peak_rss_mb'] or 0:.0f} MB")
    if base["tokens_per_s"]:  # the reference path was timed too
        line += (f"; reference: {base['tokens_per_s']:.1f} tokens/s, {100 * base['share_of_limit']:.1f}%, "
                 f"{base['peak_rss_mb'] or 0:.0f} MB; ratio {result.get('vs_baseline', '-')}x")
    print(line)
    if "compiled" in result:
        c = result["compiled"]
        print(f"compiled fast path (--compile-layers): {c['tokens_per_s']:.1f} tokens/s, "
              f"{100 * c['share_of_limit']:.1f}% of the limit, peak RSS {c['peak_rss_mb'] or 0:.0f} MB, "
              f"{c.get('vs_fast', '-')}x the fast path, after a throwaway compile run of up to {c['compile_s']:.0f} s")
    for name, block in (("fast", result), ("compiled", result.get("compiled") or {})):
        if "matmul_bound_share" in block:
            split = block["step_time_split"]
            print(f"{name} path, profiled steps: matmul {100 * split['matmul']:.0f}%, attention "
                  f"{100 * split['attention']:.0f}%, other operators {100 * split['other_ops']:.0f}% of the wall time; "
                  f"if only the matmuls took time: {100 * block['matmul_bound_share']:.1f}% of the limit, "
                  f"matmuls + attention: {100 * block['kernel_bound_share']:.1f}%")
    print("tokens: non-padding prompt+completion tokens; share: tokens/s x 4*N_base+6*N_lora / limit; executed: "
          "the same with the LM head counted only where it ran (completion positions on the fast path).")


if __name__ == "__main__":  # a child of bench_train: python -m kgreason.bench.train SPEC.json
    _child(sys.argv[1])
