"""LoRA: save, reload from the adapter folder alone, and merge with identical logits."""

from __future__ import annotations

import json

import pytest
import torch

from kgreason.io import InputError
from kgreason.models import load_model
from kgreason.models.lora import attach_lora, merge_adapter, read_adapter_base, save_adapter


@pytest.fixture()
def trained_adapter(tmp_path):
    model, tok = load_model("tiny:random:3", dtype="fp32")
    peft_model = attach_lora(model, r=4, alpha=8, dropout=0.0)
    # LoRA B starts at zero (a no-op adapter); give it weights so equivalence checks mean something.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    peft_model.eval()
    ids = tok("TLSHandshakeError is caused by ClockSkew.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = peft_model(input_ids=ids).logits
    folder = save_adapter(peft_model, tmp_path / "adapters" / "sft")
    return folder, ids, logits


def test_adapter_folder_records_its_base(trained_adapter):
    folder, _, _ = trained_adapter
    assert (folder / "adapter_config.json").is_file()
    assert json.loads((folder / "kgreason_base.json").read_text())["base"] == "tiny:random:3"
    assert read_adapter_base(folder) == "tiny:random:3"


def test_reload_from_adapter_alone_gives_the_same_logits(trained_adapter):
    folder, ids, logits = trained_adapter
    model, _ = load_model(None, adapter=folder, dtype="fp32")
    assert model.kgreason_ref == "tiny:random:3" and model.kgreason_adapter == str(folder.resolve())
    with torch.no_grad():
        reloaded = model(input_ids=ids).logits
    torch.testing.assert_close(reloaded, logits, rtol=0, atol=1e-5)


def test_merged_and_unmerged_give_the_same_logits(trained_adapter):
    folder, ids, logits = trained_adapter
    unmerged, _ = load_model("tiny:random:3", adapter=folder, dtype="fp32")
    merged = merge_adapter(unmerged)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    base, _ = load_model("tiny:random:3", dtype="fp32")
    with torch.no_grad():
        merged_logits = merged(input_ids=ids).logits
        base_logits = base(input_ids=ids).logits
    torch.testing.assert_close(merged_logits, logits, rtol=1e-4, atol=1e-4)
    assert (base_logits - logits).abs().max() > 1e-2  # the adapter really changes the model


def test_missing_adapter_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="adapter folder not found"):
        load_model(None, adapter=tmp_path / "nothing")
    (tmp_path / "bare").mkdir()
    with pytest.raises(InputError, match="no adapter_config.json"):
        load_model("tiny:random", adapter=tmp_path / "bare")
