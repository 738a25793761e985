"""CPU backend over OpenVINO GenAI (`pip install openvino-genai`): batched decoding of the model
kgreason trained, read from a GGUF file kgreason writes itself.

Why: on a 2-core CPU, decoding (three evaluations and RSFT's sampling) is most of a run, and a
maintained engine should do it if it is faster than kgreason's own loop (`kgreason bench
sampler` measures both on the same prompts). OpenVINO GenAI batches requests, runs bf16 where the
CPU has AVX-512 BF16 or AMX and reads GGUF, so the loaded model (its LoRA adapter merged into a
copy) is written with kgreason's own GGUF writer (models/gguf_export.py) and handed over; nothing
is downloaded.

Prompts are the chat-templated text the hf backend tokenizes, so the engine sees the same tokens.
Generation stops at the model's end token or the token cap; the answer-line rule is applied to
the finished text (the engine's stop strings cannot say "the end of the line that starts with
ANSWER:"), so finish reasons and texts read as the hf backend's do.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kgreason.io import InputError
from kgreason.records import Completion
from kgreason.sampling.base import (
    Item,
    Sampler,
    SamplingParams,
    answer_line_end,
    check_items,
    encode_prompt,
    eos_ids,
    trim_after_answer,
)

JEMALLOC_CONFLICT = ("the openvino backend cannot run with jemalloc preloaded (the engine aborts the process "
                     "with \"free(): invalid pointer\"); run it with the system allocator: `kgreason run "
                     "--allocator system`, or without jemalloc in LD_PRELOAD")


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino_genai") is not None


def write_model_gguf(model: Any, tokenizer: Any, folder: Path) -> Path:
    """The model's weights (its LoRA adapter merged into a copy) as an f16 GGUF in `folder`
    (OpenVINO GenAI reads f16 and quantised GGUF, not f32)."""
    import copy

    import torch

    from kgreason.models.gguf_export import write_gguf
    from kgreason.models.lora import has_adapter
    from kgreason.models.tokenizers import save_tokenizer

    # a copy in both cases: the caller's model keeps its adapter, its dtype and its weights
    plain = copy.deepcopy(model)
    if has_adapter(plain):
        plain = plain.merge_and_unload()
    plain = plain.to(torch.float32)
    save_tokenizer(tokenizer, folder)
    out = folder / "model-f16.gguf"
    write_gguf(plain, folder, tokenizer, out, gguf_type="f16", name="kgreason sampler")
    return out


class OpenVINOSampler(Sampler):
    name = "openvino"

    def __init__(self, model: Any, tokenizer: Any, model_name: str = "", device: str = "CPU",
                 precision: str | None = "f32", kv_cache_precision: str | None = "f32") -> None:
        """`precision`: "f32" by default, the engine's fp32 kernels (the hf backend's numbers on the
        CPU). None leaves the engine's default, bf16 where the CPU has AVX-512 BF16 or AMX, and that
        changed the answers: on an Intel Xeon with AMX (2026-12-08), the quick SFT model's greedy
        answers to the first 24 held-out items were 5 of 24 texts the same as transformers' and 4
        right, against 23 of 24 and 17 right with "f32" (the engine's bf16 was 1.6x its f32 there,
        and its f32 no faster than the hf backend in bf16; 150 items: 9 texts the same, 4.7% right).

        `kv_cache_precision`: "f32" by default, because the engine's own default compresses the
        KV cache (u8 on CPU), and that moved answers. Measured on the quick RSFT model, 150 held-out
        items, AVX2 EPYC: with the engine's default 3 answer letters differed from transformers
        in fp32 and accuracy fell from 75.3% to 73.3%; with "f32" all 150 letters were the same
        (75.3%), at 1.2-1.45x transformers' decoding speed instead of about 1.6x (README). None keeps
        the engine's default."""
        from kgreason.memory import allocator_in_use

        if allocator_in_use() == "jemalloc":
            # Measured: the engine aborts the whole process ("free(): invalid pointer") as it loads
            # the model when jemalloc is preloaded; glibc's free then meets jemalloc's pointers.
            raise InputError(JEMALLOC_CONFLICT)
        try:
            import openvino_genai
        except ImportError as exc:
            raise RuntimeError("the openvino backend needs `pip install openvino-genai`") from exc
        self.tokenizer = tokenizer
        self.model_name = model_name or str(getattr(model, "kgreason_ref", "") or "model")
        self.adapter = getattr(model, "kgreason_adapter", None)
        self._stop_ids = eos_ids(model, tokenizer)
        self._folder = tempfile.TemporaryDirectory(prefix="kgreason-openvino-")
        gguf = write_model_gguf(model, tokenizer, Path(self._folder.name))
        properties = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
        if kv_cache_precision:
            properties["KV_CACHE_PRECISION"] = kv_cache_precision
        self.pipe = openvino_genai.LLMPipeline(str(gguf), device, **properties)

    def close(self) -> None:
        self._folder.cleanup()

    def generate(self, items: Sequence[Item], params: SamplingParams, progress: bool = True,
                 on_completion: Callable[[Completion], None] | None = None) -> list[Completion]:
        import numpy as np
        import openvino
        import openvino_genai

        check_items(items)
        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = params.max_new_tokens
        config.apply_chat_template = False  # the ids below are templated already, as the hf backend's
        config.stop_token_ids = set(self._stop_ids)
        config.num_return_sequences = params.k
        if params.temperature > 0:
            config.do_sample, config.temperature, config.top_p = True, params.temperature, params.top_p
            config.rng_seed = params.seed
        else:
            config.do_sample = False
        # token ids, not text: the engine's GGUF tokenizer splits some text differently ("'s" as "'" +
        # "s"), so it is handed the ids kgreason's tokenizer makes, padding stripped by the mask
        ids = [encode_prompt(self.tokenizer, m) for _, m in items]
        width = max(map(len, ids))
        tokens = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros_like(tokens)
        for row, x in enumerate(ids):
            tokens[row, width - len(x):], mask[row, width - len(x):] = x, 1
        result = self.pipe.generate(openvino_genai.TokenizedInputs(openvino.Tensor(tokens), openvino.Tensor(mask)), config)
        if len(result.tokens) != len(items) * params.k:  # results come prompt by prompt, k each
            raise RuntimeError(f"OpenVINO GenAI returned {len(result.tokens)} sequences for {len(items)} prompts "
                               f"x {params.k}")
        completions: list[Completion] = []
        for i, (task_id, _) in enumerate(items):
            for j in range(params.k):
                drawn = list(result.tokens[i * params.k + j])
                text = self.tokenizer.decode(drawn, skip_special_tokens=True)
                completions.append(self._completion(task_id, j, len(ids[i]), text, len(drawn), params))
        if on_completion is not None:
            for c in completions:
                on_completion(c)
        return completions

    def _completion(self, task_id: str, index: int, prompt_tokens: int, text: str, tokens: int,
                    params: SamplingParams) -> Completion:
        finish = "length" if tokens >= params.max_new_tokens else "eos"
        if params.stop_at_answer and answer_line_end(text, params.family) is not None:
            text, finish = trim_after_answer(text, params.family), "answer"
            tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return Completion(task_id=task_id, sample_index=index, text=text, prompt_tokens=prompt_tokens,
                          completion_tokens=tokens, finish_reason=finish, model=self.model_name,
                          adapter=str(self.adapter) if self.adapter else None, temperature=params.temperature,
                          seed=params.seed)
