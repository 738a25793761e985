"""The hf sampler on the tiny model: correctness against transformers, determinism, the answer-line stop."""

from __future__ import annotations

import pytest
import torch

from kgreason.models import load_model
from kgreason.reward.parse import parse_completion
from kgreason.sampling import SamplingParams, get_sampler
from kgreason.sampling.hf import HFSampler

ITEMS = [
    ("short", [{"role": "user", "content": "Which fix?"}]),
    ("long", [{"role": "user", "content": "TLSHandshakeError is caused by what, and which tool diagnoses it? " * 3}]),
    ("mid", [{"role": "user", "content": "Follow caused_by then fixed_by from DiskFull."}]),
]


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny:random", dtype="fp32")


class ScriptedLM(torch.nn.Module):
    """Wraps the tiny model but forces every row to emit `script` token by token (then eos)."""

    def __init__(self, model, script: list[int], eos: int) -> None:
        super().__init__()
        self.inner, self.script, self.eos = model, script, eos
        self.config, self.generation_config = model.config, model.generation_config
        self.prompt_width = 0

    def forward(self, input_ids, attention_mask, **kw):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, **kw)
        if input_ids.shape[1] > 1:  # prefill
            self.prompt_width = attention_mask.shape[-1]
        step = attention_mask.shape[-1] - self.prompt_width  # the decode mask may be 4D [rows, 1, 1, columns]
        token = self.script[step] if step < len(self.script) else self.eos
        forced = torch.full_like(out.logits[:, -1:, :], -1e9)
        forced[..., token] = 0.0
        out.logits = forced
        return out


def _scripted(tiny, text: str) -> HFSampler:
    model, tok = tiny
    script = tok(text, add_special_tokens=False)["input_ids"]
    return HFSampler(ScriptedLM(model, script, tok.eos_token_id), tok)


def test_greedy_matches_transformers_generate_even_when_left_padded(tiny):
    model, tok = tiny
    sampler = get_sampler(model, tok, backend="hf")
    params = SamplingParams(k=1, temperature=0, max_new_tokens=12, stop_at_answer=False)
    ours = sampler.generate(ITEMS, params, progress=False)
    for (task_id, messages), c in zip(ITEMS, ours, strict=True):
        ids = torch.tensor([sampler.encode(messages)])
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12,
                             pad_token_id=tok.pad_token_id)
        new = ref[0, ids.shape[1]:].tolist()
        assert c.task_id == task_id
        assert c.text == tok.decode(new, skip_special_tokens=True)
        assert c.prompt_tokens == ids.shape[1]


def test_same_seed_same_samples_other_seed_other_samples(tiny):
    sampler = get_sampler(*tiny, backend="hf")
    p = SamplingParams(k=3, temperature=1.0, max_new_tokens=10, seed=5)
    a = sampler.generate(ITEMS, p, progress=False)
    b = sampler.generate(ITEMS, p, progress=False)
    c = sampler.generate(ITEMS, SamplingParams(k=3, temperature=1.0, max_new_tokens=10, seed=6), progress=False)
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.text for x in a] != [x.text for x in c]
    assert [(x.task_id, x.sample_index) for x in a] == [(t, j) for t, _ in ITEMS for j in range(3)]
    assert len({x.text for x in a}) > 3  # the k samples of a prompt differ


def test_batch_size_does_not_change_samples(tiny):
    model, tok = tiny
    p = SamplingParams(k=2, temperature=1.0, max_new_tokens=8, seed=1)
    one_by_one = HFSampler(model, tok, batch_size=2).generate(ITEMS, p, progress=False)
    together = HFSampler(model, tok, batch_size=64).generate(ITEMS, p, progress=False)
    assert [c.text for c in one_by_one] == [c.text for c in together]


def test_tiny_top_p_is_greedy(tiny):
    sampler = get_sampler(*tiny, backend="hf")
    greedy = sampler.generate(ITEMS, SamplingParams(k=1, temperature=0, max_new_tokens=8), progress=False)
    nucleus = sampler.generate(ITEMS, SamplingParams(k=1, temperature=1.0, top_p=1e-6, max_new_tokens=8), progress=False)
    assert [c.text for c in greedy] == [c.text for c in nucleus]


