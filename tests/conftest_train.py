"""Helpers for the training tests (a plain module, imported by tests/test_train_*.py)."""

from __future__ import annotations

from pathlib import Path

from kgreason.records import ClaimedHop, RewardBreakdown

TINY = "tiny:random"


def make_data(out: Path, seed: int = 0) -> Path:
    """A small dataset from the built-in KG: kg.json, facts, train_easy, train_hard, eval.

    Generated once per test run (conftest_tasks._shared: a pickle the xdist workers share; the
    generator is deterministic) and written into `out` for each module that asks."""
    from conftest_tasks import _shared, builtin_kg
    from kgreason.kg.kgjson import save_kg
    from kgreason.tasks.generate import write_dataset

    kg = builtin_kg(seed)
    write_dataset(_shared(f"train-data-{seed}.pickle", lambda: _generate(seed)), out)
    save_kg(kg, out / "kg.json")
    return out


def _generate(seed: int):
    from dataclasses import replace

    from conftest_tasks import builtin_kg
    from kgreason.tasks.generate import DEFAULT_SPLITS, TaskConfig, generate

    sizes = {"eval": 8, "train_easy": 24, "train_hard": 8}
    splits = tuple(replace(s, size=sizes[s.name]) for s in DEFAULT_SPLITS)
    return generate(builtin_kg(seed), TaskConfig(seed=seed, splits=splits))


def projection_probes_only(monkeypatch, module) -> None:
    """Have `module`'s matmul-limit probe (kgreason.bench.harness.probe_shapes, as `module` reaches it)
    time the model's own projections only: its 2048-square and LM-head shapes take seconds on a CPU,
    and the sampler bench's in-process test keeps the whole probe set."""
    real = module.probe_shapes
    monkeypatch.setattr(module, "probe_shapes", lambda *args, **kwargs: [
        s for s in real(*args, **kwargs) if "square" not in s[0] and "lm head" not in s[0]])


def breakdown(total: float, correct: bool = True, format_ok: bool = True, faithful: bool = True) -> RewardBreakdown:
    """A hand-built reward breakdown for selection tests."""
    return RewardBreakdown(preset="kgreason", format_ok=format_ok, answer="A" if format_ok else None,
                           correct=correct, path_coverage=1.0 if faithful else 0.0, hits=0,
                           claimed_hops=[ClaimedHop("a", "r", "b", faithful)], valid_hops=int(faithful),
                           faithful=faithful, repetition=0.0, total=total)


def lora_tensors(adapter_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))


def lora_b_norm(adapter_dir: Path) -> float:
    """Sum of |lora_B| weights: zero for a freshly initialised LoRA, non-zero once it has trained."""
    return float(sum(t.abs().sum() for name, t in lora_tensors(adapter_dir).items() if "lora_B" in name))


def adapters_differ(a: Path, b: Path) -> bool:
    import torch

    ta, tb = lora_tensors(a), lora_tensors(b)
    return set(ta) == set(tb) and any(not torch.equal(ta[k], tb[k]) for k in ta)
