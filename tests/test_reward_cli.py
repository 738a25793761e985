"""`kgreason score` round trip and bad input, and a smoke run of `kgreason bench reward`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest_reward import WORKED_EXAMPLES, example_task, hobby_task, small_kg
from kgreason.cli import main
from kgreason.io import atomic_write_json, read_jsonl
from kgreason.records import Completion, RewardBreakdown

NAMES = ["faithful", "entity_dump_wrong", "spam_right", "unparseable"]


def write_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    kg_path, tasks_path, comp_path = tmp_path / "kg.json", tmp_path / "tasks.jsonl", tmp_path / "completions.jsonl"
    atomic_write_json(kg_path, small_kg().to_dict())
    tasks_path.write_text("\n".join(json.dumps(t.to_dict()) for t in (example_task(), hobby_task())) + "\n")
    lines = [json.dumps(Completion(task_id="example-2hop", sample_index=i, text=WORKED_EXAMPLES[n][0]).to_dict())
             for i, n in enumerate(NAMES)]
    # The plain shapes: {"id", "completion"} and {"task_id", "text"} without the other fields.
    lines.append(json.dumps({"id": "hobby-1", "completion": WORKED_EXAMPLES["faithful"][0]}))
    lines.append(json.dumps({"task_id": "hobby-1", "text": WORKED_EXAMPLES["bare_right"][0]}))
    comp_path.write_text("\n".join(lines) + "\n\n")
    return kg_path, tasks_path, comp_path


@pytest.mark.parametrize("preset", ["kgreason", "seed", "paper"])
def test_score_round_trip(tmp_path: Path, preset: str, capsys: pytest.CaptureFixture[str]) -> None:
    kg_path, tasks_path, comp_path = write_inputs(tmp_path)
    out = tmp_path / "scores.jsonl"
    rc = main(["score", "--kg", str(kg_path), "--tasks", str(tasks_path), "--completions", str(comp_path),
               "--reward-preset", preset, "--out", str(out)])
    assert rc == 0
    rows = read_jsonl(out)
    assert [r["task_id"] for r in rows] == ["example-2hop"] * 4 + ["hobby-1"] * 2
    expected = [WORKED_EXAMPLES[n][1][preset] for n in NAMES + ["faithful", "bare_right"]]
    assert [r["total"] for r in rows] == pytest.approx(expected, abs=1e-6)
    breakdowns = [RewardBreakdown.from_dict(r) for r in rows]
    assert all(b.preset == preset for b in breakdowns)
    printed = capsys.readouterr().out
    # 4 of 6 right (faithful x2, spam, bare), 5 of 6 well formed, 2 faithful.
    assert "accuracy        0.667" in printed
    assert "format rate     0.833" in printed
    assert "faithful share  0.333" in printed
    assert f"mean reward     {sum(expected) / 6:+.3f}" in printed


def test_default_output_path(tmp_path: Path) -> None:
    kg_path, tasks_path, comp_path = write_inputs(tmp_path)
    assert main(["score", "--kg", str(kg_path), "--tasks", str(tasks_path), "--completions", str(comp_path)]) == 0
    assert len(read_jsonl(tmp_path / "completions.kgreason.scores.jsonl")) == 6


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("{not json", "completions.jsonl:2: malformed JSON line"),
        ('{"task_id": "example-2hop"}', "completions.jsonl:2: expected the completion text in 'text'"),
        ('{"text": "TRACE: x ANSWER: A"}', "completions.jsonl:2: expected a task id in 'task_id'"),
        ('{"task_id": "nope", "text": "x"}', "completions.jsonl:2: task id 'nope' is not in"),
        ('["a list"]', "completions.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_completion_lines_name_file_and_line(tmp_path: Path, bad_line: str, message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    kg_path, tasks_path, comp_path = write_inputs(tmp_path)
    good = comp_path.read_text().splitlines()[0]
    comp_path.write_text(good + "\n" + bad_line + "\n")
    rc = main(["score", "--kg", str(kg_path), "--tasks", str(tasks_path), "--completions", str(comp_path),
               "--out", str(tmp_path / "o.jsonl")])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_bad_task_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kg_path, tasks_path, comp_path = write_inputs(tmp_path)
    first = tasks_path.read_text().splitlines()[0]
    tasks_path.write_text(first + "\n" + first + "\n")
    rc = main(["score", "--kg", str(kg_path), "--tasks", str(tasks_path), "--completions", str(comp_path)])
    assert rc == 2
    assert "tasks.jsonl:2: duplicate task id 'example-2hop'" in capsys.readouterr().err


def test_score_help_and_preset_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["score", "--help"])
    assert exc.value.code == 0
    assert "--reward-preset" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["score", "--kg", "k", "--tasks", "t", "--completions", "c", "--reward-preset", "fancy"])


def test_bench_reward_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "reward", "--n", "30", "--large", "3000", "--min-seconds", "0"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("builtin devops")]
    assert len(lines) == 2
    assert all(ln.endswith("yes") for ln in lines)  # both matchers give identical breakdowns


def test_every_worked_example_through_score(tmp_path: Path) -> None:
    """All of docs/reward.md's worked examples (answer-line and claim rules included) via the CLI."""
    kg_path, tasks_path, comp_path = write_inputs(tmp_path)
    names = sorted(WORKED_EXAMPLES)
    comp_path.write_text("\n".join(json.dumps({"task_id": "example-2hop", "text": WORKED_EXAMPLES[n][0],
                                               "sample_index": i}) for i, n in enumerate(names)) + "\n")
    out = tmp_path / "all.jsonl"
    assert main(["score", "--kg", str(kg_path), "--tasks", str(tasks_path), "--completions", str(comp_path),
                 "--out", str(out)]) == 0
    rows = read_jsonl(out)
    assert [r["total"] for r in rows] == pytest.approx([WORKED_EXAMPLES[n][1]["kgreason"] for n in names], abs=1e-6)
