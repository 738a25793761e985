"""Sampling: one interface (`Sampler.generate`), a batched transformers backend and an optional vLLM one.

    from kgreason.sampling import SamplingParams, get_sampler
    sampler = get_sampler(model, tokenizer)                   # backend="auto": vllm on a GPU if installed
    completions = sampler.generate(items, SamplingParams(k=8, temperature=0.7))
"""

from __future__ import annotations

from kgreason.sampling.base import Sampler, SamplingParams, answer_line_end, trim_after_answer

__all__ = ["BACKENDS", "Sampler", "SamplingParams", "answer_line_end", "get_sampler", "trim_after_answer"]

BACKENDS = ("auto", "hf", "vllm", "openvino")


def get_sampler(model, tokenizer, backend: str = "auto", batch_size: int | None = None) -> Sampler:
    """The sampler for a loaded model. "auto" picks vllm only when it is installed, a GPU is present
    and the model has a folder on disk (vLLM reloads weights itself); otherwise the hf backend.
    "openvino" (OpenVINO GenAI on the CPU, kgreason.sampling.openvino_backend) is chosen by name:
    on an AVX2 CPU, with its f32 KV cache, all 150 answers of the quick RSFT model equal the hf
    backend's at 1.2-1.45x its decoding speed (with the engine's compressed cache ~1.6x, but 3
    answers differed and accuracy fell 2 points; README). On an Intel Xeon with AMX its f32 was no
    faster than the hf backend in bf16, and its own bf16 got most answers wrong (openvino_backend),
    so `auto` does not pick it on either CPU kind."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown sampling backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "openvino":
        from kgreason.sampling.openvino_backend import OpenVINOSampler

        return OpenVINOSampler(model, tokenizer, model_name=getattr(model, "kgreason_ref", "") or "")
    if backend in ("auto", "vllm"):
        from kgreason.sampling.vllm_backend import VLLMSampler, vllm_available

        path = _model_folder(model)
        if backend == "vllm" and (not vllm_available() or path is None):
            raise RuntimeError("backend 'vllm' needs vllm installed (kgreason[gpu]), a CUDA GPU and a model "
                               "loaded from a folder (not tiny:random)")
        if vllm_available() and path is not None:
            return VLLMSampler(path, tokenizer, adapter=getattr(model, "kgreason_adapter", None),
                               model_name=getattr(model, "kgreason_ref", "") or path)
    from kgreason.sampling.hf import HFSampler

    return HFSampler(model, tokenizer, batch_size=batch_size)


def _model_folder(model) -> str | None:
    from pathlib import Path

    path = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")
    return path if path and (Path(path) / "config.json").is_file() else None
