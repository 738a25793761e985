"""`kgreason run --profile smoke`: every stage on tiny:random, the table, and a rerun that reuses all."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from kgreason.cli import main
from kgreason.config import RunConfig, pipeline_profile
from kgreason.io import read_jsonl
from kgreason.schemas import all_schemas

STAGES = ["data", "model", "base_eval", "sft", "sft_eval", "rsft", "rsft_eval"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, str]:
    """One `kgreason run --profile smoke` (every stage, in this process) and what it printed, shared by
    the tests that read a finished smoke run; a test that changes the folder works on a copy."""
    run_dir = tmp_path_factory.mktemp("pipeline") / "smoke"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["run", "--profile", "smoke", "--run-dir", str(run_dir)]) == 0
    return run_dir, printed.getvalue()


def test_run_smoke_end_to_end_then_rerun_reuses_everything(smoke_run, tmp_path, capsys):
    run_dir, out = smoke_run
    assert "| phase | accuracy |" in out and "| rsft |" in out and str(run_dir) in out
    # the headline: the last line printed, the first thing report.md says (evaluate/headline.py)
    from kgreason.evaluate.headline import run_headline

    head = run_headline(run_dir)
    sentence, lines = head.sentence, out.strip().splitlines()
    assert sentence.startswith("RSFT ") and (run_dir / "report.md").read_text().splitlines()[2] == f"**{sentence}**"
    # tiny:random learns nothing: after its headline the run says what went wrong, and report.md too
    # (evaluate/diagnosis.py; issue 28: "a run on a graph where training fails prints the diagnosis")
    assert head.diagnosis is not None and {p["code"] for p in head.diagnosis["problems"]} == {"unreadable", "no_winners"}
    assert lines[-3:] == [sentence, "", f"WHAT WENT WRONG: {head.diagnosis['paragraph']}"]
    assert f"## What went wrong\n\n{head.diagnosis['paragraph']}" in (run_dir / "report.md").read_text()

    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary["phases"]) == STAGES and all(p["done"] for p in summary["phases"].values())
    assert summary["phases"]["base_eval"]["n"] == 6 and "4" in summary["phases"]["base_eval"]["by_hop"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model_ref"] == "tiny:random" and config["dataset_seed"] == 0 and "git_revision" in config
    # config.json is the typed RunConfig record: valid against its schema, read back as the same options
    jsonschema.validate(config, all_schemas()["RunConfig"])
    assert RunConfig.from_json(config).pipeline == pipeline_profile("smoke")
    for path in ("data/kg.json", "data/eval.jsonl", "adapters/sft/adapter_config.json",
                 "adapters/rsft/adapter_config.json", "eval/base/metrics.json", "report.md", "metrics.jsonl"):
        assert (run_dir / path).exists(), path
    phases = {e["phase"] for e in read_jsonl(run_dir / "episodes.jsonl")}
    assert {"base_eval", "sft_eval", "rsft", "rsft_eval"} <= phases

    finished = {k: v["finished"] for k, v in summary["phases"].items()}
    rerun = tmp_path / "smoke"
    shutil.copytree(run_dir, rerun)  # the shared run stays as the fixture made it
    assert main(["run", "--profile", "smoke", "--run-dir", str(rerun)]) == 0
    again = json.loads((rerun / "summary.json").read_text())
    assert {k: v["finished"] for k, v in again["phases"].items()} == finished, "nothing is redone"
    assert "already done" in capsys.readouterr().out


def test_run_refuses_a_folder_made_with_other_options(tmp_path, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"pipeline": {"profile": "other"}}))
    assert main(["run", "--profile", "smoke", "--run-dir", str(run_dir)]) == 2
    assert "different options" in capsys.readouterr().err


def test_a_model_stage_runs_in_a_process_of_its_own(smoke_run, tmp_path, capsys):
    """With stage processes on (the quick profile's default), a stage runs in a spawned child: it
    reports its own peak memory and the parent resumes with the next stage."""
    import os

    run_dir = tmp_path / "smoke"
    shutil.copytree(smoke_run[0], run_dir)  # the smoke run, made in this process; this test changes it
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["phases"]["rsft_eval"]["pid"] == os.getpid()  # the smoke profile stays in-process
    del summary["phases"]["rsft_eval"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert main(["run", "--profile", "smoke", "--run-dir", str(run_dir), "--stage-processes"]) == 2
    assert "different options" in capsys.readouterr().err  # the option is part of the run's recipe
    config = json.loads((run_dir / "config.json").read_text())
    config["pipeline"]["stage_processes"] = True
    (run_dir / "config.json").write_text(json.dumps(config))
    assert main(["run", "--profile", "smoke", "--run-dir", str(run_dir), "--stage-processes"]) == 0
    again = json.loads((run_dir / "summary.json").read_text())["phases"]
    assert again["rsft_eval"]["done"] and again["rsft_eval"]["pid"] != os.getpid()
    assert 0 < again["rsft_eval"]["peak_rss_mb"] < 4000
    from kgreason.memory import allocator_in_use, find_jemalloc

    # allocator auto: the child preloads jemalloc where the system has it; the in-process stage cannot
    assert again["rsft_eval"]["allocator"] == ("jemalloc" if find_jemalloc() else "system")
    assert summary["phases"]["sft"]["allocator"] == allocator_in_use()
    assert again["sft"]["finished"] == summary["phases"]["sft"]["finished"], "done stages are not redone"
    assert "| largest |" in (run_dir / "report.md").read_text()


def test_run_with_grpo_as_the_kg_reward_phase(tmp_path, capsys):
    """`--rl grpo`: the same data, base and SFT stages, then GRPO (kgreason's sampler generating,
    the held-out probe logged) and its evaluation, in the table and the paired gains."""
    run_dir = tmp_path / "grpo"
    assert main(["run", "--profile", "smoke", "--rl", "grpo", "--grpo-probe-every", "1", "--grpo-probe-items", "2",
                 "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "| grpo |" in out and "| rsft |" not in out and "grpo vs sft (paired" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary["phases"]) == ["data", "model", "base_eval", "sft", "sft_eval", "grpo", "grpo_eval"]
    grpo = summary["phases"]["grpo"]
    assert grpo["generation"] == "kgreason" and grpo["probe"][0]["step"] == 0
    assert grpo["share_prompt"] is True  # the update runs each group's prompt once (train/grpo_prefix.py)
    assert (run_dir / "adapters/grpo/adapter_config.json").is_file() and (run_dir / "eval/grpo/metrics.json").is_file()
    config = RunConfig.from_json(json.loads((run_dir / "config.json").read_text()))
    assert config.pipeline is not None and config.pipeline.rl == "grpo"


def test_dry_run_estimate_follows_the_cpus_matrix_isa(monkeypatch):
    from kgreason import hardware
    from kgreason.pipeline.stages import UNIT_SECONDS, estimate_seconds

    cfg = pipeline_profile("quick")

    def on(isa: str) -> dict[str, float]:
        monkeypatch.setattr(hardware, "cpu_description", lambda cpuinfo=None: {"model": "x", "matrix_isa": isa})
        return estimate_seconds(cfg)

    amx, avx2, avx512bf16, avx512, unknown = on("AMX"), on("AVX2"), on("AVX-512 BF16"), on("AVX-512"), on("unknown")
    assert set(amx) >= {"sft", "rsft", "grpo", "grpo_eval"}
    # each measured ISA has its own table: 100 SFT steps of 8 examples at that CPU's seconds per example
    assert avx2["sft"] == pytest.approx(800 * UNIT_SECONDS["AVX2"]["sft_example"])
    assert amx["sft"] == pytest.approx(800 * UNIT_SECONDS["AMX"]["sft_example"])
    assert avx512bf16["sft"] == pytest.approx(2.0 * amx["sft"]) and avx512 == avx2 and unknown == avx2
    # measured on the AVX2 EPYC: SFT 1,646-1,782 s, the quick GRPO stage 1,908-2,074 s (docs/learning.md)
    assert 1600 < avx2["sft"] < 1800 and 1800 < avx2["grpo"] < 2200
    # and on the two AMX Xeons: SFT 399 and 406 s, the quick GRPO stage 733-801 s (README, docs/learning.md)
    assert 399 <= amx["sft"] <= 406 and 700 < amx["grpo"] < 900
    cfg.grpo.train.max_steps *= 2
    assert estimate_seconds(cfg)["grpo"] == pytest.approx(2 * avx2["grpo"])


def test_run_with_free_form_items_end_to_end(tmp_path, capsys):
    """`kgreason run --family free_form`: the data stage refuses the built-in graph's open-book items
    (the facts in the prompt leave a handful of candidates, docs/tasks.md), and with --allow-shortcuts every stage runs on free-form
    items: prompts without options, answers graded by name, no option shuffle."""
    run_dir = tmp_path / "ff"
    argv = ["run", "--profile", "smoke", "--family", "free_form", "--mode", "open", "--eval-size", "80",
            "--run-dir", str(run_dir)]
    assert main(argv) == 2
    assert "refusing to write this data" in capsys.readouterr().err
    assert main([*argv, "--allow-shortcuts"]) == 0
    tasks = read_jsonl(run_dir / "data" / "eval.jsonl")
    assert tasks and all(t["family"] == "free_form" and t["options"] == {} for t in tasks)
    metrics = json.loads((run_dir / "eval" / "rsft" / "metrics.json").read_text())
    assert metrics["family"] == "free_form" and "shuffle" not in metrics
    assert metrics["chance"] == pytest.approx(1 / 366)
    answers = [e["reward"]["answer"] for e in read_jsonl(run_dir / "episodes.jsonl") if e["phase"] == "rsft_eval"]
    assert all(a is None or len(a) != 1 or a.isalpha() for a in answers)  # names, never read as letters
