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
own code whenever no two rows share a prompt or the inputs carry anything but token ids (vision
inputs). TRL shuffles a step's completions row by row into its micro-batches, which would leave
about two rows of a group in each; the trainer shuffles whole groups instead, which leaves the
step's gradient as it was (TRL's default loss, dapo, divides by the tokens of the whole step; for
other losses, an entropy quantile or more micro-batches than one optimizer step TRL's row shuffle
stays).
"""

from __future__ import annotations

from typing import Any

# TRL losses whose optimizer step does not depend on how a step's rows are cut into micro-batches
# (normalised by the whole step's token count, or by a fixed constant); bnpo normalises per micro-batch
SPLIT_INVARIANT_LOSSES = ("dapo", "dr_grpo")


def prompt_groups(prompt_ids: Any, prompt_mask: Any) -> list[list[int]]:
    """The rows of each distinct prompt (ids and mask alike), in order of first appearance."""
    groups: dict[tuple, list[int]] = {}
    for row in range(prompt_ids.size(0)):
        key = (tuple(prompt_ids[row].tolist()), tuple(prompt_mask[row].tolist()))
        groups.setdefault(key, []).append(row)
    return list(groups.values())


def shuffle_whole_groups(seq_dict: dict, group_size: int) -> dict | None:
    """TRL's shuffle of a generation batch before it is cut into micro-batches, moving whole groups
    (the `group_size` consecutive completions of one prompt) instead of single rows, so that each
    micro-batch holds whole groups whose prompt is run once. The optimizer step's gradient does
    not depend on how the rows are split into micro-batches: TRL's default loss (dapo) divides by
    the tokens of the whole generation batch."""
    import torch

    sizes = {len(v) for v in seq_dict.values() if v is not None and not (isinstance(v, torch.Tensor) and v.ndim == 0)}
    if len(sizes) != 1 or next(iter(sizes)) % group_size:
        return None  # not whole groups (a local batch of several processes, say): TRL's row shuffle
    (batch,) = sizes
    order = torch.randperm(batch // group_size)
    permutation = (order[:, None] * group_size + torch.arange(group_size)).flatten()

    def permute(v: Any) -> Any:
        if v is None or (isinstance(v, torch.Tensor) and v.ndim == 0):
            return v
        if isinstance(v, torch.Tensor):
            return v[permutation]
        return [v[i] for i in permutation.tolist()]

    return {k: permute(v) for k, v in seq_dict.items()}


def shared_prompt_logps(model: Any, input_ids: Any, attention_mask: Any, logits_to_keep: int, temperature: float,
                        compute_entropy: bool, entropy_grad: bool = False) -> tuple[Any, Any]:
    """Per-token log-probabilities (and entropies) of the last `logits_to_keep` tokens of each row,
    each run of identical prompts computed once. Positions are those of TRL's own forward (no
    position ids: 0..L-1 over the padded row), so left padding is placed identically."""
    import torch

    c = int(logits_to_keep)
    prompt_ids, prompt_mask = input_ids[:, :-c], attention_mask[:, :-c]
    completion_ids, completion_mask = input_ids[:, -c:], attention_mask[:, -c:]
    logps_out = torch.zeros(completion_ids.shape, dtype=torch.float32, device=input_ids.device)
    entropies_out = torch.zeros_like(logps_out) if compute_entropy else None
    for rows in prompt_groups(prompt_ids, prompt_mask):
        k, first = len(rows), rows[0]
        index = torch.tensor(rows, device=input_ids.device)
        head = model(input_ids=prompt_ids[first:first + 1], attention_mask=prompt_mask[first:first + 1],
                     use_cache=True, logits_to_keep=1)
        cache = head.past_key_values
        if cache is None or cache.get_seq_length() != prompt_ids.size(1):
            raise RuntimeError("GRPO shared prompt: the model returned no prompt cache (activation checkpointing "
                               "on?); run with --no-share-prompt")
        cache.batch_repeat_interleave(k)  # repeat_interleave: the k rows share one differentiable prompt
        tail = model(input_ids=completion_ids[index], cache=cache, use_cache=True,
                     attention_mask=torch.cat([prompt_mask[index], completion_mask[index]], dim=1))
        # token j is predicted from position j-1; the first one from the prompt's last position
        logits = torch.cat([head.logits[:, -1:].expand(k, 1, -1), tail.logits[:, :-1]], dim=1).float() / temperature
        logp_all = torch.log_softmax(logits, dim=-1)
        logps = logp_all.gather(-1, completion_ids[index].unsqueeze(-1)).squeeze(-1)
        keep = completion_mask[index].to(logps.dtype)
        # back to the rows' own places (index_put keeps the graph); padding after a completion: 0,
        # as TRL's fused head leaves it
        logps_out = logps_out.index_put((index,), logps * keep)
        if entropies_out is not None:
            # a metric and a token mask unless an entropy bonus is trained: then it needs its graph,
            # else it would keep a second (k, C, vocabulary) tensor alive until the backward pass
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                entropy = -(logp_all.exp() * logp_all).sum(-1) * keep
            entropies_out = entropies_out.index_put((index,), entropy)
    return logps_out, entropies_out


def prefix_sharing_trainer(base: type) -> type:
    """A subclass of TRL's GRPOTrainer `base` whose per-token log-probabilities share prompts."""

    class PrefixSharingGRPOTrainer(base):  # type: ignore[misc, valid-type]
        def _get_per_token_logps_and_entropies(self, model: Any, input_ids: Any, attention_mask: Any,
                                               logits_to_keep: int, batch_size: int | None = None,
                                               compute_entropy: bool = False, compute_aux_loss: bool = False,
                                               **vision: Any) -> tuple[Any, Any, Any]:
            plain = (not compute_aux_loss and all(v is None for v in vision.values())
                     and not getattr(model, "is_gradient_checkpointing", False))  # checkpointing keeps no cache
            if plain:
                groups = prompt_groups(input_ids[:, :-logits_to_keep], attention_mask[:, :-logits_to_keep])
                plain = len(groups) < input_ids.size(0)  # nothing is shared when every prompt differs
            if not plain:
                return base._get_per_token_logps_and_entropies(
                    self, model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                    compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **vision)
            with self.accelerator.autocast():
                logps, entropies = shared_prompt_logps(model, input_ids, attention_mask, logits_to_keep,
                                                       self.temperature, compute_entropy,
                                                       getattr(self, "_entropy_bonus_enabled", False))
            return logps, entropies, None

        def _prepare_inputs(self, generation_batch: Any) -> Any:
            # TRL shuffles a generation batch row by row before cutting it into micro-batches, which
            # scatters each group over them: the groups move whole instead (shuffle_whole_groups),
            # where that leaves the step's gradient as it was: a loss normalised over the whole
            # step's tokens or sequences, every micro-batch of the step in one optimizer step, and
            # no per-micro-batch entropy quantile
            import trl.trainer.grpo_trainer as trl_grpo

            split_invariant = (self.loss_type in SPLIT_INVARIANT_LOSSES
                               and getattr(self, "top_entropy_quantile", 1.0) >= 1.0
                               and self.args.steps_per_generation == self.args.gradient_accumulation_steps)
            if not split_invariant:
                return base._prepare_inputs(self, generation_batch)
            row_shuffle = trl_grpo.shuffle_sequence_dict
            trl_grpo.shuffle_sequence_dict = lambda d: shuffle_whole_groups(d, self.num_generations) or row_shuffle(d)
            try:
                return base._prepare_inputs(self, generation_batch)
            finally:
                trl_grpo.shuffle_sequence_dict = row_shuffle

    return PrefixSharingGRPOTrainer
