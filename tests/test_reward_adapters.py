"""The reward adapters (kgreason.reward.adapters), each called the way its framework calls it.

verl calls `compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)` per
response (decoded without special tokens); OpenRLHF calls `reward_func(queries, prompts, labels)`
with queries = prompt + response as decoded text; TRL calls a reward function with `prompts`,
`completions` and every dataset column as keyword arguments. Every adapter must rank an honest
faithful completion above the adversarial ones, and agree with `Scorer.score` on the whole graph.
"""

from __future__ import annotations

import json

import pytest

from conftest_reward import example_task, small_kg
from kgreason.reward import Scorer
from kgreason.reward.adapters import (
    GROUND_TRUTH_FORMAT,
    chain_neighbourhood,
    compute_score,
    ground_truth,
    load_ground_truth,
    response_from_query,
    reward_func,
    score_ground_truth,
    trl_reward,
)
from kgreason.tasks.format import SYSTEM_PROMPT, format_prompt

HONEST = "TRACE: 1. TLSHandshakeError is caused by ClockSkew. 2. ClockSkew is fixed by SyncNTP.\nANSWER: SyncNTP (B)"
ADVERSARIAL = {
    # the right letter, no trace at all (no TRACE: marker: a format failure)
    "letter_only": "ANSWER: B",
    # the right letter with an empty trace
    "empty_trace": "TRACE:\nANSWER: B",
    # hops that are not edges, through a real entity and through a made-up one
    "fabricated_hops": "TRACE: TLSHandshakeError is caused by RestartPod. RestartPod is fixed by SyncNTP.\nANSWER: B",
    "fabricated_entity": "TRACE: TLSHandshakeError is caused by Gremlins. Gremlins is fixed by SyncNTP.\nANSWER: B",
    # the gold clauses, hedged: they claim nothing
    "hedged_trace": "TRACE: TLSHandshakeError might be caused by ClockSkew. ClockSkew may be fixed by SyncNTP.\nANSWER: B",
    # a faithful trace, then an answer that hedges between two letters
    "hedged_answer": "TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP.\nANSWER: B or C",
    **{f"hedged_answer_{name}": f"TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP.\n{line}"
       for name, line in {
           "bracketed": "ANSWER: SyncNTP (B) or CheckNTPStatus (C)",
           "parenthetical": "ANSWER: B (or maybe C)",
           "slash": "ANSWER: B/C",
           "both_bracketed": "ANSWER: (B) and (C)",
           "then_clean": "ANSWER: B or C\nANSWER: SyncNTP (B)",  # the first answer line decides: no rescue
       }.items()},
    # the wrong relation on the first hop
    "wrong_relation": "TRACE: TLSHandshakeError leads to ClockSkew. ClockSkew is fixed by SyncNTP.\nANSWER: B",
    # naming everything
    "entity_dump": "TRACE: TLSHandshakeError ClockSkew SyncNTP CheckNTPStatus RestartPod.\nANSWER: B",
    # a real chain to a non-option, and a wrong letter
    "other_branch_wrong": ("TRACE: TLSHandshakeError is caused by ExpiredCertificate. ExpiredCertificate is fixed by "
                           "RotateCertificate.\nANSWER: A"),
    "unparseable": "The fix is SyncNTP.",
}
CHAT_PROMPT = "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def label() -> str:
    return ground_truth(small_kg(), _task())


def _task():
    task = example_task()
    task.prompt = format_prompt(task.question, task.options)
    return task


def _chat_prompt() -> str:
    return CHAT_PROMPT.format(system=SYSTEM_PROMPT, user=_task().prompt)


def test_label_is_self_contained_json(label: str) -> None:
    data = json.loads(label)
    assert data["format"] == GROUND_TRUTH_FORMAT
    assert data["task"]["start"] == "tls_handshake_error"
    assert data["task"]["relation_chain"] == ["caused_by", "fixed_by"]
    assert data["task"]["answer_star"] == "B" and data["task"]["answer_id"] == "sync_ntp"
    edges = {tuple(e) for e in data["kg"]["edges"]}
    assert ("tls_handshake_error", "caused_by", "clock_skew") in edges and ("clock_skew", "fixed_by", "sync_ntp") in edges
    # the OOM part of the graph is nowhere near the chain, and only the option is kept of it
    assert ("oom_killed", "caused_by", "memory_leak") not in edges
    task, kg = load_ground_truth(label)
    assert task.option_ids == _task().option_ids and kg.has_edge("clock_skew", "fixed_by", "sync_ntp")


def test_neighbourhood_keeps_every_edge_the_chain_can_use() -> None:
    kg, task = small_kg(), _task()
    sub = chain_neighbourhood(kg, task)
    # frontier 0 = {TLSHandshakeError}, frontier 1 = its caused_by tails: all their out-edges are kept
    for node in ("tls_handshake_error", "clock_skew", "expired_certificate", "ntp_unreachable"):
        for rel, tails in kg.out_relations(node).items():
            for tail in tails:
                assert sub.has_edge(node, rel, tail), (node, rel, tail)
    assert set(sub.relations) == set(kg.relations)


