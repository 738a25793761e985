"""`kgreason bench sampler` on tiny:random: every row on the same prompts, the JSON names the figures."""

from __future__ import annotations

import json

import pytest

from kgreason.cli import main

SMALL = {"n_prompts": 2, "k": 2, "max_new_tokens": 6, "naive_prompts": 1, "quiet": True, "probe_window_s": 0.01}
FIGURES = ("tokens_per_s", "samples_per_s", "share_of_limit", "prefill_share_of_limit", "peak_rss_mb")


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_bench_sampler_rows_side_by_side_in_process():
    from kgreason.bench import sampler as bench

    result = bench.bench_sampler("tiny:random", rows=("hf-generate", "ours", "openvino", "ctranslate2", "naive"),
                                 isolate=False, **SMALL)
    assert {*FIGURES, "vs_hf_generate", "vs_naive", "vs_openvino", "limit_gflops", "probe", "rows", "cpu"} <= set(result)
    names = [r["name"] for r in result["rows"]]
    assert names == ["hf-generate-dynamic", "hf-generate-static", "ours", "openvino", "ctranslate2", "naive"]
    for row in result["rows"]:
        if row.get("skipped"):  # only the optional engine may be skipped, and it says why
            assert row["name"] == "ctranslate2" and "ctranslate2" in result["skipped"]
            continue
        assert all(_positive(row[key]) for key in (*FIGURES, "samples", "tokens", "prompt_tokens")), row
        assert row["samples"] == (2 if row["name"] == "naive" else 4)  # naive: 1 prompt x k
        assert row["share_of_limit"] < row["prefill_share_of_limit"]
    ours = next(r for r in result["rows"] if r["name"] == "ours")  # timed under the profiler
    assert ours["share_of_limit"] < ours["kernel_bound_share"] <= ours["matmul_bound_share"]
    assert result["matmul_bound_share"] == ours["matmul_bound_share"]
    assert ours["step_time_split"]["matmul"] > 0 and 0 < sum(ours["step_time_split"].values()) <= 1.01
    assert all("kernel_profile" not in r for r in result["rows"] if r["name"] != "ours")
    assert all(_positive(result[key]) for key in (*FIGURES, "vs_hf_generate", "vs_naive", "vs_openvino", "limit_gflops"))
    assert result["limit_gflops"] == result["probe"]["used"]["gflops"]
    assert result["limit_gflops"] == max(p["gflops"] for p in result["probe"]["results"])
    from kgreason.models.dtype import cpu_supports_bf16

    # bf16 is probed where it is native; emulated it cannot be the limit (and took minutes)
    assert {p["dtype"] for p in result["probe"]["results"]} == ({"bf16", "fp32"} if cpu_supports_bf16() else {"fp32"})
    json.dumps(result)  # plain JSON all the way down


def test_bench_sampler_child_process_rows(monkeypatch):
    """The default: each row in its own process, so each reports its own peak RSS. (Not profiled, and
    the matmul limit probed on the model's own projections only: the kernel profile and the full probe,
    whose 2048-square and LM-head matmuls took seconds here, are tested in process above.)"""
    from conftest_train import projection_probes_only
    from kgreason.bench import harness
    from kgreason.bench import sampler as bench

    projection_probes_only(monkeypatch, harness)
    specs: dict[str, dict] = {}
    real_run_child = harness.run_child

    def recording_run_child(spec: dict, *args, **kwargs) -> dict:
        specs[spec["row"]] = spec
        return real_run_child(spec, *args, **kwargs)

    monkeypatch.setattr(harness, "run_child", recording_run_child)
    result = bench.bench_sampler("tiny:random", rows=("ours", "openvino"), profile=False, **SMALL)
    assert [row["name"] for row in result["rows"]] == ["ours", "openvino"] and result["isolated"] is True
    for row in result["rows"]:
        assert all(_positive(row[key]) for key in FIGURES), row
    assert result["vs_hf_generate"] is None and result["vs_naive"] is None
    # OpenVINO aborts under jemalloc, which the other rows preload where it is installed: its row
    # asks for the system allocator (the bench crashed on such a machine before)
    assert specs["openvino"]["allocator"] == "system" and "allocator" not in specs["ours"]


def test_hf_stop_rule_matches_ours():
    """hf-generate gets our stop rule: a sample ends where HFSampler would end it, trimmed alike."""
    from kgreason.bench.sampler import counted_tokens, finish_of
    from kgreason.models import load_model

    _, tok = load_model("tiny:random")
    ids = tok("TRACE: x leads to y.\nANSWER: B\nmore text", add_special_tokens=False)["input_ids"]
    kept, finish = finish_of(tok, ids, {tok.eos_token_id}, stop=True)
    assert finish == "answer" and len(kept) < len(ids)
    assert tok.decode(kept[: counted_tokens(tok, kept, finish)]).rstrip().endswith("ANSWER: B")
    assert finish_of(tok, ids, {tok.eos_token_id}, stop=False) == (ids, "length")


def test_bench_sampler_cli_json_is_one_object(capsys, monkeypatch):
    from kgreason.bench import sampler as bench

    seen = {}

    def fake(model_ref, **kwargs):
        seen.update(kwargs, model=model_ref)
        return {"tokens_per_s": 1.0, "vs_hf_generate": 2.0}

    monkeypatch.setattr(bench, "bench_sampler", fake)
    assert main(["bench", "sampler", "--model", "tiny:random", "--hf-cache", "static", "--naive", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["vs_hf_generate"] == 2.0
    assert seen["hf_caches"] == ("static",) and seen["quiet"] is True and seen["profile"] is True
    assert set(seen["rows"]) == {"ours", "hf-generate", "openvino", "ctranslate2", "naive"}
    assert main(["bench", "sampler", "--no-ct2", "--no-openvino", "--hf-cache", "", "--no-profile"]) == 0
    assert set(seen["rows"]) == {"ours"} and seen["profile"] is False
    with pytest.raises(SystemExit) as exc:
        main(["bench", "sampler", "--hf-stop", "never"])
    assert exc.value.code == 2


def test_hf_stopping_criterion_stops_rows_at_their_answer_line():
    import torch

    from kgreason.bench.sampler import _answer_stop
    from kgreason.models import load_model

    _, tok = load_model("tiny:random")
    prompt = tok("Question: which?", add_special_tokens=False)["input_ids"]
    done = tok("TRACE: x.\nANSWER: B\n", add_special_tokens=False)["input_ids"]
    going = tok("TRACE: x leads to y and z", add_special_tokens=False)["input_ids"]
    width = len(done)
    going = (going * width)[:width]
    stop = _answer_stop(tok, len(prompt), {tok.eos_token_id})
    ids = torch.tensor([prompt + done, prompt + going])
    assert stop(ids, None).tolist() == [True, False]
    assert stop(ids[:, :-1], None).tolist() == [True, False]  # a finished row stays finished
