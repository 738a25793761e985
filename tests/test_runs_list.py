"""`kgreason runs list`: run folders newest first, phases done, accuracy and faithful share with
intervals per evaluated phase, experiment arms grouped under their experiment. Torch-free, fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.cli import main
from kgreason.io import atomic_write_json
from kgreason.runs.folder import Run
from kgreason.runs.listing import list_runs


def _interval(mean: float, low: float, high: float, n: int) -> dict:
    return {"mean": mean, "low": low, "high": high, "n": n}


def make_run(folder: Path, created: str, evals: dict[str, tuple[float, float]], pending: tuple[str, ...] = (),
             metrics_json: bool = True) -> Run:
    """A run folder as `kgreason run` lays it out: config.json, summary.json, eval/<phase>/metrics.json.
    `evals` maps a summary phase (base_eval, ...) to (accuracy, faithful share)."""
    run = Run(folder)
    atomic_write_json(run.config_path, {"run": folder.name, "created": created, "model_ref": "tiny:random"})
    run.mark_done("sft", {"kind": "train", "steps": 3})
    for phase, (acc, faithful) in evals.items():
        label = phase.removesuffix("_eval")
        run.mark_done(phase, {"kind": "eval", "n": 40, "accuracy": acc, "accuracy_ci": [acc - 0.1, acc + 0.1],
                              "faithful": faithful, "eval_dir": f"eval/{label}"})
        if metrics_json:
            atomic_write_json(run.eval_dir(label) / "metrics.json", {
                "accuracy": _interval(acc, acc - 0.05, acc + 0.05, 40),
                "trace": {"faithful_share": _interval(faithful, faithful - 0.02, faithful + 0.02, 40)},
            })
    for phase in pending:
        run.update_phase(phase, {"kind": "train"})
    return run


@pytest.fixture()
def runs_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(root / "old", "2026-01-01T10:00:00+00:00", {"base_eval": (0.25, 0.0), "sft_eval": (0.5, 0.3)})
    make_run(root / "new", "2026-03-01T10:00:00+00:00", {"base_eval": (0.2, 0.1)}, pending=("rsft",))
    make_run(root / "group" / "nested", "2026-02-01T10:00:00+00:00", {"sft_eval": (0.4, 0.2)})
    exp = root / "distribution-tiny-open"
    atomic_write_json(exp / "experiment.json", {"experiment": "distribution", "scale": "tiny"})
    # Arms keep no accuracy interval in summary.json: the figures come from eval/final/metrics.json.
    make_run(exp / "runs" / "sft-s1", "2026-02-10T10:00:00+00:00", {"final": (0.6, 0.5)})
    make_run(exp / "runs" / "base-s0", "2026-02-09T10:00:00+00:00", {"final": (0.1, 0.0)}, metrics_json=False)
    (root / "empty-folder").mkdir()  # neither a run nor an experiment: not listed
    return root


def test_runs_are_listed_newest_first_with_phases_and_intervals(runs_root: Path) -> None:
    runs, experiments = list_runs([runs_root])
    assert [r.name for r in runs] == ["runs/new", "runs/group/nested", "runs/old"]
    new = runs[0]
    assert new.done == ["sft", "base_eval"] and new.pending == ["rsft"]
    old = runs[2]
    assert [e.phase for e in old.evals] == ["base", "sft"]
    # metrics.json wins over summary.json (its interval is the narrower one written above).
    assert old.evals[1].accuracy == pytest.approx(_interval(0.5, 0.45, 0.55, 40))
    assert old.evals[1].faithful == pytest.approx(_interval(0.3, 0.28, 0.32, 40))

    assert [e.name for e in experiments] == ["runs/distribution-tiny-open"]
    exp = experiments[0]
    assert exp.kind == "distribution" and exp.created == "2026-02-09T10:00:00+00:00"
    assert [a.name for a in exp.arms] == ["runs/distribution-tiny-open/runs/base-s0",
                                          "runs/distribution-tiny-open/runs/sft-s1"]
    # Without metrics.json the summary's figures are used: accuracy with its interval, faithful without.
    base = exp.arms[0].evals[0]
    assert base.accuracy["mean"] == 0.1 and base.accuracy["low"] == pytest.approx(0.0)
    assert base.faithful == {"mean": 0.0, "low": None, "high": None, "n": 40}
    # Arms are not listed again as top-level runs.
    assert not any("distribution" in r.name for r in runs)


def test_text_listing_groups_arms_and_prints_intervals(runs_root: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["runs", "list", "--runs", str(runs_root)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    tops = [line.split()[0] for line in lines if line.startswith("runs/")]
    # Runs and experiments interleaved by date, newest first.
    assert tops == ["runs/new", "runs/distribution-tiny-open", "runs/group/nested", "runs/old"]
    assert "phases done sft base_eval; not finished: rsft" in out
    assert "sft   accuracy 50.0% [45.0, 55.0]  faithful 30.0% [28.0, 32.0]  n=40" in out
    exp_at = next(i for i, line in enumerate(lines) if line.startswith("runs/distribution-tiny-open"))
    assert "distribution experiment, 2 arm-seed run(s)" in lines[exp_at]
    assert lines[exp_at + 1].startswith("  runs/base-s0 ") and lines[exp_at + 3].startswith("  runs/sft-s1 ")


def test_json_listing_is_one_object_on_stdout(runs_root: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["runs", "list", "--runs", str(runs_root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # nothing else on stdout
    assert [r["name"] for r in data["runs"]] == ["runs/new", "runs/group/nested", "runs/old"]
    first = data["runs"][2]["evals"][0]
    assert first["phase"] == "base"
    assert first["accuracy"] == pytest.approx(_interval(0.25, 0.2, 0.3, 40))
    assert first["faithful"] == pytest.approx(_interval(0.0, -0.02, 0.02, 40))
    assert [a["name"].rsplit("/", 1)[1] for a in data["experiments"][0]["arms"]] == ["base-s0", "sft-s1"]


def test_unreadable_and_missing_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "runs" / "broken"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text("{not json")
    (bad / "summary.json").write_text("{}")
    assert main(["runs", "list", "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "runs/broken  unreadable:" in out and "malformed JSON" in out
    assert main(["runs", "list", "--runs", str(tmp_path / "nope")]) == 2
    assert "--runs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["runs", "list", "--runs", str(tmp_path / "empty")]) == 0
    assert "no runs under" in capsys.readouterr().out


def test_run_json_prints_the_final_table_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    """`kgreason run --json`: whatever the job prints goes to stderr; stdout is the table as JSON."""
    import kgreason.pipeline.stages as pipeline

    def fake_pipeline(cfg: object, run_dir: Path | None, argv: list[str] | None = None) -> Run:
        print("[data] generating tasks")  # the job's own console lines
        run = make_run(Path(run_dir), "2026-01-01T10:00:00+00:00", {"base_eval": (0.25, 0.0), "sft_eval": (0.5, 0.3)})
        run.update_phase("sft_eval", {"by_hop": {"4": 0.6, "5": 0.4}, "mean_reward": 0.7, "format_failure": 0.1})
        return run

    monkeypatch.setattr(pipeline, "run_pipeline", fake_pipeline)
    assert main(["run", "--run-dir", str(tmp_path / "job"), "--json"]) == 0
    captured = capsys.readouterr()
    table = json.loads(captured.out)
    assert "[data] generating tasks" in captured.err
    assert table["run"] == "job" and table["report"] == str(tmp_path / "job" / "report.md")
    assert table["phases_done"] == ["sft", "base_eval", "sft_eval"]
    assert [row["phase"] for row in table["table"]] == ["base", "sft"]
    sft = table["table"][1]
    assert sft["accuracy"] == pytest.approx(_interval(0.5, 0.45, 0.55, 40))
    assert sft["faithful"] == pytest.approx(_interval(0.3, 0.28, 0.32, 40))
    assert sft["by_hop"] == {"4": 0.6, "5": 0.4} and sft["mean_reward"] == 0.7 and sft["n"] == 40
