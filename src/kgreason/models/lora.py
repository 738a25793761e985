"""LoRA over PEFT: attach, save (with the base reference), load onto a base, merge for sampling.

An adapter folder is self-describing: next to PEFT's files it holds `kgreason_base.json` with the
kgreason model reference it was trained on, so `load_model(None, adapter=DIR)` rebuilds the model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from kgreason.io import InputError, atomic_write_json, replace_dir

BASE_FILE = "kgreason_base.json"
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_config(r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: list[str] | None = None):
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules or DEFAULT_TARGETS),
        bias="none",
        task_type="CAUSAL_LM",
    )


def attach_lora(model, r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: list[str] | None = None):
    """Wrap `model` in a trainable PEFT LoRA model (base weights frozen)."""
    from peft import get_peft_model

    ref = getattr(model, "kgreason_ref", None)
    peft_model = get_peft_model(model, lora_config(r, alpha, dropout, target_modules))
    if ref is not None:
        peft_model.kgreason_ref = ref
    return peft_model


def save_adapter(model, out_dir: str | Path, base_ref: str | None = None, extra: dict | None = None) -> Path:
    """Save the adapter atomically (temp folder + rename) with the base reference beside it."""
    out_dir = Path(out_dir)
    base_ref = base_ref or getattr(model, "kgreason_ref", None)
    if not base_ref:
        raise ValueError("save_adapter needs base_ref (the kgreason model reference the adapter was trained on)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        atomic_write_json(tmp / BASE_FILE, {"base": base_ref, **(extra or {})})
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _check_adapter_dir(adapter_dir: Path) -> None:
    if not adapter_dir.is_dir():
        raise InputError(f"{adapter_dir}: adapter folder not found")
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InputError(f"{adapter_dir}: not a PEFT adapter folder (no adapter_config.json)")


def read_adapter_base(adapter_dir: str | Path) -> str:
    """The kgreason model reference stored with an adapter."""
    adapter_dir = Path(adapter_dir)
    _check_adapter_dir(adapter_dir)
    path = adapter_dir / BASE_FILE
    if not path.is_file():
        raise InputError(f"{adapter_dir}: no {BASE_FILE}; pass the base model reference explicitly (--model)")
    try:
        base = json.loads(path.read_text(encoding="utf-8"))["base"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InputError(f"{path}: expected a JSON object with a 'base' model reference") from None
    return str(base)


def load_adapter(model, adapter_dir: str | Path, trainable: bool = False):
    """Put a saved adapter on top of a base model (PeftModel)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    _check_adapter_dir(adapter_dir)
    ref = getattr(model, "kgreason_ref", None)
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    if ref is not None:
        peft_model.kgreason_ref = ref
    return peft_model


def merge_adapter(peft_model):
    """Fold LoRA weights into the base weights and drop the wrappers: same outputs, plain-model speed."""
    ref = getattr(peft_model, "kgreason_ref", None)
    merged = peft_model.merge_and_unload()
    if ref is not None:
        merged.kgreason_ref = ref
    return merged


def has_adapter(model) -> bool:
    """Whether `model` is a PEFT model (a LoRA adapter on a base model)."""
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def unwrap_peft(model):
    """The transformers model inside a PeftModel (the model itself when it is not wrapped)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
