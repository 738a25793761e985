"""Run folders and RSFT's selection rules: no model needed, milliseconds each."""

from __future__ import annotations

import json
import random

import pytest

from conftest_train import breakdown, make_data
from kgreason.config import RSFTOptions
from kgreason.io import InputError, read_jsonl
from kgreason.records import Episode, PathStar, Task
from kgreason.runs.folder import Run
from kgreason.train.rsft import (
    Scored,
    load_pool,
    read_round_state,
    round_questions,
    select_winners,
)


def test_run_folder_layout_logs_and_phase_markers(tmp_path):
    run = Run.create_or_resume(tmp_path / "r1", {"model_ref": "tiny:random", "dataset_seed": 3})
    cfg = json.loads((tmp_path / "r1" / "config.json").read_text())
    assert cfg["model_ref"] == "tiny:random" and cfg["dataset_seed"] == 3
    assert "git_revision" in cfg and cfg["run"] == "r1"

    run.log_metrics("sft", 5, {"loss": 1.25}, round=0)
    ep = Episode(run="r1", phase="rsft", step=0, task_id="t1", prompt="p", completion="c",
                 reward=breakdown(1.0), round=1, kept=True)
    run.append_episode(ep)
    assert not run.is_done("sft")
    run.mark_done("sft", {"steps": 5})
    run.close()

    assert read_jsonl(run.metrics_path)[0] | {"time": 0} == {"phase": "sft", "step": 5, "round": 0, "time": 0, "loss": 1.25}
    assert Episode.from_dict(read_jsonl(run.episodes_path)[0]) == ep
    assert any((run.tb_dir("sft")).glob("events.out.tfevents.*")), "metrics are mirrored to TensorBoard"
    again = Run.load(tmp_path / "r1")
    assert again.is_done("sft") and again.phase_info("sft")["steps"] == 5
    assert again.summary["phases"]["sft"]["done"] is True
    from kgreason.hardware import cpu_line

    assert again.phase_info("sft")["cpu"] == cpu_line()  # figures name the CPU they came from


def test_rerun_with_other_options_is_refused_but_same_options_resume(tmp_path):
    Run.create_or_resume(tmp_path / "r", {"pipeline": {"k": 8}, "command": ["a"]})
    Run.create_or_resume(tmp_path / "r", {"pipeline": {"k": 8}, "command": ["b"]})  # command is volatile
    with pytest.raises(InputError, match=r"pipeline\.k: 8 \(saved\) != 4 \(now\)"):
        Run.create_or_resume(tmp_path / "r", {"pipeline": {"k": 4}})
    # a phase section only has to match itself: another command may add its own section
    Run.create_or_resume(tmp_path / "r", {"rsft": {"k": 2}}, sections=["rsft"])
    assert Run.load(tmp_path / "r").config["rsft"] == {"k": 2}


def _scored(*specs):
    return [Scored(i, text, breakdown(total, correct, fmt, faithful))
            for i, (text, total, correct, fmt, faithful) in enumerate(specs)]


def test_winners_are_correct_well_formed_and_best_first():
    samples = _scored(
        ("wrong but high", 5.0, False, True, True),
        ("right low", 0.5, True, True, True),
        ("right best", 2.0, True, True, True),
        ("unparsed", 9.0, True, False, True),  # not well formed: never kept, whatever its total
        ("right mid", 1.0, True, True, True),
    )
    out = select_winners("t", samples, keep=2)
    assert out.kept == [2, 4]
    assert out.passed == 3 and out.pass_rate == pytest.approx(3 / 5)
    assert out.best_reward == 9.0 and out.eligible == 3 and out.reason == "kept"
    assert select_winners("t", samples, keep=1).kept == [2]
    assert select_winners("t", samples, keep=10).kept == [2, 4, 1]


def test_winners_faithful_only_and_duplicates():
    samples = _scored(
        ("same text", 3.0, True, True, False),
        ("same text", 3.0, True, True, False),
        ("faithful", 1.0, True, True, True),
    )
    assert select_winners("t", samples, keep=3).kept == [0, 2], "a duplicate completion is kept once"
    assert select_winners("t", samples, keep=3, faithful_only=True).kept == [2]
    none = select_winners("t", _scored(("x", 1.0, True, True, False)), faithful_only=True)
    assert none.kept == [] and none.reason == "none_eligible"


