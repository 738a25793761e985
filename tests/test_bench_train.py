"""`kgreason bench train` on tiny:random: both paths run side by side and the JSON names the figures."""

from __future__ import annotations

import json

import pytest

from kgreason.cli import main


def test_bench_train_json_reports_both_paths(capsys, monkeypatch):
    """In this process (a child per row costs ~8 s of imports here; the child path, run_child, is
    run by the sampler bench's test). The matmul limit is probed on the model's own projections only:
    the 2048-square and LM-head probes took seconds here, and the full probe set is the sampler
    bench's in-process test's (the same harness.probe_shapes and probe_limit)."""
    from conftest_train import projection_probes_only
    from kgreason.bench import train as bench

    projection_probes_only(monkeypatch, bench)

    result = bench.bench_train("tiny:random", steps=2, batch_size=2, modes=("closed",), paths=("reference", "fast"),
                               quiet=True, probe_window_s=0.05, pool=16, isolate=False)
    assert result["isolated"] is False
    assert {"tokens_per_s", "share_of_limit", "peak_rss_mb", "limit_gflops", "probe", "vs_baseline",
            "baseline", "rows", "cpu"} <= set(result)
    assert set(result["cpu"]) == {"model", "matrix_isa"}, "every figure names the CPU it came from"
    assert [(r["mode"], r["path"]) for r in result["rows"]] == [("closed", "reference"), ("closed", "fast")]
    for row in result["rows"]:
        assert row["tokens"] > 0 and row["tokens_per_s"] > 0 and row["peak_rss_mb"] > 0
        assert 0 < row["executed_share"] <= row["share_of_limit"] + 1e-9
    fast = result["rows"][1]
    # the timed steps ran under the profiler (the fast path only): the kernel bounds sit above the share
    # measured, matmuls + attention below matmuls alone, and the split of the wall time adds up
    assert "kernel_profile" not in result["rows"][0] and fast["kernel_profile"]["tokens"] == fast["tokens"]
    assert fast["share_of_limit"] < result["kernel_bound_share"] <= result["matmul_bound_share"]
    split = result["step_time_split"]
    assert split["matmul"] > 0 and 0 < sum(split.values()) <= 1.01
    assert result["tokens_per_s"] == round(fast["tokens_per_s"], 1)
    assert result["vs_baseline"] > 0 and result["probe"]["best"]["bf16" if result["dtype"] == "bf16" else "fp32"]
    assert result["limit_gflops"] == max(p["gflops"] for p in result["probe"]["results"] if p["dtype"] == result["dtype"])
    json.dumps(result)  # plain JSON all the way down


def test_bench_train_cli_json_is_one_object(capsys, monkeypatch):
    from kgreason.bench import train as bench

    seen = {}

    def fake(model_ref, **kwargs):
        seen.update(kwargs, model=model_ref)
        return {"tokens_per_s": 1.0, "share_of_limit": 0.5, "peak_rss_mb": 10.0, "limit_gflops": 2.0,
                "probe": {}, "vs_baseline": 3.0}

    monkeypatch.setattr(bench, "bench_train", fake)
    assert main(["bench", "train", "--model", "tiny:random", "--modes", "open", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["vs_baseline"] == 3.0
    assert seen["modes"] == ("open",) and seen["paths"] == ("reference", "fast", "compiled") and seen["quiet"] is True
    assert seen["profile"] is True
    assert main(["bench", "train", "--paths", "fast,compiled", "--no-profile"]) == 0
    assert seen["paths"] == ("fast", "compiled") and seen["profile"] is False
    assert main(["bench", "train", "--modes", "book"]) != 0


def test_bench_grpo_times_both_generation_paths_and_the_shared_prompt_on_the_same_steps():
    """Two of the three rows, in this process (a child process per row costs ~8 s of imports here;
    the child path is bench train's and bench sampler's `run_child`, tested there): `trl`
    (transformers' generate, TRL's update) and `kgreason-shared-prompt` (kgreason's sampler, the
    shared-prompt update). The third row, `kgreason`, is kgreason's sampler with TRL's update: no
    code path the two do not run."""
    from trl import GRPOTrainer

    from kgreason.bench.grpo import bench_grpo

    # one prompt x 2 completions a step: TRL's CPU log-prob kernel scores the full vocabulary at every
    # position of the ~600-token open-book prompts, so each extra prompt costs seconds here
    result = bench_grpo("tiny:random", steps=1, batch_size=2, grad_accum=1, num_generations=2, max_new_tokens=8,
                        dtype="fp32", quiet=True, generations=("trl", "kgreason-shared-prompt"), isolate=False)
    assert result["isolated"] is False and GRPOTrainer._generate.__name__ == "_generate", "TRL is as it was"
    rows = {r["row"]: r for r in result["rows"]}
    assert set(rows) == {"trl", "kgreason-shared-prompt"} and result["cpu"]["matrix_isa"]
    assert [rows[r]["share_prompt"] for r in ("trl", "kgreason-shared-prompt")] == [False, True]
    for r in rows.values():
        assert r["steps"] == 1 and r["seconds_per_step"] > 0 and r["peak_rss_mb"] > 0
        assert r["generation_s_per_step"] > 0 and r["scoring_s_per_step"] > 0
        parts = r["generation_s_per_step"] + r["scoring_s_per_step"] + r["update_s_per_step"]
        assert parts == pytest.approx(r["seconds_per_step"], abs=0.01), "the split adds up to the step"
        assert 0 < r["completion_tokens_per_step"] <= 2 * 8
    assert result["speedup_step_shared_prompt"] == pytest.approx(
        rows["trl"]["seconds_per_step"] / rows["kgreason-shared-prompt"]["seconds_per_step"], rel=0.02)
    assert "speedup_step" not in result and "speedup_update_shared_prompt" not in result  # they need the third row


@pytest.mark.parametrize("flags, isa", [("fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile", "AMX"),
                                        ("fpu avx2 avx512f avx512_bf16", "AVX-512 BF16"),
                                        ("fpu avx2 avx512f", "AVX-512"), ("fpu sse4_2 avx2", "AVX2"),
                                        ("fpu sse4_2", "unknown")])
def test_cpu_description_names_the_matrix_isa(flags, isa):
    from kgreason.hardware import cpu_description

    text = f"processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: {flags}\n"
    assert cpu_description(text) == {"model": "Some CPU 9000", "matrix_isa": isa}


def test_a_profiled_training_that_raises_leaves_no_profiler_running():
    """bench train with isolate=False profiles in the caller's process: a training that raised
    before on_train_end must not leave the profiler entered there."""
    import torch

    from kgreason.bench.train import StepClock

    clock = StepClock(profile_steps=1)
    clock.on_train_begin(None, None, None)  # what the Trainer calls first
    clock.on_log(None, None, None, logs={"num_tokens": 10})  # the warm-up step: recording starts; then a raise
    assert torch.autograd.profiler._is_profiler_enabled
    clock.stop_profiler()
    clock.stop_profiler()  # once only: a second call (on_train_end after a finally) is harmless
    assert not torch.autograd.profiler._is_profiler_enabled
