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

from kgreason.records import Completion
from kgreason.sampling.base import (
    Item,
    Sampler,
    SamplingParams,
    answer_line_end,
    check_items,
    eos_ids,
    trim_after_answer,
)


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino_genai") is not None


def write_model_gguf(model: Any, tokenizer: Any, folder: Path) -> Path:
    """The model's weights (its LoRA adapter merged into a copy) as an f32 GGUF in `folder`."""
    import copy

    import torch

    from kgreason.evaluate.drift import has_adapter
    from kgreason.models.gguf_export import write_gguf

    plain = model
    if has_adapter(model):
        plain = copy.deepcopy(model).merge_and_unload()
    plain = plain.to(torch.float32)
    tokenizer.save_pretrained(folder)
    out = folder / "model-f32.gguf"
    write_gguf(plain, folder, tokenizer, out, gguf_type="f32", name="kgreason sampler")
    return out


class OpenVINOSampler(Sampler):
    name = "openvino"

    def __init__(self, model: Any, tokenizer: Any, model_name: str = "", device: str = "CPU") -> None:
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
        self.pipe = openvino_genai.LLMPipeline(str(gguf), device)
        self._engine_tokenizer = self.pipe.get_tokenizer()

    def close(self) -> None:
        self._folder.cleanup()

    def generate(self, items: Sequence[Item], params: SamplingParams, progress: bool = True,
                 on_completion: Callable[[Completion], None] | None = None) -> list[Completion]:
        import openvino_genai

        check_items(items)
        prompts = [self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for _, m in items]
        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = params.max_new_tokens
        config.apply_chat_template = False  # the prompts are templated already, as the hf backend's
        config.stop_token_ids = set(self._stop_ids)
        config.num_return_sequences = params.k
        if params.temperature > 0:
            config.do_sample, config.temperature, config.top_p = True, params.temperature, params.top_p
            config.rng_seed = params.seed
        else:
            config.do_sample = False
        result = self.pipe.generate(prompts, config)
        texts = list(result.texts)
        completions: list[Completion] = []
        for i, ((task_id, _), prompt) in enumerate(zip(items, prompts, strict=True)):
            prompt_tokens = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
            for j in range(params.k):
                completions.append(self._completion(task_id, j, prompt_tokens, texts[i * params.k + j], params))
        if on_completion is not None:
            for c in completions:
                on_completion(c)
        return completions

    def _completion(self, task_id: str, index: int, prompt_tokens: int, text: str, params: SamplingParams) -> Completion:
        tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        finish = "length" if tokens >= params.max_new_tokens else "eos"
        if params.stop_at_answer and answer_line_end(text) is not None:
            text, finish = trim_after_answer(text), "answer"
            tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return Completion(task_id=task_id, sample_index=index, text=text, prompt_tokens=prompt_tokens,
                          completion_tokens=tokens, finish_reason=finish, model=self.model_name,
                          adapter=str(self.adapter) if self.adapter else None, temperature=params.temperature,
                          seed=params.seed)