def test_verl_compute_score_orders_honest_above_adversarial(label: str) -> None:
    def verl(text: str) -> float:  # as verl's NaiveRewardManager calls a custom reward function
        return compute_score(data_source="kgreason", solution_str=text, ground_truth=label,
                             extra_info={"split": "eval", "index": 0})

    honest = verl(HONEST)
    assert honest == pytest.approx(1.8)
    for name, text in ADVERSARIAL.items():
        assert verl(text) < honest, name
    assert verl(ADVERSARIAL["letter_only"]) == pytest.approx(-1.5)  # no trace: a format failure
    assert verl(ADVERSARIAL["hedged_answer"]) == pytest.approx(-1.5)
    assert verl(ADVERSARIAL["fabricated_hops"]) == pytest.approx(verl(ADVERSARIAL["empty_trace"]))  # fake hops earn nothing
    assert isinstance(verl(HONEST), float)


def test_verl_accepts_a_dict_label_and_reward_kwargs(label: str) -> None:
    as_dict = json.loads(label)
    assert compute_score("kgreason", HONEST, as_dict) == compute_score("kgreason", HONEST, label)
    assert compute_score("kgreason", HONEST, label, None, preset="seed") == pytest.approx(1.5)


def test_openrlhf_reward_func_on_prompt_plus_response(label: str) -> None:
    prompt = _chat_prompt()
    texts = [HONEST, *ADVERSARIAL.values()]
    queries = [prompt + t + "<|im_end|>" for t in texts]
    rewards = reward_func(queries, [prompt] * len(texts), [label] * len(texts))
    assert isinstance(rewards, list) and all(isinstance(r, float) for r in rewards)
    assert rewards[0] == pytest.approx(1.8)
    assert all(r < rewards[0] for r in rewards[1:])
    # the same numbers as verl's adapter on the bare responses
    assert rewards == [compute_score("kgreason", t, label) for t in texts]


def test_openrlhf_never_scores_the_system_prompts_example(label: str) -> None:
    """The system prompt shows 'TRACE: ... ANSWER: C (D)'; an empty response must not be read as it."""
    prompt = _chat_prompt()
    assert reward_func([prompt], [prompt], [label]) == [pytest.approx(-1.5)]
    # a query that does not start with the prompt verbatim (re-tokenised whitespace): cut after the options
    drifted = prompt.replace("<|im_start|>user\n", "<|im_start|>user \n")
    assert reward_func([drifted + HONEST], [prompt], [label]) == [pytest.approx(1.8)]
    assert response_from_query(drifted + HONEST, prompt, _task()).endswith(HONEST)


def test_openrlhf_result_wraps_into_a_tensor(label: str) -> None:
    torch = pytest.importorskip("torch")
    prompt = _chat_prompt()
    rewards = torch.tensor(reward_func([prompt + HONEST], [prompt], [label]))
    assert rewards.shape == (1,) and rewards.dtype == torch.float32


def test_trl_reward_with_dataset_columns(label: str) -> None:
    prompts = [[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": _task().prompt}]] * 3
    conversational = [[{"role": "assistant", "content": t}] for t in (HONEST, ADVERSARIAL["hedged_trace"])]
    completions = [*conversational, ADVERSARIAL["fabricated_hops"] + "\nTRACE: more text past the answer"]
    rewards = trl_reward(prompts=prompts, completions=completions, ground_truth=[label] * 3,
                         answer=["B"] * 3, trainer_state=None)
    assert rewards[0] == pytest.approx(1.8) and rewards[1] < rewards[0] and rewards[2] < rewards[0]
    assert trl_reward.__name__ == "kg_reward"


def test_adapters_agree_with_the_whole_graph_scorer(label: str) -> None:
    scorer, task = Scorer(small_kg()), _task()
    for text in [HONEST, *ADVERSARIAL.values()]:
        assert score_ground_truth(label, text) == scorer.score(task, text)


def test_bad_labels_raise_one_clear_error() -> None:
    for bad in ("not json", json.dumps({"task": {}}), json.dumps({"format": GROUND_TRUTH_FORMAT, "task": {}})):
        with pytest.raises(ValueError, match="kgreason ground truth"):
            compute_score("kgreason", HONEST, bad)


def test_bracketed_two_option_answer_is_not_full_credit(label: str) -> None:
    """An answer line naming two options claims nothing: a format failure, never the first letter's
    credit (it was read as B, and paid 1.8, before reward/parse.py learned to see the hedge)."""
    hedges = {name: text for name, text in ADVERSARIAL.items() if name.startswith("hedged_answer")}
    assert len(hedges) == 6
    honest = compute_score("kgreason", HONEST, label)
    for name, text in hedges.items():
        assert compute_score("kgreason", text, label) < honest, name
        b = score_ground_truth(label, text)
        assert (b.format_ok, b.correct, b.answer) == (False, False, None), name
        assert b.total == pytest.approx(-1.5), name  # the kgreason preset's format-failure score
