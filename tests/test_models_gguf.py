"""The bundled SmolLM2-135M GGUF → HF folder conversion, and its tokenizer.

The converted folder is built once per machine in the kgreason cache (the first run of this module
does the conversion, about 40 s on 2 cores) and shared by these tests through a session fixture.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from kgreason.models import load_model, load_tokenizer, prepare_model
from kgreason.models.gguf import bundled_gguf_path

pytestmark = pytest.mark.slow

BUNDLED = "bundled:smollm2-135m"


@pytest.fixture(scope="session")
def converted():
    folder, _ = prepare_model(BUNDLED)
    return folder


def test_converted_folder_is_a_plain_unquantized_model(converted):
    config = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    source = json.loads((converted / "kgreason_source.json").read_text())
    assert source["source"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    # Cached: a second prepare reuses the folder instead of converting again.
    start = time.perf_counter()
    again, built = prepare_model(BUNDLED)
    assert (again, built) == (converted, False) and time.perf_counter() - start < 5


def test_saved_weights_equal_the_dequantized_gguf_tensors(converted):
    gguf = pytest.importorskip("gguf")
    from safetensors import safe_open

    reader = gguf.GGUFReader(str(bundled_gguf_path()))
    tensors = {t.name: t for t in reader.tensors}
    with safe_open(str(converted / "model.safetensors"), "pt") as f:
        for gguf_name, hf_name in [
            ("token_embd.weight", "model.embed_tokens.weight"),  # Q8_0
            ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight"),  # Q4_1
            ("blk.29.attn_norm.weight", "model.layers.29.input_layernorm.weight"),  # F32
        ]:
            t = tensors[gguf_name]
            expected = gguf.quants.dequantize(t.data, t.tensor_type)
            saved = f.get_tensor(hf_name).numpy()
            np.testing.assert_array_equal(expected.reshape(saved.shape), saved)


@pytest.mark.parametrize(
    "text",
    [
        "TLSHandshakeError is caused by ClockSkew.",
        "OOMKilledPod leads to CrashLoopBackOff; kubectl describe pod (exit 137)!",
        "0 1 2 3 42 137 2048 3.14159 -7 1e-5 99%",
        "TRACE: A is fixed by B. B uses C.\nANSWER: D",
        "  leading spaces, tabs\tand unicode → ✓ café",
    ],
)
def test_tokenizer_round_trips(converted, text):
    tok = load_tokenizer(BUNDLED)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text


def test_tokenizer_special_tokens_and_chat_template(converted):
    tok = load_tokenizer(BUNDLED)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert tok.convert_tokens_to_ids("<|im_end|>") == tok.eos_token_id == 2
    assert tok.padding_side == "left"
    # Plain encoding adds nothing: the chat template carries the special tokens.
    assert tok("hi")["input_ids"] == tok("hi", add_special_tokens=False)["input_ids"]
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "TLSHandshakeError?"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTLSHandshakeError?<|im_end|>\n"
                    "<|im_start|>assistant\n")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids.count(tok.eos_token_id) == 2 and ids.count(tok.bos_token_id) == 3  # special tokens stay single ids


def test_converted_model_is_a_language_model_not_noise(converted):
    model, tok = load_model(BUNDLED, dtype="fp32")
    assert model.config.to_dict().get("quantization_config") is None

    def nll(text: str) -> float:
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            return float(model(input_ids=ids, labels=ids).loss)

    sentence = "The quick brown fox jumps over the lazy dog. Paris is the capital of France."
    scrambled = " ".join(reversed(sentence.split()))
    # A random 49k-vocabulary model scores about ln(49152) = 10.8 nats/token on anything.
    assert nll(sentence) < 4.0 < nll(scrambled)
