"""Drift from the base model: mean per-token KL(model || base) on the eval prompts, and how
sharp the model's own distribution is (its per-token entropy).

Training that wanders far from the base model can erase what it knew, and a reward can be
maximised by drifting into a degenerate style; the KL tracks how far a run went. RL on a reward is
known to narrow what a model samples (its policy's entropy falls: "entropy collapse"); the entropy
of the model's next-token distribution along its own greedy answers, against the base's along the
same tokens, measures that on the held-out items, item by item, so two models can be paired.

What is measured: for each eval item, the prompt (chat template) followed by the completion the
*evaluated model itself* produced greedily is teacher-forced through both models; at every
completion token position we take KL(p_model || p_base) over the full vocabulary and average over
all completion tokens of all items (token-weighted). With a PEFT model the base distribution comes
from the same weights under `model.disable_adapter()`, so the base is never loaded twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kgreason.models.lora import has_adapter

METHOD = ("teacher-forced on the evaluated model's own greedy completions; KL(model || base) and the "
          "model's entropy per completion token, in nats")


@dataclass(frozen=True)
class ItemDrift:
    """One (prompt, completion) pair: its completion tokens, and the means over them of KL(model ||
    base), the model's entropy and the base's entropy (nats)."""

    tokens: int
    kl: float
    entropy: float
    base_entropy: float


@dataclass(frozen=True)
class DriftResult:
    mean_kl: float
    tokens: int
    items: int
    max_item_kl: float
    method: str = METHOD
    # token-weighted means over every completion token (None in results written before they were measured)
    mean_entropy: float | None = None
    base_mean_entropy: float | None = None
    per_item: tuple[ItemDrift | None, ...] = ()  # one per pair given (None: an empty completion); not in to_dict

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("per_item")
        return d


def encode_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Prompt token ids exactly as the hf sampler builds them: chat template text with the
    assistant cue, tokenized without extra special tokens."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    else:
        text = "\n\n".join(m["content"] for m in messages) + "\n"
    return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


def encode_completion(tokenizer: Any, completion: str, max_tokens: int) -> list[int]:
    return [int(i) for i in tokenizer(completion, add_special_tokens=False)["input_ids"]][:max_tokens]


@contextlib.contextmanager
def _base_context(model: Any) -> Iterator[None]:
    with model.disable_adapter():
        yield


def _batches(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def _completion_logprobs(model: Any, batch: list[tuple[list[int], list[int]]], pad_id: int) -> list[Any]:
    """Log-probabilities (fp32) at each completion position, one [len(completion), vocab] tensor per item."""
    import torch

    device = next(model.parameters()).device
    lengths = [len(p) + len(c) for p, c in batch]
    width = max(lengths)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (p, c) in enumerate(batch):  # right padding keeps real positions at 0..len-1
        ids[row, : len(p) + len(c)] = torch.tensor(p + c)
        mask[row, : len(p) + len(c)] = 1
    # Only positions that predict completion tokens need the (vocabulary-sized) output layer.
    first = min(len(p) for p, _ in batch) - 1
    keep = torch.arange(first, width - 1, device=device)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep).logits
    out = []
    for row, (p, c) in enumerate(batch):
        # the logits at position i predict token i+1; column j of `logits` is position first + j
        start = len(p) - 1 - first
        out.append(torch.log_softmax(logits[row, start : start + len(c)].float(), dim=-1))
    return out


def mean_token_kl(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[list[dict[str, str]], str]],
    base_model: Any | None = None,
    batch_size: int = 4,
    max_completion_tokens: int = 256,
    progress: bool = False,
) -> DriftResult | None:
    """Mean per-token KL(model || base) over (messages, completion) pairs, with the model's and the
    base's per-token entropy, overall and per pair.

    The base is `model` with its adapter disabled when it has one, else `base_model`; with
    neither, the model *is* the base and None is returned (nothing to measure).
    """
    import torch

    if not has_adapter(model) and base_model is None:
        return None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    encoded = []
    slot: list[int | None] = []  # pair -> its index in `encoded` (None: an empty completion)
    for messages, completion in pairs:
        c = encode_completion(tokenizer, completion, max_completion_tokens)
        slot.append(len(encoded) if c else None)
        if c:
            encoded.append((encode_prompt(tokenizer, messages), c))
    items: list[ItemDrift] = []
    total, tokens, worst = 0.0, 0, 0.0
    was_training = model.training
    model.eval()
    batches = list(_batches(len(encoded), batch_size))
    if progress:
        from kgreason.console import track

        batches = track(batches, "drift (KL vs base)", unit="batch")  # type: ignore[assignment]
    try:
        with torch.no_grad():
            for idx in batches:
                batch = [encoded[i] for i in idx]
                lp_model = _completion_logprobs(model, batch, pad_id)
                if base_model is not None and not has_adapter(model):
                    lp_base = _completion_logprobs(base_model, batch, pad_id)
                else:
                    with _base_context(model):
                        lp_base = _completion_logprobs(model, batch, pad_id)
                for lm, lb in zip(lp_model, lp_base, strict=True):
                    pm = lm.exp()
                    kl = (pm * (lm - lb)).sum(dim=-1).clamp_min(0.0)  # clamp: fp rounding below 0
                    total += float(kl.sum())
                    tokens += int(kl.numel())
                    worst = max(worst, float(kl.mean()))
                    items.append(ItemDrift(tokens=int(kl.numel()), kl=float(kl.mean()),
                                           entropy=float(-(pm * lm).sum(dim=-1).mean()),
                                           base_entropy=float(-(lb.exp() * lb).sum(dim=-1).mean())))
    finally:
        model.train(was_training)

    def token_mean(values: list[float]) -> float:
        return sum(v * it.tokens for v, it in zip(values, items, strict=True)) / tokens if tokens else 0.0

    return DriftResult(mean_kl=total / tokens if tokens else 0.0, tokens=tokens, items=len(encoded), max_item_kl=worst,
                       mean_entropy=token_mean([it.entropy for it in items]),
                       base_mean_entropy=token_mean([it.base_entropy for it in items]),
                       per_item=tuple(items[i] if i is not None else None for i in slot))
