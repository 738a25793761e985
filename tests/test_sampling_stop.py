"""The samplers' stop rule is the reward's answer reader: same lines, same letters, no own regex.

No model needed: these check kgreason.sampling.base directly (the hf sampler's scripted-model
tests in test_sampling_hf.py check the same rule end to end).
"""

from __future__ import annotations

import pytest

import kgreason.sampling.base as base
from kgreason.reward.parse import AnswerLine, parse_completion
from kgreason.sampling import answer_line_end, trim_after_answer


def test_the_stop_rule_delegates_to_the_reward_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, bool, str | None]] = []

    def fake(text: str, final: bool = True, family: str | None = None) -> AnswerLine | None:
        calls.append((text, final, family))
        return AnswerLine("C", "", 0, 7, len(text))

    monkeypatch.setattr(base, "find_answer_line", fake)
    monkeypatch.setattr(base, "cut_after_answer", lambda text, family=None: f"cut/{family}:" + text)
    assert answer_line_end("anything") == 7
    assert answer_line_end("more", "free_form") == 7
    # a generation in progress is read as unfinished, under the task family's rule
    assert calls == [("anything", False, None), ("more", False, "free_form")]
    assert trim_after_answer("x") == "cut/None:x"
    assert trim_after_answer("x", "free_form") == "cut/free_form:x"
    assert not any(name.endswith("_RE") for name in vars(base)), "the sampler keeps no answer regex of its own"


@pytest.mark.parametrize(
    ("generated", "stops"),
    [
        ("TRACE: x.\nANSWER: jstat", False),  # the entity-first line has no letter yet
        ("TRACE: x.\nANSWER: jstat (D", False),  # ... nor before its closing bracket
        # These stopped at once before; the stop now waits for the end of the answer line, since
        # the rest of it may still name a second option ("ANSWER: jstat (D) or jcmd (C)").
        ("TRACE: x.\nANSWER: jstat (D)", False),
        ("TRACE: x.\nANSWER: D-Bus (B)", False),
        ("TRACE: x.\nANSWER: D)", False),
        ("TRACE: x.\nANSWER: (c)", False),
        ("TRACE: x.\n**Answer:** D.", False),
        ("TRACE: x.\nANSWER: jstat (D)\n", True),  # ... and stop at the line's newline
        ("TRACE: x.\nANSWER: D-Bus (B)\n", True),
        ("TRACE: x.\nANSWER: D)\n", True),
        ("TRACE: x.\nANSWER: (c)\n", True),
        ("TRACE: x.\n**Answer:** D.\n", True),
        ("TRACE: x.\nANSWER: D", False),  # may still become "ANSWER: D-Bus (B)"
        ("TRACE: x.\nANSWER: D\n", True),
        ("TRACE: x.\nANSWER: SyncNTP (B) or CheckNTPStatus (C)", False),
        ("TRACE: x.\nANSWER: SyncNTP (B) or CheckNTPStatus (C)\n", True),  # a hedge decides too: no answer
        ("TRACE: x.\nANSWER: B or C\n", True),
        ("TRACE: x.\nANSWER:", False),
        ("TRACE: x.\nAnswer: Because", False),
        ("TRACE: to answer a question", False),
        ("TRACE: x.\nANSWER: E\n", False),
        ("TRACE: so the answer is a tool.\n", False),  # prose never stops a sequence (it read as A before)
        ("TRACE: x. The answer is (B).\n", False),
    ],
)
def test_stop_rule(generated: str, stops: bool) -> None:
    assert (answer_line_end(generated) is not None) is stops


def test_stopped_text_reads_as_the_stop_rule_saw_it() -> None:
    """Whatever a token carried past the line is cut, and the reward then reads the same letter."""
    generated = "TRACE: a is caused by b.\nANSWER: jstat (D)\nUser: and now ANSWER: A"
    # The stop is decided by the token that ends the answer line (it was the ")" before the line
    # had to end, so that nothing after the letter could name a second option).
    assert answer_line_end(generated[: generated.index(")") + 1]) is None
    assert answer_line_end(generated[: generated.index(")") + 2]) is not None
    kept = trim_after_answer(generated)
    assert kept == "TRACE: a is caused by b.\nANSWER: jstat (D)"
    p = parse_completion(kept)
    assert (p.answer, p.answer_entity) == ("D", "jstat") == (parse_completion(generated).answer, "jstat")


def test_window_with_a_partial_first_line() -> None:
    """The hf sampler decodes only the last tokens; a line cut off at the window's start does not
    count as starting there ("...so the ANSWER: B" is prose, not an answer line)."""
    # The answer lines end with their newline: the stop waits for the end of the answer line.
    assert not base.window_has_answer_line("ANSWER: B)\n", whole=False)
    assert base.window_has_answer_line("ANSWER: B)\n", whole=True)
    assert base.window_has_answer_line("is fixed by c.\nANSWER: B)\n", whole=False)
    assert not base.window_has_answer_line("is fixed by c.\nANSWER: B)", whole=False)  # the line may go on
    assert not base.window_has_answer_line("is fixed by c.\nANSWER: jstat", whole=False)


def test_stopped_hedge_reads_as_no_answer() -> None:
    """A hedge stops the sequence at its line's end; the cut text has no answer, and no later
    clean answer line is kept to rescue it."""
    generated = "TRACE: a is caused by b.\nANSWER: jstat (D) or jcmd (C)\nANSWER: D"
    assert answer_line_end(generated[: generated.index("(C)") + 3]) is None
    assert answer_line_end(generated[: generated.index("(C)") + 4]) is not None
    kept = trim_after_answer(generated)
    assert kept == "TRACE: a is caused by b.\nANSWER: jstat (D) or jcmd (C)"
    for text in (kept, generated):
        p = parse_completion(text)
        assert (p.format_ok, p.answer) == (False, None)