def test_frontier_keeps_only_questions_with_pass_rate_strictly_between_0_and_1():
    all_right = _scored(("a", 1.0, True, True, True), ("b", 2.0, True, True, True))
    all_wrong = _scored(("a", -1.0, False, True, True), ("b", -1.0, False, False, False))
    mixed = _scored(("a", -1.0, False, True, True), ("b", 2.0, True, True, True))
    assert select_winners("t", all_right, frontier=True).reason == "above_frontier"
    assert select_winners("t", all_right, frontier=True).kept == []
    assert select_winners("t", all_right, frontier=False).kept == [1]
    assert select_winners("t", all_wrong, frontier=True).reason == "below_frontier"
    assert select_winners("t", mixed, frontier=True).kept == [1]


def _task(i: int, split: str) -> Task:
    return Task(id=f"{split}-{i}", split=split, hop_len=2, question="q", options={"A": "x", "B": "y"},
                answer_star="A", path_star=PathStar(["s", "m", "x"], [("s", "r", "m"), ("m", "r", "x")]), prompt="p")


def test_round_questions_by_distribution():
    pools = {"easy": [_task(i, "train_easy") for i in range(20)], "hard": [_task(i, "train_hard") for i in range(20)]}
    opts = RSFTOptions(distribution="curriculum", rounds=3)
    assert [opts.pool_for_round(r) for r in (1, 2, 3)] == ["easy", "easy", "hard"]
    assert RSFTOptions(distribution="curriculum", rounds=3, easy_rounds=1).pool_for_round(2) == "hard"
    mixed = round_questions(pools, "mixed", 10, seed=0, round_index=1)
    assert sorted(t.split for t in mixed) == ["train_easy"] * 5 + ["train_hard"] * 5
    assert round_questions(pools, "easy", 5, 0, 1) == round_questions(pools, "easy", 5, 0, 1), "seeded"
    assert round_questions(pools, "easy", 5, 0, 1) != round_questions(pools, "easy", 5, 0, 2), "fresh each round"
    assert len(round_questions(pools, "hard", 0, 0, 1)) == 20


def test_hard_pool_never_contains_eval_items(tmp_path):
    data = make_data(tmp_path)
    assert all(t.split == "train_hard" for t in load_pool(data, "hard"))
    (data / "train_hard.jsonl").write_text((data / "eval.jsonl").read_text())
    with pytest.raises(InputError, match="held-out"):
        load_pool(data, "hard")


def test_round_state_reads_back_finished_questions_and_winners(tmp_path):
    run = Run.create_or_resume(tmp_path / "r", {})
    for tid, kept in (("a", True), ("b", False), ("c", True)):
        for i in range(2):
            run.append_episode(Episode(run="r", phase="rsft", step=0, task_id=tid, prompt="p", completion=f"{tid}{i}",
                                       reward=breakdown(random.random()), sample_index=i, round=1, kept=kept and i == 0))
        if tid != "c":  # "c" was cut off before its per-question line: not finished, resampled on resume
            run.log_metrics("rsft", 0, {"task_id": tid, "pass_rate": 0.5, "kept": int(kept)}, round=1)
    run.close()
    state = read_round_state(run, "rsft", 1)
    assert set(state.finished) == {"a", "b"}
    assert state.winners == {("a", 0): "a0"}
    assert read_round_state(run, "rsft", 2).finished == {}


def test_a_folder_made_before_an_option_existed_still_resumes(tmp_path):
    """A run folder saved by an older kgreason lacks the options added since (here `rl` and the probe's):
    not a difference. The options of the KG-reward phase a run does not use may change too."""
    from kgreason.config import RunConfig, pipeline_profile
    from kgreason.options import with_overrides

    cfg = pipeline_profile("smoke")
    new = RunConfig(model_ref=cfg.model, pipeline=cfg).to_dict()
    old = json.loads(json.dumps(new))
    del old["pipeline"]["rl"], old["pipeline"]["grpo"]["train"]["probe_every"]
    old["pipeline"]["grpo"]["questions"] = 7  # an older profile's GRPO section; this run uses RSFT
    Run.create_or_resume(tmp_path / "r", old).close()
    with pytest.raises(InputError, match="grpo.questions"):
        Run.create_or_resume(tmp_path / "r", new).close()
    Run.create_or_resume(tmp_path / "r", new, ignore=("pipeline.grpo",)).close()
    changed = RunConfig(model_ref=cfg.model, pipeline=with_overrides(cfg, {"rsft.k": 9})).to_dict()
    with pytest.raises(InputError, match="rsft.k"):
        Run.create_or_resume(tmp_path / "r", changed, ignore=("pipeline.grpo",)).close()