def test_stops_as_soon_as_the_answer_line_is_complete(tiny):
    sampler = _scripted(tiny, "TRACE: DiskFull is fixed by Cleanup.\nANSWER: B\nBecause more text follows")
    (c,) = sampler.generate(ITEMS[:1], SamplingParams(k=1, temperature=0, max_new_tokens=80), progress=False)
    assert c.finish_reason == "answer"
    assert c.text == "TRACE: DiskFull is fixed by Cleanup.\nANSWER: B"
    tok = tiny[1]
    assert c.completion_tokens == len(tok(c.text, add_special_tokens=False)["input_ids"])


def test_without_answer_line_it_runs_to_eos_or_length(tiny):
    sampler = _scripted(tiny, "TRACE: no answer here, Answer: because")
    eos, = sampler.generate(ITEMS[:1], SamplingParams(k=1, temperature=0, max_new_tokens=80), progress=False)
    assert eos.finish_reason == "eos" and eos.text == "TRACE: no answer here, Answer: because"
    short, = sampler.generate(ITEMS[:1], SamplingParams(k=1, temperature=0, max_new_tokens=3), progress=False)
    assert short.finish_reason == "length" and short.completion_tokens == 3
    off = _scripted(tiny, "ANSWER: C then more")
    run_on, = off.generate(ITEMS[:1], SamplingParams(k=1, temperature=0, max_new_tokens=80, stop_at_answer=False),
                           progress=False)
    assert run_on.finish_reason == "eos" and run_on.text == "ANSWER: C then more"


def test_entity_first_answer_line_stops_at_its_end_not_before(tiny):
    """"ANSWER: jstat" is no answer yet, nor is "ANSWER: jstat (D)" while the rest of its line may
    still name a second option ("or jcmd (C)", a hedge); the sequence stops at the line's newline."""
    sampler = _scripted(tiny, "TRACE: jcmd is related to jstat.\nANSWER: jstat (D)\nand then a long tail of text")
    (c,) = sampler.generate(ITEMS[:1], SamplingParams(k=1, temperature=0, max_new_tokens=80), progress=False)
    assert c.finish_reason == "answer"
    assert c.text == "TRACE: jcmd is related to jstat.\nANSWER: jstat (D)"
    assert "long tail" not in c.text
    # The same tail on the answer line itself: it stopped right after "(D)" before; now the line
    # only ends with eos, and it still reads as D.
    sampler = _scripted(tiny, "TRACE: jcmd is related to jstat.\nANSWER: jstat (D) and then a long tail of text")
    (c,) = sampler.generate(ITEMS[:1], SamplingParams(k=1, temperature=0, max_new_tokens=80), progress=False)
    assert c.finish_reason == "eos" and c.text.endswith("long tail of text")
    assert parse_completion(c.text).answer == "D"


def test_a_hedged_answer_line_stops_and_reads_as_no_answer(tiny):
    sampler = _scripted(tiny, "TRACE: x.\nANSWER: jstat (D) or jcmd (C)\nANSWER: D\nmore")
    (c,) = sampler.generate(ITEMS[:1], SamplingParams(k=1, temperature=0, max_new_tokens=80), progress=False)
    assert c.finish_reason == "answer" and c.text == "TRACE: x.\nANSWER: jstat (D) or jcmd (C)"
    assert parse_completion(c.text).answer is None


def test_a_letter_that_starts_a_name_does_not_stop_early(tiny):
    sampler = _scripted(tiny, "TRACE: x.\nANSWER: D-Bus (B)\nmore")
    (c,) = sampler.generate(ITEMS[:1], SamplingParams(k=1, temperature=0, max_new_tokens=80), progress=False)
    assert c.finish_reason == "answer" and "ANSWER: D-Bus (B)" in c.text and "more" not in c.text


def test_prose_in_the_trace_does_not_stop_a_sequence(tiny):
    sampler = _scripted(tiny, "TRACE: so the answer is a tool. It is (B).\nANSWER: C")
    (c,) = sampler.generate(ITEMS[:1], SamplingParams(k=1, temperature=0, max_new_tokens=80), progress=False)
    assert c.text == "TRACE: so the answer is a tool. It is (B).\nANSWER: C"
    assert c.finish_reason == "eos"  # "ANSWER: C" was still open when eos came


