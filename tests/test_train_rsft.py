"""RSFT end to end on tiny:random: two rounds, selection on real scores, training, resume.

A random model never answers correctly, so a wrapper around the real sampler plants the reference
completion as sample 0 of every question: the rest of the pipeline (scoring with the KG reward,
selection, fine-tuning, logs) runs for real on known inputs.
"""

from __future__ import annotations

from collections import Counter

import pytest

from conftest_train import TINY, adapters_differ, lora_b_norm, make_data
from kgreason.config import RSFTOptions, TrainOptions
from kgreason.records import Episode
from kgreason.runs.folder import Run
from kgreason.tasks.format import reference_completion
from kgreason.tasks.generate import load_tasks
from kgreason.train.rsft import run_rsft
from kgreason.train.tracking import SimulatedInterruption


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


class PlantingSampler:
    """The real sampler, with sample 0 replaced by the task's reference answer; can fail on a call."""

    def __init__(self, inner, tasks, fail_on_call: int | None = None) -> None:
        self.inner, self.tasks, self.fail_on_call = inner, tasks, fail_on_call
        self.calls = 0
        self.items_seen: list[str] = []

    def generate(self, items, params, progress=True):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise SimulatedInterruption("sampler interrupted")
        self.items_seen += [tid for tid, _ in items]
        out = self.inner.generate(items, params, progress=progress)
        for c in out:
            if c.sample_index == 0:
                c.text = reference_completion(self.tasks[c.task_id])
        return out


def planting_factory(data, log: list, fail_on_call: int | None = None):
    from kgreason.sampling import get_sampler

    tasks = {t.id: t for t in load_tasks(data / "train_easy.jsonl")}

    def factory(model, tokenizer, backend):
        sampler = PlantingSampler(get_sampler(model, tokenizer, backend="hf"), tasks, fail_on_call)
        log.append(sampler)
        return sampler

    return factory


def _options(**kw) -> RSFTOptions:
    train = TrainOptions(max_steps=2, batch_size=2, max_length=192, save_steps=1, logging_steps=1)
    return RSFTOptions(**{"rounds": 2, "k": 2, "questions": 3, "max_new_tokens": 8, "chunk": 2, "train": train, **kw})


def test_rsft_two_rounds_select_correct_winners_and_train(data, tmp_path):
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    samplers: list = []
    info = run_rsft(run, TINY, data, _options(), init_adapter=None, sampler_factory=planting_factory(data, samplers))
    run.close()

    episodes = [Episode.from_dict(r) for r in run.iter_episodes("rsft")]
    assert Counter(e.round for e in episodes) == {1: 6, 2: 6}, "k=2 samples for each of 3 questions, per round"
    kept = [e for e in episodes if e.kept]
    assert len(kept) == 6 and all(e.sample_index == 0 for e in kept)
    assert all(e.reward.correct and e.reward.format_ok for e in kept), "winners are correct and well formed"
    assert not any(e.reward.correct for e in episodes if e.sample_index == 1), "the random model never is"

    per_question = [m for m in run.read_metrics("rsft") if "pass_rate" in m and "task_id" in m]
    assert len(per_question) == 6 and all(m["pass_rate"] == 0.5 and m["kept"] == 1 for m in per_question)
    assert all(m["best_reward"] is not None for m in per_question)

    assert info["rounds_done"] == 2 and [r["steps"] for r in info["rounds"]] == [2, 2]
    assert [r["winners"] for r in info["rounds"]] == [3, 3]
    r1, r2 = run.adapter_dir("rsft") / "round-1", run.adapter_dir("rsft") / "round-2"
    assert lora_b_norm(r1) > 0, "round 1 trained the adapter"
    assert adapters_differ(r1, r2), "round 2 continued training from round 1"
    assert not adapters_differ(r2, run.adapter_dir("rsft")), "the final adapter is the last round's"
    assert run.is_done("rsft")
    assert len(samplers) == 2, "one sampler per round (round 2 samples from round 1's model)"


def test_rsft_resumes_after_the_last_finished_question(data, tmp_path):
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    options = _options(rounds=1, frontier=True)
    samplers: list = []
    with pytest.raises(SimulatedInterruption):  # the 2nd sampling call (questions 3) fails
        run_rsft(run, TINY, data, options, init_adapter=None, sampler_factory=planting_factory(data, samplers, 2))
    first = samplers[0].items_seen
    assert len(set(first)) == 2 and not run.is_done("rsft")

    info = run_rsft(run, TINY, data, options, init_adapter=None, sampler_factory=planting_factory(data, samplers))
    run.close()
    resumed = samplers[1].items_seen
    assert len(set(resumed)) == 1 and not set(resumed) & set(first), "finished questions are not sampled again"
    episodes = list(run.iter_episodes("rsft", 1))
    assert Counter(e["task_id"] for e in episodes) == dict.fromkeys(set(first) | set(resumed), 2)
    assert info["rounds"][0]["winners"] == 3 and info["rounds"][0]["on_frontier"] == 3


def test_rsft_logs_the_heldout_probe_each_round(data, tmp_path):
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    options = _options(rounds=2)
    options.train.probe_every, options.train.probe_items = 1, 2
    info = run_rsft(run, TINY, data, options, init_adapter=None, sampler_factory=planting_factory(data, []))
    run.close()
    probes = [m for m in run.read_metrics("rsft") if "probe/accuracy" in m]
    assert sorted({(m["round"], m["step"]) for m in probes}) == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert len(info["probe"]) == 6 and all(m["probe/items"] == 2 for m in probes)
