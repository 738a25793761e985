"""Tokenizers read once per process (kgreason.models.tokenizers): each caller's object is its own."""

from __future__ import annotations

import shutil

from kgreason.models import load_tokenizer
from kgreason.models.tiny import bundled_tokenizer_folder
from kgreason.models.tokenizers import tokenizer_from_folder


def test_each_caller_gets_its_own_settings_over_one_parse():
    first, second = load_tokenizer("tiny:random"), load_tokenizer("tiny:random")
    assert first is not second and first._tokenizer is second._tokenizer  # one parse, two objects
    second.padding_side = "right"
    second.pad_token = "<|im_start|>"
    third = load_tokenizer("tiny:random")
    assert (first.padding_side, third.padding_side) == ("left", "left")
    assert first.pad_token == third.pad_token == first.eos_token != second.pad_token
    # the shared Rust tokenizer is set up per call: padding in one call does not leak into the next
    padded = first(["a b c d", "a"], padding=True)["input_ids"]
    assert len(padded[0]) == len(padded[1]) and padded[1][0] == first.pad_token_id
    assert first(["a b c d", "a"])["input_ids"] == [padded[0], padded[1][-1:]]


def test_a_changed_folder_is_read_again(tmp_path):
    folder = tmp_path / "tok"
    shutil.copytree(bundled_tokenizer_folder(), folder, ignore=shutil.ignore_patterns("*.safetensors", "*.gguf"))
    before = tokenizer_from_folder(folder)
    config = folder / "tokenizer_config.json"
    config.write_text(config.read_text() + "\n")  # a re-conversion: same meaning, a new file
    after = tokenizer_from_folder(folder)
    assert after._tokenizer is not before._tokenizer
    assert tokenizer_from_folder(folder)._tokenizer is after._tokenizer


def test_a_saved_tokenizer_carries_no_padding_left_by_another_copy(tmp_path):
    import json

    from kgreason.models.tokenizers import save_tokenizer

    first, second = load_tokenizer("tiny:random"), load_tokenizer("tiny:random")
    first(["a b c d", "a"], padding=True, truncation=True, max_length=3)  # leaves both set on the shared backend
    assert first.backend_tokenizer.padding is not None and second.backend_tokenizer.truncation is not None
    save_tokenizer(second, tmp_path)
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    assert saved["padding"] is None and saved["truncation"] is None
