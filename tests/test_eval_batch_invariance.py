"""A greedy evaluation gives the same answers at batch sizes 1, 16 and 64 (`kgreason bench eval-batch`), on tiny:random."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.bench import eval_batch as bench_batch
from kgreason.cli import main


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from conftest_train import make_data

    return make_data(tmp_path_factory.mktemp("batch_data"))


def test_answers_do_not_move_with_the_batch_size(data: Path) -> None:
    # 24 items: batch 16 runs a full chunk then a partial one, batch 64 one chunk whose rows finish apart
    result = bench_batch.bench_eval_batch("tiny:random", adapter=None, tasks_file=str(data / "train_easy.jsonl"),
                                          batch_sizes=(1, 16, 64), max_items=24, max_new_tokens=24, quiet=True)
    assert result["n_items"] == 24
    assert [r["batch_size"] for r in result["rows"]] == [1, 16, 64]
    for row in result["rows"]:
        assert row["texts_differ"] == 0 and row["answers_differ"] == 0, row
    assert result["invariant"] and len({r["accuracy"] for r in result["rows"]}) == 1


def test_a_batch_size_that_changes_answers_is_reported(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kgreason.evaluate import runner

    real = runner.answer_tasks

    def flips_two_at_batch_4(model, tokenizer, tasks, scorer, options, phase, done):
        episodes = real(model, tokenizer, tasks, scorer, options, phase, done)
        if options.batch_size == 4:
            for task in list(tasks)[:2]:
                ep = episodes[task.id]
                wrong = next(k for k in task.options if k != ep.reward.answer)
                episodes[task.id] = runner.scored_episode(scorer, task, f"ANSWER: {task.options[wrong]} ({wrong})",
                                                          run=ep.run, phase=ep.phase, step=ep.step)
        return episodes

    monkeypatch.setattr(runner, "answer_tasks", flips_two_at_batch_4)
    result = bench_batch.bench_eval_batch("tiny:random", adapter=None, tasks_file=str(data / "eval.jsonl"),
                                          batch_sizes=(1, 4), max_items=8, max_new_tokens=8, quiet=True)
    assert [r["answers_differ"] for r in result["rows"]] == [0, 2]
    assert result["rows"][1]["texts_differ"] >= 2 and len(result["rows"][1]["differing_items"]) == 2
    assert result["max_answers_differ"] == 2 and not result["invariant"]


def test_cli_json_and_bad_batch_sizes(data: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["bench", "eval-batch", "--model", "tiny:random", "--tasks", str(data / "eval.jsonl"),
            "--max-items", "4", "--max-new-tokens", "6"]
    assert main([*args, "--batch-sizes", "1,4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "eval-batch" and [r["batch_size"] for r in out["rows"]] == [1, 4]
    assert out["cpu_line"] and out["rows"][0]["speedup_vs_first"] == 1.0
    assert main([*args, "--batch-sizes", "1,zero"]) == 2
    assert "--batch-sizes" in capsys.readouterr().err
