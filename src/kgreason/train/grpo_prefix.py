"""GRPO's update with each group's prompt computed once (`--grpo-share-prompt`, on by default).

Why: a GRPO step scores k completions of the same prompt. TRL's trainer runs every row as prompt +
completion, so an open-book prompt of ~360 tokens is run forward and backward k times for ~85
completion tokens each: on a 2-core CPU that is ~80% of a step's update time. Here the group's
prompt runs once, its key/value cache is repeated for the k rows (differentiably: the gradient
through the prompt is summed over the group, exactly as in the k separate runs), and only the
completion tokens run per row. The result is the same log-probabilities and gradients as TRL's
path up to float rounding (tests/test_grpo_prefix.py compares both, values and gradients), at
(P + k*C) / (k*(P + C)) of its tokens: 0.3 of them for P=360, C=85, k=8.

With dropout on (a LoRA dropout above 0), the shared prompt draws one dropout mask per group
instead of one per row; kgreason's GRPO settings have none.

It plugs in where TRL computes per-token log-probabilities (`_get_per_token_logps_and_entropies`,
used for the policy, the reference model and old log-probabilities alike), and falls back to TRL's
own code whenever the rows do not come in runs of identical prompts or the inputs carry anything
but token ids (vision inputs).
"""

from __future__ import annotations

from typing import Any

PREFIX_ONLY_KWARGS = ("batch_size", "compute_entropy")


def prompt_runs(prompt_ids: Any, prompt_mask: Any) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive rows with the same prompt (ids and mask)."""
    import torch

    runs: list[tuple[int, int]] = []
    start = 0
    for row in range(1, prompt_ids.size(0) + 1):
        if row == prompt_ids.size(0) or not (torch.equal(prompt_ids[row], prompt_ids[start])
                                             and torch.equal(prompt_mask[row], prompt_mask[start])):
            runs.append((start, row))
            start = row
    return runs


def shared_prompt_logps(model: Any, input_ids: Any, attention_mask: Any, logits_to_keep: int, temperature: float,
                        compute_entropy: bool) -> tuple[Any, Any]:
    """Per-token log-probabilities (and entropies) of the last `logits_to_keep` tokens of each row,
    each run of identical prompts computed once. Positions are those of TRL's own forward (no
    position ids: 0..L-1 over the padded row), so left padding is placed identically."""
    import torch

    c = int(logits_to_keep)
    prompt_ids, prompt_mask = input_ids[:, :-c], attention_mask[:, :-c]
    completion_ids, completion_mask = input_ids[:, -c:], attention_mask[:, -c:]
    all_logps, all_entropies = [], []
    for start, end in prompt_runs(prompt_ids, prompt_mask):
        k = end - start
        head = model(input_ids=prompt_ids[start:start + 1], attention_mask=prompt_mask[start:start + 1],
                     use_cache=True, logits_to_keep=1)
        cache = head.past_key_values
        cache.batch_repeat_interleave(k)  # repeat_interleave: the k rows share one differentiable prompt
        tail = model(input_ids=completion_ids[start:end], cache=cache, use_cache=True,
                     attention_mask=torch.cat([prompt_mask[start:end], completion_mask[start:end]], dim=1))
        # token j is predicted from position j-1; the first one from the prompt's last position
        logits = torch.cat([head.logits[:, -1:].expand(k, 1, -1), tail.logits[:, :-1]], dim=1).float() / temperature
        logp_all = torch.log_softmax(logits, dim=-1)
        logps = logp_all.gather(-1, completion_ids[start:end].unsqueeze(-1)).squeeze(-1)
        keep = completion_mask[start:end].to(logps.dtype)
        all_logps.append(logps * keep)  # padding after a completion: 0, as TRL's fused head leaves it
        if compute_entropy:
            all_entropies.append(-(logp_all.exp() * logp_all).sum(-1) * keep)
    return torch.cat(all_logps, dim=0), (torch.cat(all_entropies, dim=0) if compute_entropy else None)


def prefix_sharing_trainer(base: type) -> type:
    """A subclass of TRL's GRPOTrainer `base` whose per-token log-probabilities share prompts."""

    class PrefixSharingGRPOTrainer(base):  # type: ignore[misc, valid-type]
        def _get_per_token_logps_and_entropies(self, model: Any, input_ids: Any, attention_mask: Any,
                                               logits_to_keep: int, batch_size: int | None = None,
                                               compute_entropy: bool = False, compute_aux_loss: bool = False,
                                               **vision: Any) -> tuple[Any, Any, Any]:
            plain = not compute_aux_loss and all(v is None for v in vision.values())
            if plain:
                runs = prompt_runs(input_ids[:, :-logits_to_keep], attention_mask[:, :-logits_to_keep])
                plain = len(runs) < input_ids.size(0)  # nothing is shared when every prompt differs
            if not plain:
                return base._get_per_token_logps_and_entropies(
                    self, model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                    compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **vision)
            with self.accelerator.autocast():
                logps, entropies = shared_prompt_logps(model, input_ids, attention_mask, logits_to_keep,
                                                       self.temperature, compute_entropy)
            return logps, entropies, None

    return PrefixSharingGRPOTrainer
