"""GRPO on tiny:random: TRL's GRPOTrainer with the KG reward function, LoRA, logged components."""

from __future__ import annotations

import pytest

from conftest_train import TINY, breakdown, lora_b_norm, make_data
from kgreason.config import GRPOOptions, TrainOptions
from kgreason.kg.kgjson import load_kg
from kgreason.records import Episode
from kgreason.reward.score import Scorer
from kgreason.runs.folder import Run
from kgreason.tasks.format import reference_completion
from kgreason.tasks.generate import load_tasks
from kgreason.train.grpo import KGReward, run_grpo


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


# --- kgreason's sampler as TRL's rollout_func -----------------------------------------------------
class _FakeTrainer:
    """What SamplerRollout reads of a GRPOTrainer."""

    def __init__(self, model, num_generations: int) -> None:
        from types import SimpleNamespace

        self.model = model
        self.num_generations = self.num_generations_eval = num_generations
        self.accelerator = SimpleNamespace(unwrap_model=lambda m: m)
        self.state = SimpleNamespace(global_step=3)


def test_sampler_rollout_returns_groups_in_the_prompts_order(data):
    from kgreason.models import load_model
    from kgreason.tasks.format import chat_messages
    from kgreason.train.grpo import SamplerRollout

    model, tokenizer = load_model(TINY, dtype="fp32")
    model.train()
    tasks = load_tasks(data / "train_hard.jsonl")[:2]
    prompts = [chat_messages(t) for t in tasks for _ in range(3)]  # TRL's RepeatSampler order
    options = GRPOOptions(num_generations=3, max_completion_length=10, temperature=1.0)
    out = SamplerRollout(tokenizer, options)(prompts, _FakeTrainer(model, 3))
    assert set(out) == {"prompt_ids", "completion_ids", "logprobs"} and out["logprobs"] is None
    assert len(out["prompt_ids"]) == len(out["completion_ids"]) == 6
    for i, task in enumerate(tasks):
        text = tokenizer.apply_chat_template(chat_messages(task), add_generation_prompt=True, tokenize=False)
        expected = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert all(out["prompt_ids"][3 * i + j] == expected for j in range(3)), "each row carries its own prompt"
    assert all(0 < len(ids) <= 10 for ids in out["completion_ids"]), "the token cap holds"
    assert model.training, "the trainer's model is back in training mode after sampling"
    # same step, same prompts: the same samples (seeded per step, not per call)
    again = SamplerRollout(tokenizer, options)(prompts, _FakeTrainer(model, 3))
    assert again["completion_ids"] == out["completion_ids"]


def test_sampler_rollout_refuses_prompts_not_in_whole_groups(data):
    from kgreason.models import load_model
    from kgreason.tasks.format import chat_messages
    from kgreason.train.grpo import SamplerRollout

    model, tokenizer = load_model(TINY, dtype="fp32")
    a, b = (chat_messages(t) for t in load_tasks(data / "train_hard.jsonl")[:2])
    with pytest.raises(RuntimeError, match="runs of 2"):
        SamplerRollout(tokenizer, GRPOOptions(num_generations=2))([a, b, b, a], _FakeTrainer(model, 2))


def test_rollout_ids_are_the_sampled_tokens_cut_after_the_answer_line():
    """GRPO trains on the tokens the model drew, not on its text re-encoded: the shortest prefix of
    the sampled ids that covers the completion kept after the answer-line cut."""
    from kgreason.models import load_model
    from kgreason.sampling.hf import HFSampler, _Row

    model, tokenizer = load_model(TINY, dtype="fp32")
    sampler = HFSampler(model, tokenizer)
    kept = "1. a is caused by b.\nANSWER: b (B)"
    # an unusual split of the answer line, as sampling at temperature 0.7 may draw it
    drawn = (tokenizer("1. a is caused by b.\nANS", add_special_tokens=False)["input_ids"]
             + tokenizer("WER: b (B)", add_special_tokens=False)["input_ids"]
             + tokenizer("\nmore text", add_special_tokens=False)["input_ids"])
    ids = sampler._sampled_ids(_Row(item=0, sample_index=0, generator=None, tokens=drawn), kept)
    assert ids == drawn[:len(ids)], "a prefix of what was drawn, never re-encoded"
    assert tokenizer.decode(ids, skip_special_tokens=True).startswith(kept)
    assert not tokenizer.decode(ids[:-1], skip_special_tokens=True).startswith(kept), "the shortest such prefix"


def test_grpo_with_kgreason_generation_logs_the_heldout_probe(data, tmp_path):
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    options = GRPOOptions(questions=4, num_generations=2, max_completion_length=8, use_vllm="no",
                          generation="kgreason",
                          train=TrainOptions(batch_size=4, max_steps=2, learning_rate=1e-3, logging_steps=1,
                                             save_steps=1, probe_every=1, probe_items=3))
    info = run_grpo(run, TINY, data, options, kg=load_kg(data / "kg.json"))
    run.close()
    assert info["generation"] == "kgreason" and info["steps"] == 2
    probes = [m for m in run.read_metrics("grpo") if "probe/accuracy" in m]
    assert [m["step"] for m in probes] == [0, 1, 2], "before the first step, then every step"
    assert all(m["probe/items"] == 3 and 0 <= m["probe/faithful"] <= 1 for m in probes)
    assert [p["step"] for p in info["probe"]] == [0, 1, 2]
    rewards = [m for m in run.read_metrics("grpo") if "reward" in m]
    assert rewards and all("kg/correct" in m for m in rewards), "the KG reward reached the trainer"
    assert len(list(run.iter_episodes("grpo"))) == 2 * 4


def test_reward_hacking_note_needs_reward_up_and_probe_down():
    from kgreason.train.probe import reward_hacking_note

    def probe(acc: float) -> dict:
        return {"probe/accuracy": acc, "probe/faithful": 0.0, "probe/format_ok": 1.0}

    rising = [(s, 0.1 * s) for s in range(1, 10)]
    falling = [(s, -0.1 * s) for s in range(1, 10)]
    assert "probe accuracy fell" in reward_hacking_note([(0, probe(0.6)), (9, probe(0.4))], rising)
    assert reward_hacking_note([(0, probe(0.6)), (9, probe(0.4))], falling) is None, "reward fell too"
    assert reward_hacking_note([(0, probe(0.6)), (9, probe(0.58))], rising) is None, "within noise"
    assert reward_hacking_note([(0, probe(0.4)), (9, probe(0.6))], rising) is None
    assert reward_hacking_note([(0, probe(0.6))], rising) is None, "one probe compares nothing"


def test_collapse_note_needs_a_fall_past_the_probes_noise():
    """The collapsed lr 5e-4 run: probe 53.1% -> 28.1%, faithful 43.8% -> 0.0%, reward falling too."""
    from kgreason.train.probe import collapse_note

    def probe(acc: float, faithful: float) -> dict:
        return {"probe/accuracy": acc, "probe/faithful": faithful, "probe/format_ok": 1.0}

    note = collapse_note([(0, probe(0.53125, 0.4375)), (7, probe(0.5, 0.4)), (14, probe(0.28125, 0.0))])
    assert note.startswith("held-out probe accuracy fell from 53.1% to 28.1% (steps 0-14, faithful 43.8% -> 0.0%)")
    assert collapse_note([(0, probe(0.53, 0.44)), (14, probe(0.38, 0.3))]) is None, "15 points: within a 32-item probe's noise"
    assert collapse_note([(0, probe(0.53, 0.44))]) is None
