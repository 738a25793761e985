"""One loaded model per phase: a training phase loads its model once, then trains it, samples from it
(RSFT's rounds) and hands it to the phase's evaluation, instead of reloading it from disk each time.

Why: an RSFT phase of R rounds used to load the model 2R + 1 times (a merged copy to sample with,
a trainable copy to train, a merged copy to evaluate), each load a few seconds and a fresh set of
weights in the process's memory. The held model is the trainable PEFT model: sampling and
evaluation fold the adapter into the weights for their duration and put the base weights back bit
for bit (`kgreason.evaluate.runner.merged_for_sampling`), so what they see equals loading the
saved adapter and merging it, as before.

    held = PhaseModel("bundled:smollm2-135m", dtype="auto")
    run_rsft(run, ..., held=held)                       # loads once, trains and samples in place
    evaluate_phase(run, "rsft", ..., held=held)         # evaluates the same weights, no reload
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class PhaseModel:
    """The model a phase holds, and which saved adapter its weights equal (None: the base alone)."""

    model_ref: str
    dtype: str = "auto"  # the training dtype (TrainOptions.dtype)
    model: Any = None
    adapter: Path | None = None
    loads: int = 0  # how many times this phase loaded weights from disk (summary.json: model_loads)

    def load(self, adapter: Path | None) -> Any:
        """The trainable model holding `adapter` (or the base when None), loaded only if not held."""
        if self.model is not None and self.holds(adapter):
            return self.model
        self.release()
        self.model, _, _ = load_trainable_model(self.model_ref, self.dtype, adapter)
        self.adapter, self.loads = _resolved(adapter), self.loads + 1
        return self.model

    def trained(self, model: Any, adapter: Path) -> None:
        """`model` (the trainer's; PEFT-wrapped now if training attached a fresh LoRA) equals the
        adapter just saved at `adapter`: hold it, with the wrappers training put on its forward removed."""
        plain_forward(model)
        model.kgreason_ref = self.model_ref
        model.kgreason_adapter = str(_resolved(adapter))  # provenance in samples; what vLLM would load
        self.model, self.adapter = model, _resolved(adapter)

    def saved_as(self, adapter: Path) -> None:
        """The held weights were copied to another folder too (RSFT publishes its last round's)."""
        if self.model is not None:
            self.adapter = _resolved(adapter)
            self.model.kgreason_adapter = str(self.adapter)

    def holds(self, adapter: Path | None, dtype: Any = None) -> bool:
        """Whether the held weights are `adapter` on the base, in `dtype` (None: the held one)."""
        if self.model is None or _resolved(adapter) != self.adapter:
            return False
        return dtype is None or self.same_dtype(dtype)

    def same_dtype(self, dtype: Any) -> bool:
        from kgreason.models.dtype import resolve_dtype

        return resolve_dtype(dtype) == resolve_dtype(self.dtype)

    def release(self) -> None:
        """Drop the held model (its memory goes back once nothing else refers to it)."""
        if self.model is None:
            return
        import gc

        from kgreason.memory import release_freed_memory

        self.model, self.adapter = None, None
        gc.collect()
        release_freed_memory()


def load_trainable_model(model_ref: str, dtype: str, init_adapter: Path | None) -> tuple[Any, Any, bool]:
    """(model, tokenizer, has_adapter). The frozen base is loaded in the training dtype; LoRA weights
    stay fp32 (PEFT upcasts adapters) so the optimiser keeps full precision."""
    from kgreason.models import load_model

    model, tokenizer = load_model(model_ref, adapter=init_adapter, dtype=dtype, trainable=True)
    tokenizer.padding_side = "right"  # training pads on the right; sampling reloads its own tokenizer
    return model, tokenizer, init_adapter is not None


def held_for(held: PhaseModel | None, model_ref: str, adapter: Path | None, dtype: Any = None) -> Any:
    """The held model when it is `adapter` on `model_ref` in `dtype`, else None (the caller loads)."""
    if held is None or held.model_ref != model_ref or not held.holds(adapter, dtype):
        return None
    return held.model


def plain_forward(model: Any) -> None:
    """Remove the forward wrappers a Trainer leaves on a model: TRL's fused LM head and ours on the
    transformers model, accelerate's autocast wrapper on the outer one. Both are instance
    attributes over the class's forward, so a model trained again would be wrapped twice, and
    sampling would run under the training autocast. Accelerate's "already prepared" mark goes
    too: the next Trainer must wrap the model again (without its autocast, bf16 base weights meet
    fp32 adapter weights)."""
    from kgreason.models.lora import unwrap_peft

    for module in {id(m): m for m in (model, unwrap_peft(model))}.values():
        for name in ("forward", "_original_forward", "_is_accelerate_prepared"):
            module.__dict__.pop(name, None)


def _resolved(path: Path | str | None) -> Path | None:
    return None if path is None else Path(path).resolve()
