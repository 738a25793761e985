"""One loaded model per phase (kgreason/train/phase_model.py), on tiny:random.

A phase trains, samples and evaluates the model it loaded once; what the evaluation answers must
equal what the saved adapter, loaded from disk and merged, answers: same texts, token for token.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest_train import TINY, make_data
from kgreason.config import EvalSettings, RSFTOptions, SFTOptions, TrainOptions
from kgreason.kg.kgjson import load_kg
from kgreason.runs.folder import Run
from kgreason.tasks.generate import load_tasks
from kgreason.train.evaluation import evaluate_phase
from kgreason.train.phase_model import PhaseModel, held_for
from kgreason.train.rsft import run_rsft
from kgreason.train.sft import run_sft

TRAIN = TrainOptions(max_steps=3, batch_size=2, max_length=192, save_steps=10, logging_steps=1, learning_rate=5e-3)
EVAL = EvalSettings(max_new_tokens=10, shuffle=False, drift=False, references=False, plots=False, n_resamples=50)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def _answers(run: Run, phase: str) -> dict[str, str]:
    lines = (run.eval_dir(phase) / "predictions.jsonl").read_text().splitlines()
    return {rec["task_id"]: rec["completion"] for rec in map(json.loads, lines)}


def _count_loads(monkeypatch) -> list[str]:
    """Every load_model call from here on (the functions import it at call time)."""
    import kgreason.models as models

    calls: list[str] = []
    real = models.load_model

    def counting(*args, **kwargs):
        calls.append(str(kwargs.get("adapter")))
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load_model", counting)
    return calls


def test_sft_then_its_evaluation_load_the_model_once_and_answer_as_a_reload_does(data, tmp_path, monkeypatch):
    kg, tasks = load_kg(data / "kg.json"), load_tasks(data / "eval.jsonl")
    loads = _count_loads(monkeypatch)
    held = PhaseModel(TINY, TRAIN.dtype)
    run = Run.create_or_resume(tmp_path / "held", {"model_ref": TINY})
    info = run_sft(run, TINY, data, SFTOptions(train=TRAIN), held=held)
    weights = {n: p.detach().clone() for n, p in held.model.named_parameters()}
    row = evaluate_phase(run, "sft", TINY, run.adapter_dir("sft"), tasks, kg, EVAL, held=held)
    run.close()
    assert info["model_loads"] == 1 and len(loads) == 1, "SFT loaded the base once; the evaluation reused it"
    assert row["reused_model"] is True
    after = dict(held.model.named_parameters())
    assert all(torch.equal(after[n], w) for n, w in weights.items()), "evaluating left the weights as trained"

    # The same adapter evaluated the ordinary way: loaded from disk and merged.
    other = Run.create_or_resume(tmp_path / "reloaded", {"model_ref": TINY})
    again = evaluate_phase(other, "sft", TINY, run.adapter_dir("sft"), tasks, kg, EVAL)
    other.close()
    assert again["reused_model"] is False and len(loads) == 2
    held_answers, reloaded_answers = _answers(run, "sft"), _answers(other, "sft")
    assert len(held_answers) == len(tasks) and held_answers == reloaded_answers


def test_an_rsft_phase_of_two_rounds_loads_its_model_once(data, tmp_path, monkeypatch):
    sft_run = Run.create_or_resume(tmp_path / "sft", {"model_ref": TINY})
    run_sft(sft_run, TINY, data, SFTOptions(train=TRAIN))
    sft_run.close()
    loads = _count_loads(monkeypatch)
    held = PhaseModel(TINY, TRAIN.dtype)
    run = Run.create_or_resume(tmp_path / "rsft", {"model_ref": TINY})
    options = RSFTOptions(rounds=2, k=2, questions=3, max_new_tokens=8, chunk=2, frontier=False,
                          train=TrainOptions(max_steps=1, batch_size=2, max_length=192, save_steps=10))
    # A random model wins nothing: plant one correct sample per question so both rounds train.
    from test_train_rsft import planting_factory

    planting, sampled_from = planting_factory(data, []), []

    def factory(model, tokenizer, backend):
        sampled_from.append((id(model), model.kgreason_adapter))
        return planting(model, tokenizer, backend)

    info = run_rsft(run, TINY, data, options, init_adapter=sft_run.adapter_dir("sft"), sampler_factory=factory,
                    held=held)
    assert [r["steps"] for r in info["rounds"]] == [1, 1], "both rounds trained"
    assert info["model_loads"] == 1 and len(loads) == 1, "sampling and training of both rounds share one load"
    assert held.holds(run.adapter_dir("rsft")), "the held weights are the published adapter's"
    assert held_for(held, TINY, run.adapter_dir("rsft"), "auto") is held.model
    row = evaluate_phase(run, "rsft", TINY, run.adapter_dir("rsft"), load_tasks(data / "eval.jsonl"),
                         load_kg(data / "kg.json"), EVAL, held=held)
    run.close()
    assert row["reused_model"] is True and len(loads) == 1
    assert [adapter for _, adapter in sampled_from] == [
        str(sft_run.adapter_dir("sft").resolve()), str((run.adapter_dir("rsft") / "round-1").resolve())
    ], "round 1 sampled SFT's model, round 2 round 1's"
    assert len({model for model, _ in sampled_from}) == 1, "one model object throughout"


def test_a_held_model_of_another_adapter_or_dtype_is_not_reused(tmp_path):
    held = PhaseModel(TINY, "fp32")
    held.load(None)
    assert held_for(held, TINY, None, "fp32") is held.model
    assert held_for(held, TINY, None, "bf16") is None, "another dtype: the evaluation loads its own"
    assert held_for(held, TINY, tmp_path / "some-adapter", "fp32") is None
    assert held_for(held, "tiny:random:1", None, "fp32") is None
    held.release()
    assert held.model is None and held_for(held, TINY, None, "fp32") is None
