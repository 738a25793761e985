"""GRPO on tiny:random: TRL's GRPOTrainer with the KG reward function, LoRA, logged components."""

from __future__ import annotations

import pytest

from conftest_train import TINY, breakdown, lora_b_norm, make_data
from kgreason.config import GRPOOptions, TrainOptions
from kgreason.kg.io import load_kg
from kgreason.records import Episode
from kgreason.reward.score import Scorer
from kgreason.tasks.format import reference_completion
from kgreason.tasks.generate import load_tasks
from kgreason.train.grpo import KGReward, run_grpo
from kgreason.train.runs import Run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def test_kg_reward_function_scores_logs_episodes_and_components(data, tmp_path):
    task = load_tasks(data / "train_easy.jsonl")[0]
    run = Run.create_or_resume(tmp_path / "run", {})
    reward = KGReward(Scorer(load_kg(data / "kg.json")), {task.id: task}, run)
    logged: dict[str, float] = {}

    class State:
        global_step = 7

    good = [{"role": "assistant", "content": reference_completion(task)}]
    rewards = reward(prompts=[None, None], completions=[good, "no idea"], task_id=[task.id, task.id],
                     trainer_state=State(), log_metric=logged.__setitem__)
    run.close()
    assert rewards[0] > rewards[1]
    assert logged["kg/correct"] == 0.5 and logged["kg/format_ok"] == 0.5 and "kg/faithful" in logged
    eps = [Episode.from_dict(r) for r in run.iter_episodes("grpo")]
    assert [(e.step, e.sample_index, e.reward.correct) for e in eps] == [(7, 0, True), (7, 1, False)]


class LengthScorer:
    """A reward with spread on random text (so group advantages are non-zero): distinct characters."""

    def score(self, task, text):
        return breakdown(total=len(set(text)) / 10.0, correct=False)


def test_grpo_trains_lora_with_a_python_reward(data, tmp_path):
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    options = GRPOOptions(questions=4, num_generations=2, max_completion_length=12, beta=0.04, use_vllm="no",
                          train=TrainOptions(batch_size=4, max_steps=2, learning_rate=1e-3, logging_steps=1,
                                             save_steps=1))
    from kgreason.train.phase_model import PhaseModel

    held = PhaseModel(TINY, options.train.dtype)
    info = run_grpo(run, TINY, data, options, scorer=LengthScorer(), held=held)
    run.close()
    assert info["steps"] == 2 and run.is_done("grpo") and info["use_vllm"] is False
    assert info["model_loads"] == 1 and held.adapter == run.adapter_dir("grpo"), "the trained model stays held"
    assert lora_b_norm(run.adapter_dir("grpo")) > 0, "the policy-gradient steps changed the adapter"
    eps = list(run.iter_episodes("grpo"))
    assert len(eps) == 2 * 4, "every completion of both steps is an episode (2 steps x 4 completions)"
    logs = [m for m in run.read_metrics("grpo") if "reward" in m]
    assert logs and all("kg/correct" in m and "kl" in m for m in logs), "TRL metrics and reward components"
