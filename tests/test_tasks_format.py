from __future__ import annotations

import pytest

from conftest_tasks import tiny_kg
from kgreason.kg.graph import Edge
from kgreason.records import PathStar, Task
from kgreason.tasks.format import (
    SYSTEM_PROMPT,
    chat_messages,
    format_answer,
    format_chain,
    format_completion,
    format_fact,
    format_options,
    format_prompt,
    format_question,
    format_trace,
    reference_completion,
    short_trace,
)

PATH = [Edge("tls", "caused_by", "skew"), Edge("skew", "fixed_by", "ntp"), Edge("ntp", "uses_tool", "chrony")]


def test_trace_has_one_numbered_clause_per_hop_with_relation_phrases() -> None:
    kg = tiny_kg()
    assert format_trace(kg, PATH[:2]) == "1. TLSHandshakeError is caused by ClockSkew. 2. ClockSkew is fixed by SyncNTP."
    # tuples and {"src","rel","dst"} dicts are accepted too
    assert format_trace(kg, [("ntp", "uses_tool", "chrony"), {"src": "tls", "rel": "caused_by", "dst": "cert"}]) == (
        "1. SyncNTP uses chronyc. 2. TLSHandshakeError is caused by ExpiredCertificate."
    )
    # each clause is the fact's own sentence
    assert format_trace(kg, PATH, numbers=()) == " ".join(format_fact(kg, e) for e in PATH)
    assert format_fact(kg, PATH[0]) == "TLSHandshakeError is caused by ClockSkew."
    with pytest.raises(ValueError):
        format_trace(kg, PATH, numbers=[1, 2])


def test_short_trace_keeps_first_and_last_hop_with_their_numbers() -> None:
    kg = tiny_kg()
    assert short_trace(kg, PATH) == "1. TLSHandshakeError is caused by ClockSkew. 3. SyncNTP uses chronyc."
    assert short_trace(kg, PATH[:2]) == format_trace(kg, PATH[:2])


def test_completion_names_the_entity_and_its_letter() -> None:
    assert format_completion(" 1. A is caused by B. ", "C") == "TRACE: 1. A is caused by B.\nANSWER: C"
    assert format_completion("1. A is caused by B.", "C", "B") == "TRACE: 1. A is caused by B.\nANSWER: B (C)"
    assert format_answer("B", "SyncNTP") == "SyncNTP (B)" and format_answer("B") == "B"


def test_completion_and_messages() -> None:
    task = Task(id="t", split="eval", hop_len=1, question="q", options={"A": "x"}, answer_star="A",
                path_star=PathStar(["tls", "skew"], [("tls", "caused_by", "skew")]), prompt="the prompt",
                reference_trace="1. TLSHandshakeError is caused by ClockSkew.", short_trace="1. S.")
    msgs = chat_messages(task)
    assert msgs == [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "the prompt"}]
    assert reference_completion(task) == "TRACE: 1. TLSHandshakeError is caused by ClockSkew.\nANSWER: x (A)"
    assert reference_completion(task, "short") == "TRACE: 1. S.\nANSWER: x (A)"
    with pytest.raises(ValueError):
        reference_completion(task, "long")


def test_system_prompt_is_short_and_shows_the_format() -> None:
    assert len(SYSTEM_PROMPT) < 300
    assert "\nTRACE: 1. A is caused by B. 2. B is fixed by C.\nANSWER: C (D)" in SYSTEM_PROMPT


def test_question_states_start_and_every_phrase_in_order_numbered() -> None:
    kg = tiny_kg()
    chain = ["caused_by", "fixed_by", "uses_tool"]
    assert format_chain(kg, chain) == "1. is caused by, 2. is fixed by, 3. uses"
    q = format_question(kg, "tls", chain)
    assert q == ("Start at TLSHandshakeError and follow 3 hops: 1. is caused by, 2. is fixed by, 3. uses. "
                 "Which entity do you reach?")
    assert q.index("is caused by") < q.index("is fixed by") < q.index("uses")
    assert "follow 1 hop: 1. is caused by." in format_question(kg, "tls", chain[:1])


def test_prompt_lists_facts_question_and_options_without_a_format_hint() -> None:
    options = {"B": "RotateCertificate", "A": "SyncNTP", "D": "helm", "C": "chronyc"}
    assert format_options(options) == "SyncNTP (A)\nRotateCertificate (B)\nchronyc (C)\nhelm (D)"
    closed = format_prompt("Q?", options)
    assert closed == "Question: Q?\n\nOptions:\nSyncNTP (A)\nRotateCertificate (B)\nchronyc (C)\nhelm (D)"
    opened = format_prompt("Q?", options, ["X is caused by Y.", "Y is fixed by Z."])
    assert opened == "Facts:\nX is caused by Y.\nY is fixed by Z.\n\n" + closed
    assert "ANSWER" not in opened and "TRACE" not in opened
