"""Models: references, GGUF conversion, the tiny test model, dtype choice and LoRA helpers.

    model, tokenizer = load_model("bundled:smollm2-135m")            # converts the GGUF once
    model, tokenizer = load_model("tiny:random")                       # tests and dry runs
    model, tokenizer = load_model(None, adapter="runs/x/adapters/sft") # base ref read from the adapter
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgreason.models.refs import ModelRef, hf_folder, prepare_model, resolve_model_ref

if TYPE_CHECKING:
    import torch

__all__ = [
    "ModelRef",
    "default_dtype",
    "hf_folder",
    "load_model",
    "load_tokenizer",
    "prepare_model",
    "resolve_model_ref",
]


def default_dtype(device: Any = None) -> torch.dtype:
    from kgreason.models.dtype import default_dtype as _default_dtype

    return _default_dtype(device)


def load_tokenizer(ref: str | Path):
    """The tokenizer of a reference (left padding, pad token set), without loading weights."""
    from kgreason.models.tokenizers import tokenizer_from_folder

    mref = resolve_model_ref(ref)
    if mref.kind == "tiny":
        from kgreason.models.tiny import bundled_tokenizer_folder

        folder = bundled_tokenizer_folder()
    else:
        folder = hf_folder(ref)
    tok = tokenizer_from_folder(folder)
    tok.padding_side = "left"  # decoder-only batched generation pads on the left
    return tok


def load_model(
    ref: str | Path | None,
    adapter: str | Path | None = None,
    dtype: Any = None,
    device: Any = None,
    *,
    trainable: bool = False,
    merge: bool = False,
):
    """Load (model, tokenizer) for a reference, optionally with a LoRA adapter on top.

    `ref=None` with an adapter reloads the base the adapter was trained on (kgreason_base.json).
    `dtype` is a torch dtype, a name ("bf16", "fp32") or None for the device default.
    `trainable` keeps adapter weights trainable; `merge` folds the adapter in for fast sampling.
    The model carries `kgreason_ref` / `kgreason_adapter` so samplers can record provenance.
    """
    from kgreason.console import quiet_libraries
    from kgreason.models.dtype import default_device, resolve_dtype

    quiet_libraries()  # every torch-side command loads a model first: library chatter off the console from here
    if ref is None:
        if adapter is None:
            from kgreason.io import InputError

            raise InputError("load_model needs a model reference or an adapter folder")
        from kgreason.models.lora import read_adapter_base

        ref = read_adapter_base(adapter)
    device = str(device or default_device())
    torch_dtype = resolve_dtype(dtype, device)
    mref = resolve_model_ref(ref)
    from kgreason.memory import freeze_library_objects

    freeze_library_objects()  # before any model or tokenizer exists
    tokenizer = load_tokenizer(ref)
    if mref.kind == "tiny":
        from kgreason.models.tiny import build_tiny_model

        model = build_tiny_model(tokenizer, seed=mref.seed, dtype=torch_dtype)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(hf_folder(ref)), dtype=torch_dtype)
    model.to(device)
    if adapter is not None:
        from kgreason.models.lora import load_adapter, merge_adapter

        model = load_adapter(model, adapter, trainable=trainable)
        if merge:
            model = merge_adapter(model)
    if not trainable:
        model.eval()
    model.kgreason_ref = mref.ref
    model.kgreason_adapter = str(Path(adapter).resolve()) if adapter is not None else None
    return model, tokenizer
