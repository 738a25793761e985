from __future__ import annotations

from conftest_tasks import tiny_kg
from kgreason.kg.graph import Edge
from kgreason.records import PathStar, Task
from kgreason.tasks.format import (
    SYSTEM_PROMPT,
    chat_messages,
    format_completion,
    format_question,
    format_trace,
    reference_completion,
    short_trace,
)

PATH = [Edge("tls", "caused_by", "skew"), Edge("skew", "fixed_by", "ntp"), Edge("ntp", "uses_tool", "chrony")]


def test_trace_has_one_clause_per_hop_with_relation_phrases() -> None:
    kg = tiny_kg()
    assert format_trace(kg, PATH[:2]) == "TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP."
    # tuples and {"src","rel","dst"} dicts are accepted too
    assert format_trace(kg, [("ntp", "uses_tool", "chrony"), {"src": "tls", "rel": "caused_by", "dst": "cert"}]) == (
        "SyncNTP uses chronyc. TLSHandshakeError is caused by ExpiredCertificate."
    )


def test_short_trace_keeps_first_and_last_hop() -> None:
    kg = tiny_kg()
    assert short_trace(kg, PATH) == "TLSHandshakeError is caused by ClockSkew. SyncNTP uses chronyc."
    assert short_trace(kg, PATH[:2]) == format_trace(kg, PATH[:2])


def test_completion_and_messages() -> None:
    assert format_completion(" A is caused by B. ", "C") == "TRACE: A is caused by B.\nANSWER: C"
    task = Task(id="t", split="eval", hop_len=1, question="q", options={"A": "x"}, answer_star="A",
                path_star=PathStar(["tls", "skew"], [("tls", "caused_by", "skew")]), prompt="the prompt",
                reference_trace="TLSHandshakeError is caused by ClockSkew.", short_trace="S.")
    msgs = chat_messages(task)
    assert msgs == [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "the prompt"}]
    assert reference_completion(task) == "TRACE: TLSHandshakeError is caused by ClockSkew.\nANSWER: A"
    assert reference_completion(task, "short") == "TRACE: S.\nANSWER: A"


def test_question_states_start_and_every_phrase_in_order() -> None:
    q = format_question(tiny_kg(), "tls", ["caused_by", "fixed_by", "uses_tool"])
    assert "TLSHandshakeError" in q
    assert q.index("is caused by") < q.index("is fixed by") < q.index("uses")
