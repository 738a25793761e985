"""SFT on tiny:random: material flags, training changes the adapter, resume after an interruption."""

from __future__ import annotations

import pytest

from conftest_train import TINY, lora_b_norm, make_data
from kgreason.io import InputError, read_jsonl
from kgreason.train.runs import Run
from kgreason.train.sft import SFTOptions, TrainOptions, load_material, run_sft
from kgreason.train.tracking import InterruptAfterStep, SimulatedInterruption


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def test_material_flags_and_trace_styles(data):
    easy_full = load_material(data, SFTOptions(material=["easy"], trace_style="full"))
    easy_short = load_material(data, SFTOptions(material=["easy"], trace_style="short"))
    facts = load_material(data, SFTOptions(material=["facts"], max_examples=5))
    both = load_material(data, SFTOptions(material=["facts", "hard"], max_examples=3))
    assert len(easy_full) == 24 and len(facts) == 5 and len(both) == 6
    ex = easy_full[0]
    assert [m["role"] for m in ex["prompt"]] == ["system", "user"] and ex["completion"][0]["role"] == "assistant"
    full = [e["completion"][0]["content"] for e in easy_full]
    short = [e["completion"][0]["content"] for e in easy_short]
    assert all(c.startswith("TRACE: ") and "\nANSWER: " in c for c in full)
    assert all(len(s) <= len(f) for s, f in zip(short, full, strict=True)) and short != full
    mixed = [e["completion"][0]["content"] for e in
             load_material(data, SFTOptions(material=["easy"], trace_style="mix", short_share=0.5))]
    assert mixed != full and mixed != short and set(mixed) <= set(full) | set(short)
    assert facts[0]["prompt"][0]["content"].startswith("Complete the fact:")
    with pytest.raises(InputError, match="--material"):
        load_material(data, SFTOptions(material=["eval"]))


def test_sft_trains_the_adapter_and_resumes_after_interruption(data, tmp_path):
    options = SFTOptions(material=["easy"], max_examples=8,
                         train=TrainOptions(max_steps=4, batch_size=2, max_length=192, save_steps=2, logging_steps=1))
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    with pytest.raises(SimulatedInterruption):
        run_sft(run, TINY, data, options, callbacks=[InterruptAfterStep(3)])
    assert not run.is_done("sft")
    assert (run.adapter_dir("sft") / "checkpoint-2").is_dir(), "the checkpoint before the crash is the resume point"
    steps_before = [m["step"] for m in read_jsonl(run.metrics_path) if "loss" in m]
    assert steps_before == [1, 2]  # step 3 ran but crashed before its log line and its checkpoint

    info = run_sft(run, TINY, data, options)
    assert info["resumed_from"].endswith("checkpoint-2") and info["steps"] == 4
    steps_after = [m["step"] for m in read_jsonl(run.metrics_path) if "loss" in m][len(steps_before):]
    assert steps_after == [3, 4], "only the steps after the checkpoint are trained again"
    adapter = run.adapter_dir("sft")
    assert (adapter / "adapter_config.json").exists() and (adapter / "kgreason_base.json").exists()
    assert not list(adapter.glob("checkpoint-*")), "checkpoints are dropped once the phase is done"
    assert lora_b_norm(adapter) > 0, "training moved LoRA B away from its zero initialisation"

    finished = run.phase_info("sft")["finished"]
    assert run_sft(run, TINY, data, options)["finished"] == finished, "a finished phase is not redone"
    run.close()
