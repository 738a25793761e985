"""The OpenVINO GenAI backend on the tiny model: the model kgreason holds (its LoRA adapter merged
into a copy) written to GGUF and decoded by the engine gives the hf backend's greedy answers."""

from __future__ import annotations

import pytest

from kgreason.models import load_model
from kgreason.sampling import SamplingParams
from kgreason.sampling.hf import HFSampler
from kgreason.sampling.openvino_backend import OpenVINOSampler

ITEMS = [
    ("short", [{"role": "user", "content": "Which fix?"}]),
    ("long", [{"role": "user", "content": "TLSHandshakeError is caused by what, and which tool diagnoses it? " * 3}]),
    ("mid", [{"role": "user", "content": "Follow caused_by then fixed_by from DiskFull."}]),
]


def _adapted_tiny() -> tuple:
    """tiny:random with a non-zero LoRA adapter (so merging it matters, and the prompts' answers differ)."""
    import torch
    from peft import LoraConfig, get_peft_model

    model, tok = load_model("tiny:random", dtype="fp32")
    # lora_A is drawn from torch's global generator: seeded here, so the adapter (and how close its
    # greedy answers come to a tie) does not depend on which tests ran before in this process
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return peft, tok


@pytest.fixture(scope="module")
def adapted():
    """The adapted tiny model and one engine built from it (writing and compiling it takes seconds)."""
    peft, tok = _adapted_tiny()
    engine = OpenVINOSampler(peft, tok, precision="f32")
    try:
        yield peft, tok, engine
    finally:
        engine.close()


def test_greedy_answers_equal_the_hf_backend_with_a_lora_adapter(adapted) -> None:
    peft, tok, engine = adapted
    params = SamplingParams(k=1, temperature=0.0, max_new_tokens=24)
    ours = HFSampler(peft, tok).generate(ITEMS, params, progress=False)
    theirs = engine.generate(ITEMS, params, progress=False)
    assert [c.task_id for c in theirs] == [t for t, _ in ITEMS]
    assert [c.text for c in theirs] == [c.text for c in ours]
    assert [c.completion_tokens for c in theirs] == [c.completion_tokens for c in ours]
    # the adapter was merged into a copy: the model held is still the PEFT model it was
    assert any("lora_B" in n for n, _ in peft.named_parameters())


def test_sampling_gives_k_answers_per_prompt_in_order(adapted) -> None:
    """With a nucleus so small that sampling is greedy, each prompt's k samples are that prompt's
    greedy answer: a result handed to the wrong prompt or sample would show."""
    _, _, engine = adapted
    greedy = engine.generate(ITEMS, SamplingParams(k=1, temperature=0.0, max_new_tokens=8), progress=False)
    out = engine.generate(ITEMS, SamplingParams(k=3, temperature=1.0, top_p=1e-6, max_new_tokens=8, seed=1),
                          progress=False)
    assert len({c.text for c in greedy}) == len(ITEMS), "the prompts' greedy answers differ from each other"
    by_prompt = {c.task_id: c.text for c in greedy}
    assert [(c.task_id, c.sample_index) for c in out] == [(t, j) for t, _ in ITEMS for j in range(3)]
    assert all(c.text == by_prompt[c.task_id] for c in out)


def test_the_callers_model_is_left_as_it_was(monkeypatch) -> None:
    """The model goes to the engine as a GGUF file written from a float32 copy; the engine itself
    only reads that file, so a stand-in for it (no seconds of compiling) is enough here (the real
    engine is built by the `adapted` fixture)."""
    import openvino_genai
    import torch

    read: list[str] = []
    monkeypatch.setattr(openvino_genai, "LLMPipeline", lambda path, device, **properties: read.append(path))
    model, tok = load_model("tiny:random", dtype="bf16")
    OpenVINOSampler(model, tok).close()
    assert len(read) == 1 and read[0].endswith(".gguf")
    assert next(model.parameters()).dtype == torch.bfloat16


def test_the_kv_cache_and_the_kernels_stay_fp32_unless_asked(monkeypatch) -> None:
    """The engine's default compresses the KV cache (u8 on CPU), which moved 3 of 150 answers of the
    quick RSFT model, and runs bf16 kernels on AMX, which got most answers wrong there; the backend
    asks for f32 for both, and None keeps the engine's default."""
    import openvino_genai

    seen: list[dict] = []

    class Engine:
        def __init__(self, path: str, device: str, **properties) -> None:
            seen.append(properties)

    monkeypatch.setattr(openvino_genai, "LLMPipeline", Engine)
    model, tok = load_model("tiny:random", dtype="fp32")
    OpenVINOSampler(model, tok).close()
    OpenVINOSampler(model, tok, kv_cache_precision=None).close()
    OpenVINOSampler(model, tok, precision=None, kv_cache_precision=None).close()
    assert seen == [{"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"},
                    {"INFERENCE_PRECISION_HINT": "f32"}, {}]
