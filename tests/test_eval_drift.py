"""Drift: KL of a model from its base is 0 for the base itself and > 0 once adapter weights move."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from kgreason.evaluate.drift import has_adapter, mean_token_kl  # noqa: E402
from kgreason.models import load_model  # noqa: E402

PAIRS = [
    ([{"role": "system", "content": "Answer."}, {"role": "user", "content": "Start at A, follow 1 hop."}],
     "TRACE: A is caused by B.\nANSWER: B"),
    ([{"role": "system", "content": "Answer."}, {"role": "user", "content": "Start at C, follow 2 hops, longer."}],
     "TRACE: C uses D. D is fixed by E.\nANSWER: C"),
    ([{"role": "user", "content": "Empty completion is skipped."}], ""),
]


def _lora(model):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    return get_peft_model(model, cfg)


def test_drift_zero_for_base_and_positive_after_perturbing_adapter():
    model, tok = load_model("tiny:random", dtype="fp32", device="cpu")
    assert mean_token_kl(model, tok, PAIRS) is None  # no adapter, no base: nothing to compare

    same = mean_token_kl(model, tok, PAIRS, base_model=model)
    assert same is not None and same.items == 2 and same.tokens > 10
    assert same.mean_kl == pytest.approx(0.0, abs=1e-7)

    peft_model = _lora(model)
    assert has_adapter(peft_model)
    fresh = mean_token_kl(peft_model, tok, PAIRS, batch_size=1)
    assert fresh.mean_kl == pytest.approx(0.0, abs=1e-7)  # LoRA B starts at zero: identity adapter

    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.add_(0.5 * torch.randn_like(p))
    moved = mean_token_kl(peft_model, tok, PAIRS, batch_size=2)
    assert moved.mean_kl > 1e-4
    assert moved.tokens == fresh.tokens
    # batching must not change the number: right padding keeps positions intact
    moved1 = mean_token_kl(peft_model, tok, PAIRS, batch_size=1)
    assert moved1.mean_kl == pytest.approx(moved.mean_kl, rel=1e-4)


def test_completion_logprobs_match_a_plain_forward_pass():
    from kgreason.evaluate.drift import _completion_logprobs, encode_completion, encode_prompt

    model, tok = load_model("tiny:random", dtype="fp32", device="cpu")
    batch = [(encode_prompt(tok, m), encode_completion(tok, c, 64)) for m, c in PAIRS[:2]]
    got = _completion_logprobs(model, batch, tok.pad_token_id)
    with torch.no_grad():
        for (p, c), lp in zip(batch, got, strict=True):
            full = model(input_ids=torch.tensor([p + c])).logits[0].float().log_softmax(-1)
            want = full[len(p) - 1 : len(p) + len(c) - 1]
            assert lp.shape == want.shape
            assert torch.allclose(lp, want, atol=1e-4)


def test_merged_for_sampling_gives_the_same_outputs_and_restores_weights_exactly():
    from kgreason.evaluate.runner import merged_for_sampling

    model, _ = load_model("tiny:random", dtype="bf16", device="cpu")
    pm = _lora(model)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.add_(0.5 * torch.randn_like(p))
    before = {n: p.detach().clone() for n, p in pm.named_parameters()}
    ids = torch.randint(0, 1000, (2, 12))
    with torch.no_grad():
        want = pm(input_ids=ids).logits.float()
        with merged_for_sampling(pm):
            got = pm(input_ids=ids).logits.float()
        again = pm(input_ids=ids).logits.float()
    assert torch.allclose(got, want, atol=0.1)  # bf16 merge rounding only
    assert torch.equal(again, want)
    for n, p in pm.named_parameters():
        assert torch.equal(p, before[n]), n


def test_entropy_per_item_equals_a_direct_computation_for_model_and_base():
    """Each pair's entropy (the model's) and base entropy (the other model's) equal the mean over its
    completion positions of -sum p log p from a plain full-logits forward pass; the overall figures
    are their token-weighted means; an empty completion has no row."""
    from kgreason.evaluate.drift import encode_completion, encode_prompt

    model, tok = load_model("tiny:random", dtype="fp32", device="cpu")
    other, _ = load_model("tiny:random:3", dtype="fp32", device="cpu")
    with torch.no_grad():
        model.model.norm.weight.mul_(8.0)  # logits x8: a sharper distribution than the near-uniform random one
    pairs = [PAIRS[2], PAIRS[0], PAIRS[1]]  # the empty completion first, one pair a batch: rows must not shift
    res = mean_token_kl(model, tok, pairs, base_model=other, batch_size=1)
    assert len(res.per_item) == len(pairs) and res.per_item[0] is None

    def direct(m, messages, completion) -> float:
        p, c = encode_prompt(tok, messages), encode_completion(tok, completion, 256)
        with torch.no_grad():
            logits = m(input_ids=torch.tensor([p + c])).logits[0, len(p) - 1: len(p) + len(c) - 1]
        lp = torch.log_softmax(logits.float(), dim=-1)
        return float(-(lp.exp() * lp).sum(-1).mean())

    for (messages, completion), row in zip(pairs[1:], res.per_item[1:], strict=True):
        assert row.entropy == pytest.approx(direct(model, messages, completion), abs=1e-4)
        assert row.base_entropy == pytest.approx(direct(other, messages, completion), abs=1e-4)
        assert row.kl > 0 and row.entropy < row.base_entropy - 0.5
    rows = res.per_item[1:]
    assert res.tokens == sum(r.tokens for r in rows)
    assert res.mean_entropy == pytest.approx(sum(r.entropy * r.tokens for r in rows) / res.tokens)
    assert "per_item" not in res.to_dict() and res.to_dict()["mean_entropy"] == res.mean_entropy
