"""`kgreason export model`: a run's LoRA adapter merged into its base, as a plain Hugging Face folder.

The folder (config.json, model.safetensors, tokenizer files, generation_config.json) loads with
`transformers.AutoModelForCausalLM.from_pretrained(DIR)` alone: nothing in it needs kgreason.
`kgreason_export.json` beside it records where it came from (run, phase, base reference, adapter).
With `gguf_type`, `gguf/model-<type>.gguf` is written too (kgreason.models.gguf_export).

Why merge in float32 whatever the training dtype: W + B·A·scale is computed once here, and doing it
in bf16 would round the small LoRA delta away against the large base weights.
Why a temporary folder and a rename: a crash must leave the previous export or nothing, never a
folder with a config and half a weights file that `from_pretrained` would try to load.
"""

from __future__ import annotations

import time
from pathlib import Path

from kgreason.io import InputError, atomic_write_json, staged_dir
from kgreason.phases import training_phases

# in pipeline order (kgreason/phases.py): the default is the last one done; a plugin's phase joins at run time
TRAIN_PHASES = training_phases(plugins=False)
EXPORT_FILE = "kgreason_export.json"
# In a subfolder: transformers, given a folder with both HF tokenizer files and gguf_file=, reads
# neither tokenizer properly (no eos, no chat template); alone in its folder the GGUF loads whole.
GGUF_DIR = "gguf"
SAVE_DTYPES = ("fp32", "bf16", "fp16")


def phase_adapter(run_dir: str | Path, phase: str | None = None) -> tuple[str, Path]:
    """(phase, adapter folder) of a run: `phase`, or the last training phase marked done."""
    from kgreason.runs.folder import Run

    run = Run.load(run_dir)
    phases = training_phases()

    def usable(name: str) -> bool:
        return run.is_done(name) and (run.adapter_dir(name) / "adapter_config.json").is_file()

    if phase is not None:
        if phase not in phases:
            raise InputError(f"phase {phase!r}: expected one of {', '.join(phases)}")
        if not usable(phase):
            done = [p for p in phases if usable(p)]
            raise InputError(f"{run.root}: phase {phase} has no finished adapter (adapters/{phase}); "
                             f"finished: {', '.join(done) or 'none'}")
        return phase, run.adapter_dir(phase)
    done = [p for p in phases if usable(p)]
    if not done:
        raise InputError(f"{run.root}: no finished training phase with an adapter "
                         f"({', '.join(phases)}); train one first (`kgreason run` or `kgreason train sft`)")
    return done[-1], run.adapter_dir(done[-1])


def _check_out(out: Path) -> None:
    # Refuse to swap out a folder that is not an earlier export: --out . would otherwise delete it.
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / EXPORT_FILE).is_file())):
        raise InputError(f"{out}: exists and is not an earlier `kgreason export model` folder; "
                         "choose a new --out")


def _source_gguf(base_ref: str) -> Path | None:
    """The GGUF file the base model came from (its tokenizer's pre-tokenizer name is read there)."""
    import json

    from kgreason.models.gguf import bundled_gguf_path
    from kgreason.models.refs import resolve_model_ref

    mref = resolve_model_ref(base_ref)
    try:
        if mref.kind in ("tiny", "bundled"):
            return bundled_gguf_path()
        if mref.kind == "gguf":
            return mref.source
        provenance = Path(mref.path or "") / "kgreason_source.json"
        if provenance.is_file():
            return Path(json.loads(provenance.read_text(encoding="utf-8"))["source"])
    except (InputError, KeyError, ValueError, OSError):
        return None
    return None


def export_model(run_dir: str | Path, out: str | Path, phase: str | None = None, dtype: str = "fp32",
                 gguf_type: str | None = None) -> dict:
    """Merge the run's adapter for `phase` into its base and write `out`; returns a summary."""
    from kgreason.models.lora import read_adapter_base
    from kgreason.runs.folder import git_revision, now_iso

    # Every input is checked before torch is imported or a model loads: a typo fails in a moment.
    if dtype not in SAVE_DTYPES:
        raise InputError(f"dtype {dtype!r}: expected one of {', '.join(SAVE_DTYPES)}")
    if gguf_type is not None and gguf_type not in ("f16", "f32"):
        raise InputError(f"GGUF type {gguf_type!r}: expected f16 or f32")
    out = Path(out).expanduser()
    _check_out(out)
    phase, adapter = phase_adapter(run_dir, phase)
    base_ref = read_adapter_base(adapter)
    from kgreason.models.refs import resolve_model_ref

    resolve_model_ref(base_ref)  # a base that is gone (a moved folder, a deleted GGUF) fails here

    import torch

    from kgreason.models import load_model
    from kgreason.models.dtype import resolve_dtype

    start = time.perf_counter()
    model, tokenizer = load_model(base_ref, adapter=adapter, dtype=torch.float32, device="cpu", merge=True)
    if any("lora_" in name for name, _ in model.named_parameters()):  # merge_and_unload left wrappers
        raise InputError(f"{adapter}: the adapter did not merge into the base model")
    model = model.to(resolve_dtype(dtype))
    # Generation stops at the chat turn's end, as kgreason's samplers do.
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.parent.mkdir(parents=True, exist_ok=True)
    with staged_dir(out) as tmp:
        from kgreason.models.tokenizers import save_tokenizer

        model.save_pretrained(tmp, safe_serialization=True)
        save_tokenizer(tokenizer, tmp)
        gguf_info = None
        if gguf_type is not None:
            from kgreason.models.gguf_export import write_gguf

            (tmp / GGUF_DIR).mkdir()
            gguf_info = write_gguf(model, tmp, tokenizer, tmp / GGUF_DIR / f"model-{gguf_type}.gguf", gguf_type=gguf_type,
                                   name=f"kgreason {Path(run_dir).resolve().name} {phase}",
                                   source_gguf=_source_gguf(base_ref))
        rev, dirty = git_revision()
        summary = {
            "run": str(Path(run_dir).resolve()), "phase": phase, "adapter": str(adapter.resolve()),
            "base": base_ref, "dtype": dtype, "parameters": sum(p.numel() for p in model.parameters()),
            "gguf": gguf_info, "exported": now_iso(), "git_revision": rev, "git_dirty": dirty,
            "seconds": round(time.perf_counter() - start, 1),
        }
        atomic_write_json(tmp / EXPORT_FILE, summary)
    return {**summary, "folder": str(out)}
