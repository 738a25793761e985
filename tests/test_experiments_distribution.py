"""The distribution experiment (a bundled grid file) end to end on tiny:random with 2 seeds, its
resume, and its aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.cli import main
from kgreason.config import experiment_scale
from kgreason.experiments.arms import ARM_FILE, load_grid
from kgreason.experiments.grid import Experiment
from kgreason.experiments.report import SeedResult, arm_result, vs_reference
from kgreason.io import InputError
from kgreason.options import with_overrides

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GRID = load_grid("distribution")
ARMS = GRID.arms
ARM_NAMES = GRID.arm_names


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("exp") / "distribution"
    rc = main(["experiment", "distribution", "--scale", "tiny", "--seeds", "2", "--out", str(out)])
    assert rc == 0
    return out


def test_every_arm_and_seed_is_a_finished_run_folder(experiment):
    out = experiment
    for arm in ARMS:
        seeds = [0, 1] if arm.seeded else [0]
        for s in seeds:
            folder = out / "runs" / f"{arm.name}-s{s}"
            record = json.loads((folder / ARM_FILE).read_text())
            assert record["done"] and record["arm"] == arm.name and record["seed"] == s
            assert (folder / "eval" / "final" / "metrics.json").is_file()
            assert (folder / "config.json").is_file()
        assert not (out / "runs" / f"{arm.name}-s2").exists()
    # RSFT/GRPO arms trained from their seed's SFT adapter and logged their training
    rsft_log = (out / "runs" / "rsft_hard-s1" / "metrics.jsonl").read_text()
    assert '"phase": "rsft"' in rsft_log
    assert (out / "runs" / "grpo_easy-s0" / "adapters" / "grpo" / "adapter_config.json").is_file()
    assert (out / "runs" / "sft-s1" / "adapters" / "sft" / "adapter_config.json").is_file()


def test_results_json_report_and_plots(experiment):
    out = experiment
    res = json.loads((out / "results.json").read_text())
    assert [a["name"] for a in res["arms"]] == list(ARM_NAMES)
    n_eval = experiment_scale("tiny").run.data.eval_size
    assert res["eval"]["n_items"] == n_eval and res["seeds"] == 2
    for a in res["arms"]:
        assert a["seeds_done"] == ([0] if a["name"] == "base" else [0, 1])
        assert len(a["accuracy"]["per_seed"]) == len(a["seeds_done"])
        assert a["accuracy"]["low"] <= a["accuracy"]["mean"] <= a["accuracy"]["high"]
        assert set(a["by_hop"]) == set(res["eval"]["by_hop"])
        assert sum(a["confusion"].values()) == n_eval * len(a["seeds_done"])
        assert (a["vs_sft"] is None) == (a["name"] == "sft")
        if a["kind"] != "base":
            assert a["drift_kl"]["mean"] >= 0 and len(a["drift_kl"]["per_seed"]) == 2
    assert "KG oracle" in res["references"]
    rsft = next(a for a in res["arms"] if a["name"] == "rsft_easy")
    assert rsft["curves"]["rsft_pass_rate"]  # one point per round, from metrics.jsonl
    report = (out / "report.md").read_text()
    assert "| SFT→RSFT frontier |" in report and "Paired differences vs SFT" in report
    for png in res["plots"].values():
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
        assert f"]({png})" in report
    assert {"accuracy_by_hop", "confusion", "training_curves"} <= set(res["plots"])


def test_second_invocation_reuses_finished_arms(experiment, capsys):
    out = experiment
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob(f"*/{ARM_FILE}")}
    # an arm-seed interrupted before it finished: its marker is missing, so it alone reruns
    victim = out / "runs" / "rsft_mixed-s1" / ARM_FILE
    victim.unlink()
    capsys.readouterr()
    assert main(["experiment", "distribution", "--scale", "tiny", "--seeds", "2", "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert log.count("reused (done)") == len(stamps) - 1
    assert "rsft_mixed seed 1: running" in log
    for p, t in stamps.items():
        if p != victim:
            assert p.stat().st_mtime_ns == t
    assert victim.is_file()


def test_rerun_with_other_settings_is_refused(experiment):
    with pytest.raises(InputError, match="other settings"):
        from kgreason.experiments.grid import run_experiment

        run_experiment(Experiment(out=experiment, config=with_overrides(experiment_scale("tiny"),
                                                                          {"run.data.eval_size": 7})))


def test_arm_selection_brings_sft_and_rejects_unknown():
    assert [a.name for a in GRID.select(["rsft_hard"])] == ["sft", "rsft_hard"]
    with pytest.raises(InputError, match="unknown arm"):
        GRID.select(["rsft_sideways"])


def _seed(seed: int, correct: dict[str, float], drift: float | None = 0.1) -> SeedResult:
    acc = sum(correct.values()) / len(correct)
    metrics = {"accuracy": {"mean": acc}, "by_hop": {}, "trace": {"faithful_share": {"mean": 0.0}},
               "drift": {"mean_kl": drift} if drift is not None else None,
               "confusion": {"correct_unfaithful": int(sum(correct.values())),
                             "wrong_unfaithful": len(correct) - int(sum(correct.values()))}}
    return SeedResult(seed=seed, folder=Path(f"/x/runs/a-s{seed}"), metrics=metrics, correct=correct,
                      faithful=dict.fromkeys(correct, 0.0), format_fail=dict.fromkeys(correct, 0.0), wall_s=1.0)


def test_aggregation_over_seeds_and_paired_difference():
    hops = {f"t{i}": 4 + (i % 2) for i in range(40)}
    arm = next(a for a in ARMS if a.name == "rsft_hard")
    sft_arm = next(a for a in ARMS if a.name == "sft")
    # SFT: right on items 0-9 in both seeds; RSFT: right on 0-19 in seed 0, 0-29 in seed 1
    sft = arm_result(sft_arm, [_seed(s, {t: float(int(t[1:]) < 10) for t in hops}) for s in (0, 1)], hops, 500)
    rs = arm_result(arm, [_seed(0, {t: float(int(t[1:]) < 20) for t in hops}, 0.2),
                          _seed(1, {t: float(int(t[1:]) < 30) for t in hops}, 0.4)], hops, 500)
    assert rs["accuracy"]["mean"] == pytest.approx(0.625)  # (20 + 30) / 80
    assert rs["accuracy"]["per_seed"] == [0.5, 0.75]
    assert rs["accuracy"]["seed_std"] == pytest.approx(0.17678, abs=1e-4)
    assert rs["accuracy"]["low"] < 0.625 < rs["accuracy"]["high"]
    assert rs["by_hop"]["4"]["n"] == 20 and rs["by_hop"]["4"]["mean"] == pytest.approx(0.625)
    assert rs["drift_kl"]["mean"] == pytest.approx(0.3)
    assert rs["confusion"]["correct_unfaithful"] == 50
    d = vs_reference(rs, sft, hops, 500)
    assert d["accuracy"]["diff"] == pytest.approx(0.375)
    assert 0 < d["accuracy"]["low"] < 0.375 < d["accuracy"]["high"]


def test_compare_accepts_arm_run_folders_and_the_experiment_folder(experiment, capsys):
    out = experiment
    assert main(["eval", "--compare", str(out / "runs" / "sft-s0"), str(out / "runs" / "rsft_easy-s0"),
                 "--resamples", "200"]) == 0
    text = capsys.readouterr().out
    assert "sft-s0/final" in text and "rsft_easy-s0/final − sft-s0/final" in text
    assert main(["eval", "--compare", str(out), "--resamples", "200"]) == 0
    assert capsys.readouterr().out.count("grpo_easy-s") >= 2


def test_report_only_aggregates_finished_arms_without_running(experiment, capsys):
    out = experiment
    marker = out / "runs" / "grpo_easy-s1" / ARM_FILE
    saved = marker.read_text()
    marker.unlink()  # as if stopped before this arm-seed finished
    try:
        capsys.readouterr()
        assert main(["experiment", "distribution", "--scale", "tiny", "--seeds", "2", "--out", str(out),
                     "--report-only"]) == 0
        assert "grpo_easy seed 1: not finished (left out)" in capsys.readouterr().out
        res = json.loads((out / "results.json").read_text())
        grpo = next(a for a in res["arms"] if a["name"] == "grpo_easy")
        assert grpo["seeds_done"] == [0] and grpo["accuracy"]["seed_std"] is None
        assert not marker.exists()
    finally:
        marker.write_text(saved)
