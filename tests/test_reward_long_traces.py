"""Scoring cost grows linearly with a completion's length, whatever it holds (issue 13: a
400k-character trace took ~9 s and grew with the square of its length).

The culprits were regular expressions with two or three `[^\\S\\n]*` in a row: a run of blanks can
be split between them in as many ways as it is long, so a long blank line (or "ANSWER:" followed
by blanks) cost the square, or the cube, of its length in backtracking. The rewritten patterns
accept exactly the same strings (checked against the old ones below) in one pass.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

import pytest

import kgreason.families.base as family_base
import kgreason.families.multiple_choice as multiple_choice
import kgreason.reward.match as match_module
from conftest_reward import example_task, small_kg
from kgreason.reward.score import Scorer

# The patterns as they were before the fix: the reference the new ones must agree with.
_H, _EMPH = r"[^\S\n]", r"[*_]{0,3}"
OLD_MARKER_LINE_RE = re.compile(
    rf"^{_H}*{_EMPH}{_H}*(?:final{_H}+)?answer{_H}*{_EMPH}{_H}*[:：]{_EMPH}", re.IGNORECASE | re.MULTILINE
)
OLD_LETTER_FIRST_RE = re.compile(rf"{_H}*[*_]{{0,3}}{_H}*(?P<open>[([{{<])?{_H}*[*_]{{0,2}}(?P<letter>[A-Da-d])")
# with the decimal-point rule added since (issue 28: in "of 3.14." the dot between digits is no clause end)
OLD_STEP_AT_CLAUSE_START_RE = re.compile(
    r"(?:^|(?:(?<=[;:!?])|(?<=\D\.)|(?<=\.)(?=[^\S\n]))[^\S\n]*)[^\S\n]*(?P<label>\d{1,3}\.)(?=\s|$)", re.MULTILINE)

PIECES = [" ", "\t", "  ", "*", "_", "(", "[", "{", "<", "A", "b", "x", "answer", "ANSWER", "final", "Final ",
          ":", "：", "\n", "1.", "12.", ".", ";", "?", "2"]


def _signature(m: re.Match | None, groups: tuple[str, ...]) -> object:
    return None if m is None else (m.span(), [(m.group(g), m.span(g)) for g in groups])


def test_rewritten_patterns_match_exactly_what_the_old_ones_did() -> None:
    rng = random.Random(13)
    for _ in range(30_000):
        s = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        assert [_signature(m, ()) for m in family_base.MARKER_LINE_RE.finditer(s)] == \
            [_signature(m, ()) for m in OLD_MARKER_LINE_RE.finditer(s)], repr(s)
        assert _signature(multiple_choice._LETTER_FIRST_RE.match(s), ("open", "letter")) == \
            _signature(OLD_LETTER_FIRST_RE.match(s), ("open", "letter")), repr(s)
        assert [_signature(m, ("label",)) for m in match_module._STEP_AT_CLAUSE_START_RE.finditer(s)] == \
            [_signature(m, ("label",)) for m in OLD_STEP_AT_CLAUSE_START_RE.finditer(s)], repr(s)


FAITHFUL = "TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP. "

# Completions of about n characters; each shape was slow before the fix or exercises a different
# stage (parser, step labels, entity and relation matching, hop reading).
SHAPES: dict[str, Callable[[int], str]] = {
    "blank line in the trace": lambda n: "TRACE: x\n" + " " * n + "\nANSWER: B",
    "blanks after ANSWER:": lambda n: "TRACE: x\nANSWER:" + " " * n + "x",
    "tabs after a full stop": lambda n: "TRACE: ClockSkew." + "\t" * n + "1. SyncNTP\nANSWER: B",
    "long faithful trace": lambda n: "TRACE: " + FAITHFUL * (n // len(FAITHFUL)) + "\nANSWER: B",
    "hedged answer line": lambda n: "TRACE: x\nANSWER: " + "B or C " * (n // 7),
}


def _seconds(scorer: Scorer, text: str) -> float:
    """Best of five, so a busy shared machine inflates neither size more than the other."""
    task = example_task()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        scorer.score(task, text)
        best = min(best, time.perf_counter() - t0)
    return best


# Thread method: a regex stuck in catastrophic backtracking never returns to Python, so only a
# watchdog thread can fail it (the old code took 31 s for 2,000 blanks after "ANSWER:").
@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_scoring_time_grows_linearly(shape: str) -> None:
    """Four times the text takes about four times as long (< 10x; measured 4.2x); quadratic would be
    16x, cubic 64x.
    A ratio of two sizes, not a time limit, so a slow machine does not fail it."""
    scorer = Scorer(small_kg())
    # 50k and 200k characters (measured 3.5-5x): a linear part of tens of milliseconds, far above the
    # per-call overhead, so a quadratic stage would still show as ~16x
    small = _seconds(scorer, SHAPES[shape](50_000))
    large = _seconds(scorer, SHAPES[shape](200_000))
    assert large / small < 10, f"{shape}: 50k chars {small:.4f}s, 200k chars {large:.4f}s"


def test_long_completion_scores_the_same_as_its_short_form() -> None:
    """Blanks do not change a reading: padding the answer line and the trace keeps the result."""
    scorer = Scorer(small_kg())
    task = example_task()
    short = "TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP.\nANSWER: B"
    padded = ("TRACE: TLSHandshakeError is caused by ClockSkew." + " " * 50_000
              + "ClockSkew is fixed by SyncNTP.\n" + " " * 50_000 + "\nANSWER:" + " " * 50_000 + "B")
    a, b = scorer.score(task, short), scorer.score(task, padded)
    assert a.answer == b.answer == "B"
    assert (a.format_ok, a.correct, a.faithful, a.valid_hops, a.total) == \
        (b.format_ok, b.correct, b.faithful, b.valid_hops, b.total)
