"""Tolerant parsing of the completion format ``TRACE: <trace>\\nANSWER: <letter>``.

Small models drift from the exact format in harmless ways (case, spacing, "ANSWER: (B)",
"Answer: b", "ANSWER: B) SyncNTP", text after the answer line). Those are accepted. Anything
else is a *format failure*, reported in the result, never raised: the reward must score every
string a sampler can produce.

Decisions (documented in docs/reward.md):

* The answer is the first ``ANSWER`` marker followed by a letter A-D that stands alone (not the
  first letter of a word: "Answer: because" is no answer). Text after it is ignored.
* The trace is the text after the first ``TRACE`` marker up to the next answer marker (or the
  end). An empty trace ("TRACE:\\nANSWER: B") is well formed; it just earns no trace credit.
* An answer without any ``TRACE`` marker is a format failure: its letter is kept in
  ``answer`` for diagnostics, but ``format_ok`` is false and no preset grades it as correct.
  The format asks for a trace, and grading bare letters would let a policy skip reasoning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Markdown emphasis (** or __) around markers is common in chat-tuned models.
_EMPH = r"[*_]{0,3}"
_NOT_AFTER_WORD = r"(?<![A-Za-z0-9])"
_TRACE_RE = re.compile(rf"{_NOT_AFTER_WORD}{_EMPH}trace{_EMPH}\s*[:：]{_EMPH}", re.IGNORECASE)
# The separator is required: "to answer a question" must not read as answer A.
_ANSWER_MARKER = rf"{_NOT_AFTER_WORD}{_EMPH}(?:final\s+)?answer{_EMPH}\s*(?:[:：=]|\bis\b){_EMPH}"
_ANSWER_MARKER_RE = re.compile(_ANSWER_MARKER, re.IGNORECASE)
# The letter must stand alone: "Answer: Because ..." is no answer, "ANSWER: B) SyncNTP" is B.
_ANSWER_RE = re.compile(rf"{_ANSWER_MARKER}\s*[(\[{{<]?\s*([A-Da-d])(?![A-Za-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedCompletion:
    """What could be read from one completion."""

    format_ok: bool
    answer: str | None  # upper-case letter A-D, or None when no answer line was found
    trace: str  # the trace text ("" when absent)
    has_trace: bool
    error: str = ""  # why the format failed ("" when format_ok)


def parse_completion(text: object) -> ParsedCompletion:
    """Parse a completion; never raises, whatever `text` is.

    Chat-style completions (a list of {"role", "content"} messages, as TRL passes them) are read
    from their last assistant message.
    """
    text = _message_content(text)
    if not isinstance(text, str):
        return ParsedCompletion(False, None, "", False, f"completion is {type(text).__name__}, not text")
    trace_m = _TRACE_RE.search(text)
    trace_start = trace_m.end() if trace_m else 0
    answer_m = _ANSWER_RE.search(text, trace_start)
    if answer_m is None and trace_m is not None:
        # "ANSWER: B\nTRACE: ..." puts the answer first; accept it like the hobby parser does.
        answer_m = _ANSWER_RE.search(text, 0, trace_m.start())
    answer = answer_m.group(1).upper() if answer_m else None
    if trace_m is None:
        why = "no TRACE: marker" + ("" if answer else " and no ANSWER: <A-D> line")
        return ParsedCompletion(False, answer, "", False, why)
    trace = _trace_text(text, trace_start)
    if answer is None:
        return ParsedCompletion(False, None, trace, True, "no ANSWER: <A-D> line")
    return ParsedCompletion(True, answer, trace, True)


def _message_content(value: object) -> object:
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        contents = [m.get("content") for m in value if m.get("role", "assistant") == "assistant"]
        if contents and isinstance(contents[-1], str):
            return contents[-1]
    return value


def _trace_text(text: str, start: int) -> str:
    """The trace runs from its marker to the next answer marker (well formed or not) or the end."""
    end_m = _ANSWER_MARKER_RE.search(text, start)
    return text[start : end_m.start() if end_m else len(text)].strip()
