"""GRPO's update with each group's prompt computed once (kgreason.train.grpo_prefix) gives TRL's
own per-token log-probabilities, entropies and gradients, on a tiny random Llama with LoRA."""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import torch

from kgreason.train.grpo_prefix import (
    prefix_sharing_trainer,
    prompt_groups,
    shared_prompt_logps,
    shuffle_whole_groups,
)


def _model():
    from trl.trainer.utils import add_fused_lm_head

    from kgreason.models import load_model
    from kgreason.models.lora import attach_lora

    torch.manual_seed(0)
    model, _ = load_model("tiny:random", dtype="fp32")
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))  # as GRPOTrainer does
    peft = attach_lora(model, r=4, alpha=8)
    with torch.no_grad():  # LoRA's B starts at zero: make the adapter matter for the gradients
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05)
    # no dropout: the two paths draw their masks differently (the shared prompt draws one per group)
    return peft.eval()


def _batch(vocab: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Two groups of three completions; prompts left-padded to 9 tokens, completions right-padded to 6."""
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, vocab, (9,), generator=g), torch.randint(3, vocab, (6,), generator=g)]
    rows, masks = [], []
    for p in prompts:
        for length in (6, 4, 2):
            comp = torch.randint(3, vocab, (6,), generator=g)
            comp[length:] = 0
            pad = 9 - p.numel()
            rows.append(torch.cat([torch.zeros(pad, dtype=torch.long), p, comp]))
            masks.append(torch.cat([torch.zeros(pad), torch.ones(p.numel()), (torch.arange(6) < length).float()]).long())
    return torch.stack(rows), torch.stack(masks), 6


def _trl(model, ids, mask, c):
    from trl import GRPOTrainer

    fake = SimpleNamespace(accelerator=SimpleNamespace(autocast=nullcontext, is_main_process=True))
    logps, ent, _ = GRPOTrainer._get_per_token_logps_and_entropies(fake, model, ids, mask, c, compute_entropy=True)
    return logps, ent


def test_prompt_groups_finds_the_rows_of_each_prompt_in_any_order() -> None:
    ids = torch.tensor([[1, 2], [3, 4], [1, 2], [1, 2]])
    mask = torch.ones_like(ids)
    assert prompt_groups(ids, mask) == [[0, 2, 3], [1]]
    mask[2, 0] = 0  # same ids, another padding: not the same prompt
    assert prompt_groups(ids, mask) == [[0, 3], [1], [2]]


def test_whole_groups_are_shuffled_together() -> None:
    torch.manual_seed(0)
    batch = {"prompt_ids": torch.arange(12).repeat_interleave(1).view(12, 1) // 4, "task_id": [f"t{i // 4}" for i in range(12)],
             "num_items_in_batch": torch.tensor(5)}
    out = shuffle_whole_groups(batch, 4)
    groups = out["prompt_ids"].view(-1).tolist()
    assert sorted(groups) == sorted(batch["prompt_ids"].view(-1).tolist())
    assert all(len(set(groups[i:i + 4])) == 1 for i in range(0, 12, 4))  # each micro-batch of 4: one group
    assert [f"t{g}" for g in groups] == out["task_id"] and int(out["num_items_in_batch"]) == 5
    assert shuffle_whole_groups({"x": torch.zeros(6)}, 4) is None  # not whole groups: TRL's row shuffle


def test_shared_prompt_gives_trls_log_probs_entropies_and_gradients() -> None:
    model = _model()
    ids, mask, c = _batch(model.config.vocab_size)
    order = torch.tensor([0, 3, 1, 4, 5, 2])  # the groups' rows interleaved, as TRL's row shuffle leaves them
    ids, mask = ids[order], mask[order]
    keep = mask[:, -c:].bool()
    ref_logps, ref_ent = _trl(model, ids, mask, c)
    (ref_logps[keep].sum() + 0.1 * ref_ent[keep].sum()).backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    # an entropy bonus trains through the entropies: then they keep their graph
    logps, ent = shared_prompt_logps(model, ids, mask, c, temperature=0.7, compute_entropy=True, entropy_grad=True)
    assert torch.allclose(logps[keep], ref_logps[keep], atol=1e-5)
    assert torch.allclose(ent[keep], ref_ent[keep], atol=1e-5)
    assert (logps[~keep] == 0).all()
    (logps[keep].sum() + 0.1 * ent[keep].sum()).backward()
    assert ref_grads and all(torch.allclose(p.grad, ref_grads[n], atol=1e-5, rtol=1e-4)
                             for n, p in model.named_parameters() if p.requires_grad)
    assert any(float(g.abs().sum()) > 0 for g in ref_grads.values())
    # otherwise they are a metric and a token mask: no graph, no second vocabulary-wide tensor kept
    _, ent = shared_prompt_logps(model, ids, mask, c, temperature=0.7, compute_entropy=True)
    assert not ent.requires_grad


def test_the_trainer_subclass_shares_prompts_and_falls_back_when_none_repeat() -> None:
    from trl import GRPOTrainer

    model = _model()
    ids, mask, c = _batch(model.config.vocab_size)
    cls = prefix_sharing_trainer(GRPOTrainer)
    fake = SimpleNamespace(accelerator=SimpleNamespace(autocast=nullcontext, is_main_process=True), temperature=0.7)
    calls: list[int] = []
    model.register_forward_hook(lambda m, a, kw, out: calls.append(1), with_kwargs=True)
    logps, _, _ = cls._get_per_token_logps_and_entropies(fake, model, ids, mask, c, compute_entropy=True)
    assert len(calls) == 4  # a prompt pass and a completion pass per group, not one pass of all 6 rows
    ref, _ = _trl(model, ids, mask, c)
    keep = mask[:, -c:].bool()
    assert torch.allclose(logps[keep], ref[keep], atol=1e-5)
    calls.clear()
    one_each = ids[[0, 3]], mask[[0, 3]]  # two different prompts: TRL's own path, one pass
    cls._get_per_token_logps_and_entropies(fake, model, *one_each, c)
    assert len(calls) == 1