def test_bad_params_and_items_are_rejected(tiny):
    with pytest.raises(ValueError, match="k must be"):
        SamplingParams(k=0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError, match="item 0"):
        get_sampler(*tiny, backend="hf").generate([("x", "not messages")], SamplingParams(), progress=False)
    with pytest.raises(ValueError, match="unknown sampling backend"):
        get_sampler(*tiny, backend="tpu")


def test_backend_choice_without_gpu(tiny):
    assert get_sampler(*tiny).name == "hf"  # auto: no vllm/GPU here
    from kgreason.sampling.vllm_backend import vllm_available

    if not vllm_available():
        with pytest.raises(RuntimeError, match="vllm"):
            get_sampler(*tiny, backend="vllm")


def test_batch_size_shrinks_to_fit_memory(tiny):
    sampler = HFSampler(*tiny, batch_size=64)
    params = SamplingParams(k=8, max_new_tokens=100)
    assert sampler.max_rows(200, params, free_bytes=1 << 40) == 64
    small = sampler.max_rows(200, params, free_bytes=64 << 20)
    assert 1 <= small < 64
    assert sampler.max_rows(200, params, free_bytes=0) == 1


class EosBiasLM(torch.nn.Module):
    """The tiny model with a boosted eos logit, so samples end at scattered lengths."""

    def __init__(self, model, eos: int, bias: float) -> None:
        super().__init__()
        self.inner, self.eos, self.bias = model, eos, bias
        self.config, self.generation_config = model.config, model.generation_config

    def forward(self, **kw):
        out = self.inner(**kw)
        out.logits[..., self.eos] += self.bias
        return out


def test_rows_joining_a_running_batch_sample_exactly_as_alone(tiny):
    """Continuous batching: prompts prefilled later join a batch whose rows are mid-generation.
    A misaligned cache or position would change their logits and so their tokens."""
    model, tok = tiny
    lm = EosBiasLM(model, tok.eos_token_id, bias=9.0)
    items = [(f"t{i}", [{"role": "user", "content": "word " * (3 * i + 1)}]) for i in range(6)]
    params = SamplingParams(k=2, temperature=1.0, max_new_tokens=12, seed=3)
    alone = [c for it in items for c in HFSampler(lm, tok, batch_size=2).generate([it], params, progress=False)]
    joined = HFSampler(lm, tok, batch_size=4).generate(items, params, progress=False)
    lengths = {c.completion_tokens for c in alone}
    assert len(lengths) >= 3 and "eos" in {c.finish_reason for c in alone}  # rows really finish at different steps
    assert [(c.task_id, c.sample_index, c.text, c.finish_reason) for c in joined] == [
        (c.task_id, c.sample_index, c.text, c.finish_reason) for c in alone
    ]


def test_prefill_split_into_parts_samples_exactly_as_one_pass(tiny):
    """The prefill runs a few prompts per forward pass and stacks their caches; prompts of different
    lengths end up right-aligned in one batch, and every row must sample as if prefilled together."""
    model, tok = tiny
    items = [(f"t{i}", [{"role": "user", "content": "word " * (5 * i + 1)}]) for i in range(7)]
    for params in (SamplingParams(k=1, temperature=0, max_new_tokens=10, stop_at_answer=False),
                   SamplingParams(k=3, temperature=1.0, max_new_tokens=10, seed=5)):
        whole = HFSampler(model, tok, batch_size=64)
        whole.prefill_tokens = 1 << 20  # one forward pass for every prompt
        parts = HFSampler(model, tok, batch_size=64)
        parts.prefill_tokens = 1  # one prompt per forward pass, seven stacked caches
        a, b = (s.generate(items, params, progress=False) for s in (whole, parts))
        assert [(c.task_id, c.sample_index, c.text) for c in a] == [(c.task_id, c.sample_index, c.text) for c in b]
        assert len(a) == 7 * params.k
