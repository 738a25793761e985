"""The completion parser: tolerant of harmless drift, never raising, strict about the rest."""

from __future__ import annotations

import random
import string

import pytest

from kgreason.reward.parse import parse_completion


@pytest.mark.parametrize(
    "text, answer, trace",
    [
        ("TRACE: A is caused by B.\nANSWER: B", "B", "A is caused by B."),
        ("trace: x\nanswer: c", "C", "x"),
        ("TRACE:x ANSWER:D", "D", "x"),
        ("  TRACE :   spaced out   \n  ANSWER :  A  ", "A", "spaced out"),
        ("TRACE: x\nANSWER: (B)", "B", "x"),
        ("TRACE: x\nANSWER: [c]", "C", "x"),
        ("TRACE: x\nAnswer: b", "B", "x"),
        ("TRACE: x\nANSWER: B) SyncNTP", "B", "x"),
        ("TRACE: x\nANSWER: B. SyncNTP is the fix.", "B", "x"),
        ("TRACE: x\nANSWER: B\nTRACE: more\nANSWER: C", "B", "x"),  # the first answer counts
        ("TRACE: x\nANSWER: A\n\nUser: next question", "A", "x"),
        ("**TRACE:** x\n**ANSWER:** C", "C", "x"),
        ("TRACE: x\nFinal answer: D", "D", "x"),
        ("ANSWER: D\nTRACE: y", "D", "y"),  # answer first, as the hobby parser accepts
        ("TRACE:\nANSWER: A", "A", ""),  # an empty trace is well formed
        ("TRACE: line one\nline two\nANSWER: B", "B", "line one\nline two"),
    ],
)
def test_tolerated_variants(text: str, answer: str, trace: str) -> None:
    p = parse_completion(text)
    assert p.format_ok, p.error
    assert p.answer == answer
    assert p.trace == trace


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "no TRACE"),
        ("The fix is SyncNTP.", "no TRACE"),
        ("TRACE: A is caused by B.", "no ANSWER"),
        ("TRACE: x\nANSWER: E", "no ANSWER"),  # not an option letter
        ("TRACE: x\nANSWER: Because the clock drifts", "no ANSWER"),  # a word, not a letter
        ("TRACE: x\nANSWER: AB", "no ANSWER"),
        ("TRACE: to answer a question we look at B\n", "no ANSWER"),  # "answer a" without a separator
        ("TRACE: x\nANSWER:", "no ANSWER"),
    ],
)
def test_format_failures(text: str, why: str) -> None:
    p = parse_completion(text)
    assert not p.format_ok
    assert why in p.error


def test_answer_without_trace_is_a_format_failure_that_keeps_the_letter() -> None:
    p = parse_completion("ANSWER: C")
    assert not p.format_ok
    assert p.answer == "C"  # kept for diagnostics
    assert not p.has_trace
    assert p.error == "no TRACE: marker"


@pytest.mark.parametrize("value", [None, 3, b"TRACE: x\nANSWER: B", ["TRACE: x", "ANSWER: B"]])
def test_non_text_is_a_format_failure(value: object) -> None:
    p = parse_completion(value)
    assert not p.format_ok and p.answer is None


def test_fuzz_never_raises_and_answers_are_letters() -> None:
    rng = random.Random(1234)
    alphabet = string.printable + "ÄİßЖ中→…　\u200b"
    pieces = ["TRACE:", "ANSWER:", "answer is", "(", ")", "A", "b", "C.", "d)", "**", "\n", " ", "TRACE", ":"]
    for _ in range(3000):
        if rng.random() < 0.5:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        else:
            text = "".join(rng.choice(pieces + [rng.choice(alphabet)]) for _ in range(rng.randint(0, 30)))
        p = parse_completion(text)
        assert p.answer in (None, "A", "B", "C", "D")
        assert p.format_ok == (p.answer is not None and p.has_trace)
        assert p.format_ok or p.error


def test_chat_style_completion_reads_the_last_assistant_message() -> None:
    messages = [{"role": "user", "content": "ANSWER: A"}, {"role": "assistant", "content": "TRACE: x\nANSWER: C"}]
    p = parse_completion(messages)
    assert p.format_ok and p.answer == "C"
    assert not parse_completion([{"role": "assistant", "content": None}]).format_ok
