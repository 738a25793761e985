"""The one sampling interface every backend implements, and the answer-line stop rule they share.

    sampler = get_sampler(model, tokenizer)                       # "hf" here, "vllm" on a GPU box
    completions = sampler.generate([(task.id, chat_messages(task)), ...], SamplingParams(k=8))

Items are (task_id, chat messages); each yields k `Completion`s, in item order then sample order.
Greedy decoding (evaluation) is the same call with temperature=0 and k=1.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kgreason.families import DEFAULT_FAMILY
from kgreason.records import Completion
from kgreason.reward.parse import cut_after_answer, find_answer_line

Messages = list[dict]
Item = tuple[str, Messages]


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The ids that end a generation: the tokenizer's end token and the model's generation config's."""
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([gen] if isinstance(gen, int) else (int(x) for x in gen or []))
    return ids


def encode_prompt(tokenizer: Any, messages: Messages) -> list[int]:
    """A prompt's token ids as every backend hands them to its model: the chat template with the
    generation prompt, tokenized without extra special tokens."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def answer_line_end(text: str, family: str | None = None) -> int | None:
    """Where the first decisive answer line's letter ends (its line's end for a hedge naming two
    options), or None while there is none.

    `text` is a generation in progress: kgreason.reward.parse.find_answer_line reads it with
    final=False, so an answer line counts only once its newline has arrived: "ANSWER: jstat (D)"
    may still go on to "or jcmd (C)" (a hedge, which claims nothing) and "ANSWER: D" to
    "ANSWER: D-Bus (B)". An end-of-sequence token ends the line anyway. A hedge stops the sequence
    too: it decides the completion (no answer), and nothing after it is read. The reward reads the
    finished text with the same function, so the letter it sees is the one the stop rule saw.
    `family`: the task family whose answer line this is (multiple choice by default).
    """
    line = find_answer_line(text, final=False, family=family)
    return None if line is None else line.end


def window_has_answer_line(window: str, whole: bool, family: str | None = None) -> bool:
    """The stop rule over the decoded last tokens of a generation.

    When the window is not the whole generation its first line is cut off at an arbitrary point,
    and text like "so the ANSWER: B" would look like a line starting with "ANSWER:"; that partial
    line is dropped, so an answer line only counts once its start is inside the window.
    """
    if not whole:
        newline = window.find("\n")
        if newline < 0:
            return False
        window = window[newline:]
    return answer_line_end(window, family) is not None


def trim_after_answer(text: str, family: str | None = None) -> str:
    """Cut what a token carried past the answer line ("B.\\n<|im_end|>..." → "B.").

    The same cut as kgreason.reward.parse.cut_after_answer: the text up to the end of the first
    decisive answer line (a hedge included), or all of it when there is none.
    """
    return cut_after_answer(text, family)


@dataclass(frozen=True)
class SamplingParams:
    """k samples per prompt; temperature 0 means greedy (then k is normally 1)."""

    k: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    stop_at_answer: bool = True
    family: str = DEFAULT_FAMILY  # whose answer line ends a sample (kgreason.families)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def sample_seed(seed: int, task_id: str, sample_index: int) -> int:
    """A per-sample RNG seed: a sample's draw depends on (seed, task, index), not on its batch."""
    digest = hashlib.blake2b(f"{seed}\x1f{task_id}\x1f{sample_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


class Sampler(ABC):
    """A backend: turns (task_id, messages) items into k Completions each."""

    name: str = "base"

    @abstractmethod
    def generate(self, items: Sequence[Item], params: SamplingParams, progress: bool = True,
                 on_completion: Callable[[Completion], None] | None = None) -> list[Completion]:
        """k completions per item, ordered by item then sample index.

        `on_completion` receives each completion as soon as it is final, so a caller can write it
        before the whole call ends (an interrupted `kgreason sample` keeps what was done). Per item
        it is called in sample-index order (sample j only after samples 0..j-1), which is what a
        resume that counts the samples written per item relies on; items may interleave.
        """


def check_items(items: Sequence[Item]) -> None:
    for i, item in enumerate(items):
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[1], list)):
            raise ValueError(f"item {i}: expected (task_id, [chat message dicts]), got {type(item).__name__}")
