"""Optional GPU backend over vLLM (`pip install kgreason[gpu]`), loading LoRA adapters natively.

vLLM loads weights from disk itself, so this backend needs the model's HF folder and, for an
unmerged adapter, the adapter folder; `load_model` records both on the model it returns.

NOTE: written against vLLM's documented offline API (LLM.generate, SamplingParams, LoRARequest) but
not exercised by the test suite, which runs without a GPU. The answer-line stop is applied after
generation (vLLM stop strings cannot express it), so finish reasons match the hf backend's.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

from kgreason.records import Completion
from kgreason.sampling.base import (
    Item,
    Sampler,
    SamplingParams,
    answer_line_end,
    check_items,
    trim_after_answer,
)


def vllm_available() -> bool:
    """vLLM importable and a CUDA GPU visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


class VLLMSampler(Sampler):
    name = "vllm"

    def __init__(self, model_path: str | Path, tokenizer, adapter: str | Path | None = None,
                 model_name: str = "", dtype: str = "auto", gpu_memory_utilization: float = 0.5) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:  # pragma: no cover - needs the gpu extra
            raise RuntimeError("the vllm backend needs `pip install kgreason[gpu]` and a CUDA GPU") from exc
        self.tokenizer = tokenizer
        self.adapter = str(adapter) if adapter else None
        self.model_name = model_name or str(model_path)
        self.llm = LLM(model=str(model_path), tokenizer=str(model_path), dtype=dtype, enable_lora=adapter is not None,
                       gpu_memory_utilization=gpu_memory_utilization, seed=0)

    def generate(self, items: Sequence[Item], params: SamplingParams, progress: bool = True,
                 on_completion: Callable[[Completion], None] | None = None) -> list[Completion]:  # pragma: no cover
        from vllm import SamplingParams as VParams

        check_items(items)
        prompts = [self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for _, m in items]
        vparams = VParams(
            n=params.k,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
            skip_special_tokens=True,
        )
        lora = None
        if self.adapter:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("kgreason", 1, self.adapter)
        outputs = self.llm.generate(prompts, vparams, lora_request=lora, use_tqdm=progress)
        completions: list[Completion] = []
        for (task_id, _), out in zip(items, outputs, strict=True):
            for j, choice in enumerate(out.outputs):
                completions.append(self._completion(task_id, j, len(out.prompt_token_ids), choice, params))
        if on_completion is not None:  # vLLM returns the whole batch at once: hand everything on at the end
            for c in completions:
                on_completion(c)
        return completions

    def _completion(self, task_id: str, index: int, prompt_tokens: int, choice, params: SamplingParams) -> Completion:  # pragma: no cover
        text, tokens = choice.text, len(choice.token_ids)
        finish = "eos" if choice.finish_reason == "stop" else "length"
        if params.stop_at_answer and answer_line_end(text, params.family) is not None:
            text, finish = trim_after_answer(text, params.family), "answer"
            tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return Completion(task_id=task_id, sample_index=index, text=text, prompt_tokens=prompt_tokens,
                          completion_tokens=tokens, finish_reason=finish, model=self.model_name,
                          adapter=self.adapter, temperature=params.temperature, seed=params.seed)
