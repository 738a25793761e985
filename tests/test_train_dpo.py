"""DPO on KG-verified pairs (kgreason/train/dpo.py): pair selection, and TRL's DPOTrainer on tiny:random."""

from __future__ import annotations

import json

import pytest

from conftest_train import TINY, adapters_differ, breakdown, make_data
from kgreason.config import DPOOptions, TrainOptions
from kgreason.runs.folder import Run
from kgreason.train.dpo import PAIRS_FILE, is_chosen, question_pairs


def test_chosen_needs_a_correct_answer_and_a_faithful_trace() -> None:
    assert is_chosen(breakdown(1.0))
    assert not is_chosen(breakdown(1.0, faithful=False)), "a right answer over a made-up hop is rejected"
    assert not is_chosen(breakdown(1.0, correct=False)) and not is_chosen(breakdown(0.0, format_ok=False))


def test_pairs_best_chosen_with_worst_rejected_first() -> None:
    scored = [(0, breakdown(0.9)), (1, breakdown(-1.0, correct=False)), (2, breakdown(1.4)),
              (3, breakdown(0.2, faithful=False)), (4, breakdown(-1.5, format_ok=False, correct=False))]
    assert question_pairs(scored, 1) == [(2, 4)]
    assert question_pairs(scored, 3) == [(2, 4), (2, 1), (0, 4)], "ties: the better chosen first"
    assert len(question_pairs(scored, 99)) == 2 * 3, "never more than chosen x rejected"


def test_no_pair_when_one_side_is_empty() -> None:
    assert question_pairs([(0, breakdown(1.0)), (1, breakdown(1.2))], 4) == []
    assert question_pairs([(0, breakdown(0.0, correct=False))], 4) == []


class PlantedScorer:
    """Marks sample 0 of every question right and faithful, the others wrong: each question gets a pair."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, task, text):
        self.calls += 1
        return breakdown(1.0) if self.calls % 2 == 1 else breakdown(-1.0, correct=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def test_dpo_trains_the_sft_adapter_on_pairs_and_resumes(data, tmp_path, monkeypatch):
    import kgreason.reward.score as score
    from kgreason.train.dpo import run_dpo
    from kgreason.train.phase_model import PhaseModel
    from kgreason.train.sft import train_lora

    # a starting adapter with non-zero LoRA weights, as SFT's is
    sft = tmp_path / "sft"
    from kgreason.tasks.format import reference_completion
    from kgreason.tasks.generate import load_tasks
    from kgreason.train.sft import task_example

    tasks = load_tasks(data / "train_easy.jsonl")[:4]
    train_lora(TINY, [task_example(t, reference_completion(t)) for t in tasks], sft,
               TrainOptions(max_steps=1, batch_size=4, learning_rate=1e-2, save_steps=10))
    monkeypatch.setattr(score, "Scorer", lambda kg, preset=None: PlantedScorer())
    options = DPOOptions(distribution="easy", questions=3, k=2, max_new_tokens=8, backend="hf",
                         train=TrainOptions(max_steps=2, batch_size=2, learning_rate=1e-2, logging_steps=1,
                                            save_steps=10))
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    held = PhaseModel(TINY, options.train.dtype)
    info = run_dpo(run, TINY, data, options, init_adapter=sft, held=held)
    run.close()
    assert info["pairs"] == 3 and info["questions_with_pairs"] == 3 and info["steps"] == 2
    assert run.is_done("dpo") and held.adapter == run.adapter_dir("dpo")
    assert adapters_differ(sft, run.adapter_dir("dpo")), "DPO moved the adapter"
    saved = json.loads((run.adapter_dir("dpo") / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == TINY
    assert not (run.adapter_dir("dpo") / "ref").exists(), "TRL's reference copy is not part of the result"
    pairs = [json.loads(line) for line in (run.adapter_dir("dpo") / PAIRS_FILE).read_text().splitlines()]
    assert [(p["chosen_sample"], p["rejected_sample"]) for p in pairs] == [(0, 1)] * 3
    assert all(p["chosen_reward"]["correct"] and not p["rejected_reward"]["correct"] for p in pairs)
    assert len(list(run.iter_episodes("dpo"))) == 3 * 2
    assert any("loss" in m for m in run.read_metrics("dpo")), "TRL's DPO metrics reach metrics.jsonl"
    # a second call reuses the finished phase
    run2 = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    assert run_dpo(run2, TINY, data, options, init_adapter=sft)["steps"] == 2
    run2.close()


def test_dpo_without_pairs_trains_nothing_and_says_so(data, tmp_path, monkeypatch):
    import kgreason.reward.score as score
    from kgreason.train.dpo import run_dpo

    monkeypatch.setattr(score, "Scorer", lambda kg, preset=None: type("S", (), {"score": lambda s, t, x: breakdown(1.0)})())
    options = DPOOptions(distribution="easy", questions=2, k=2, max_new_tokens=4, backend="hf")
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    info = run_dpo(run, TINY, data, options, init_adapter=_fresh_adapter(tmp_path))
    run.close()
    assert info["pairs"] == 0 and info["adapter"] is None and "trained nothing" in info["warning"]


def _fresh_adapter(tmp_path):
    from kgreason.train.sft import train_lora

    out = tmp_path / "a"
    train_lora(TINY, [{"prompt": [{"role": "user", "content": "q"}],
                       "completion": [{"role": "assistant", "content": "a"}]}], out,
               TrainOptions(max_steps=1, batch_size=1, save_steps=10))
    return out
