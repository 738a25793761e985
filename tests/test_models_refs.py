"""Model references, dtype choice, the tiny model and clear errors for bad model files (no bundled model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgreason.io import InputError
from kgreason.models import load_model, load_tokenizer, prepare_model, resolve_model_ref
from kgreason.models.dtype import resolve_dtype


def test_bundled_and_tiny_refs_resolve_to_canonical_names():
    assert resolve_model_ref("bundled:smollm2-135m").ref == "bundled:smollm2-135m"
    assert resolve_model_ref("bundled").kind == "bundled"
    tiny = resolve_model_ref("tiny:random:7")
    assert (tiny.kind, tiny.seed, tiny.ref) == ("tiny", 7, "tiny:random:7")
    with pytest.raises(InputError, match="tiny:random"):
        resolve_model_ref("tiny:big")


def test_missing_model_file_names_it(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(InputError, match=r"nope\.gguf: model file not found"):
        resolve_model_ref(missing)
    with pytest.raises(InputError, match="not found; expected bundled:smollm2-135m"):
        resolve_model_ref(tmp_path / "no-such-folder")


def test_unsupported_model_files_are_rejected_clearly(tmp_path):
    fake = tmp_path / "weights.gguf"
    fake.write_text("this is not a gguf file")
    with pytest.raises(InputError, match=r"weights\.gguf: not a GGUF file"):
        resolve_model_ref(fake)
    other = tmp_path / "model.bin"
    other.write_bytes(b"\0" * 16)
    with pytest.raises(InputError, match=r"model\.bin: unsupported model file"):
        resolve_model_ref(other)
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(InputError, match="no config.json"):
        resolve_model_ref(folder)


def test_gguf_of_unsupported_architecture_is_a_clear_error(tmp_path):
    gguf = pytest.importorskip("gguf")  # a declared dependency; only the writer is used here
    path = tmp_path / "alien.gguf"
    writer = gguf.GGUFWriter(str(path), "alienformer")
    writer.add_tensor("blk.0.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(InputError, match=r"alien\.gguf"):
        prepare_model(path, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-built left behind


def test_dtype_names_and_override():
    assert resolve_dtype("fp32") is torch.float32
    assert resolve_dtype("bf16") is torch.bfloat16
    assert resolve_dtype(None, "cpu") in (torch.bfloat16, torch.float32)
    with pytest.raises(InputError, match="unknown dtype"):
        resolve_dtype("int3")


def test_tiny_model_is_deterministic_and_matches_the_tokenizer():
    a, tok = load_model("tiny:random", dtype="fp32")
    b, _ = load_model("tiny:random", dtype="fp32")
    c, _ = load_model("tiny:random:1", dtype="fp32")
    assert a.get_input_embeddings().weight.shape[0] == len(tok)
    assert torch.equal(a.model.layers[0].mlp.up_proj.weight, b.model.layers[0].mlp.up_proj.weight)
    assert not torch.equal(a.model.layers[0].mlp.up_proj.weight, c.model.layers[0].mlp.up_proj.weight)
    assert a.kgreason_ref == "tiny:random" and a.dtype is torch.float32
    assert load_model("tiny:random", dtype="bf16")[0].dtype is torch.bfloat16
    # Each call builds a model of its own (a copy of one made per process): training one changes no other,
    # and its tied head stays tied to its own embedding.
    with torch.no_grad():
        a.model.layers[0].mlp.up_proj.weight.add_(1.0)
        a.get_input_embeddings().weight.zero_()
    d, _ = load_model("tiny:random", dtype="fp32")
    assert torch.equal(d.model.layers[0].mlp.up_proj.weight, b.model.layers[0].mlp.up_proj.weight)
    assert torch.equal(d.get_input_embeddings().weight, b.get_input_embeddings().weight)
    assert a.lm_head.weight.abs().sum() == 0 and d.lm_head.weight is d.get_input_embeddings().weight


def test_tiny_tokenizer_is_the_real_chat_tokenizer():
    tok = load_tokenizer("tiny:random")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id is not None
    assert tok.padding_side == "left"
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")


def test_saved_tokenizer_lists_its_added_tokens_and_loads_as_the_plain_save_does(tmp_path):
    """models.gguf.save_tokenizer adds "added_tokens_decoder" to tokenizer_config.json (so a load skips
    a second parse of tokenizer.json); the tokenizer it gives must be the one a plain save gives."""
    import json

    from transformers import AutoTokenizer

    from kgreason.models.gguf import save_tokenizer

    tok = load_tokenizer("tiny:random")
    save_tokenizer(tok, tmp_path / "listed")
    tok.save_pretrained(tmp_path / "plain")
    listed = json.loads((tmp_path / "listed" / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    assert listed["2"]["content"] == "<|im_end|>" and listed["2"]["special"] is True
    plain_config = json.loads((tmp_path / "plain" / "tokenizer_config.json").read_text())
    assert "added_tokens_decoder" not in plain_config  # else the speed-up is moot: transformers writes it itself
    a = AutoTokenizer.from_pretrained(str(tmp_path / "listed"))
    b = AutoTokenizer.from_pretrained(str(tmp_path / "plain"))
    text = "<|im_start|>user\nTLSHandshakeError is caused by?<|im_end|>\n<|im_start|>assistant\nANSWER: B<|endoftext|>"
    assert a(text)["input_ids"] == b(text)["input_ids"] and len(a) == len(b)
    assert a.added_tokens_decoder == b.added_tokens_decoder and a.all_special_tokens == b.all_special_tokens
    chat = [{"role": "user", "content": "hi"}]
    assert a.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == \
        b.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
