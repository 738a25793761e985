"""The sliced LM-head log-probabilities match plain autograd: values, metrics and gradients."""

import pytest
import torch

from kgreason.train.head_loss import target_log_probs


def reference(hidden, weight, targets):
    logits = torch.nn.functional.linear(hidden, weight).float()
    log_probs = torch.log_softmax(logits, dim=-1)
    token_lp = log_probs.gather(-1, targets[:, None]).squeeze(-1)
    with torch.no_grad():
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        top1 = logits.argmax(-1) == targets
    return token_lp, entropy, top1


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("rows", [7, 64, 1000])  # slices that split the rows unevenly, evenly, and not at all
def test_sliced_head_matches_autograd(dtype, tol, rows):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(50, 32, generator=gen).to(dtype)
    weight = (torch.randn(500, 32, generator=gen) * 0.3).to(dtype)
    targets = torch.randint(0, 500, (50,), generator=gen)
    targets[:5] = torch.nn.functional.linear(hidden[:5], weight).float().argmax(-1)  # some right guesses
    per_row = torch.rand(50, generator=gen)  # a loss weighting rows differently checks the per-row gradient

    h_ref = hidden.clone().requires_grad_(True)
    lp_ref, ent_ref, top_ref = reference(h_ref, weight, targets)
    (-(lp_ref * per_row).sum()).backward()

    h = hidden.clone().requires_grad_(True)
    lp, ent, top = target_log_probs(h, weight, targets, rows=rows)
    (-(lp * per_row).sum()).backward()

    assert torch.allclose(lp, lp_ref, atol=tol, rtol=tol)
    assert torch.allclose(ent, ent_ref, atol=tol, rtol=tol)
    assert torch.equal(top, top_ref) and top[:5].all()
    assert h.grad.dtype == dtype
    assert torch.allclose(h.grad.float(), h_ref.grad.float(), atol=tol, rtol=tol)
    assert h.grad.abs().sum() > 0


def test_a_trainable_head_is_refused():
    weight = torch.randn(10, 4, requires_grad=True)
    with pytest.raises(ValueError, match="frozen"):
        target_log_probs(torch.randn(3, 4), weight, torch.tensor([1, 2, 3]))


def test_without_a_gradient_nothing_is_kept_for_backward():
    lp, ent, top = target_log_probs(torch.randn(6, 4), torch.randn(10, 4), torch.arange(6))
    assert not lp.requires_grad and lp.shape == ent.shape == top.shape == (6,)
