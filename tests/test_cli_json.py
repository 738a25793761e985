"""`--json` on `score` and `eval`: stdout is exactly one JSON object with the figures (so a script can
pipe it into `jq`), and everything else (progress, summary lines, library output) is on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.cli import main
from kgreason.tasks.format import format_completion, format_trace


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest_train import make_data

    return make_data(tmp_path_factory.mktemp("json_data"))


def _completions(data: Path, out: Path) -> tuple[Path, float]:
    """Four completions: the gold trace with the right letter for the first three tasks, a wrong
    letter for the fourth. Returns the file and the accuracy the scorer must report (3/4)."""
    from kgreason.kg.kgjson import load_kg
    from kgreason.tasks.generate import load_tasks

    kg = load_kg(data / "kg.json")
    tasks = load_tasks(data / "eval.jsonl")[:4]
    lines = []
    for i, t in enumerate(tasks):
        letter = t.answer_star if i < 3 else next(x for x in "ABCD" if x != t.answer_star)
        lines.append({"task_id": t.id, "text": format_completion(format_trace(kg, t.path_star.edges), letter)})
    out.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return out, 3 / 4


def test_score_json_is_one_object_with_the_figures(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    completions, accuracy = _completions(data, tmp_path / "c.jsonl")
    args = ["score", "--kg", str(data / "kg.json"), "--tasks", str(data / "eval.jsonl"),
            "--completions", str(completions), "--out", str(tmp_path / "s.jsonl")]
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    figures = json.loads(captured.out)  # raises if anything but one JSON document is on stdout
    assert figures["completions"] == 4 and figures["out"] == str(tmp_path / "s.jsonl")
    assert figures["accuracy"] == pytest.approx(accuracy)
    assert figures["format_rate"] == 1.0
    assert 0 < figures["faithful_share"] <= 1  # gold traces are faithful where the letter is right
    assert (tmp_path / "s.jsonl").read_text().count("\n") == 4

    # The text mode reports the same figures.
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"accuracy        {accuracy:.3f}" in text
    assert f"faithful share  {figures['faithful_share']:.3f}" in text


def test_eval_json_is_one_object_and_the_rest_is_on_stderr(data: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "eval"
    rc = main(["eval", "--model", "tiny:random", "--tasks", str(data / "eval.jsonl"), "--out", str(out),
               "--max-items", "4", "--max-new-tokens", "8", "--batch-size", "4", "--resamples", "200",
               "--dtype", "fp32", "--no-shuffle", "--no-drift", "--json"])
    assert rc == 0
    captured = capsys.readouterr()
    figures = json.loads(captured.out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert figures["accuracy"] == metrics["accuracy"] and figures["accuracy"]["n"] == 4
    assert figures["by_hop"] == metrics["by_hop"]
    assert figures["trace"]["faithful_share"] == metrics["trace"]["faithful_share"]
    assert figures["report"] == str(out / "report.md")
    assert "options" not in figures and "item_hops" not in figures  # bulky, per-item
    assert "accuracy " in captured.err  # the human summary still shows, on stderr


def test_eval_json_with_compare_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "--compare", str(tmp_path), str(tmp_path), "--json"]) == 2
    assert "--json: not with --compare" in capsys.readouterr().err
