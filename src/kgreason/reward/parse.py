"""Reading a completion of the form ``TRACE: <trace>\nANSWER: <answer>``.

`find_answer_line` is THE answer reader: the parser below, the samplers' stop rule
(kgreason.sampling.base), evaluation, RSFT and GRPO all go through it, so a completion means the
same thing wherever it is read. What an answer line may say is its task family's rule
(kgreason.families: a letter among options for multiple choice, an entity's name for free form);
this module reads the rest, the same for every family. Anything a sampler can produce is scored;
a bad format is reported in the result, never raised.

The rule (docs/reward.md, "Reading a completion"):

* An answer line is a line that begins, after optional spaces and Markdown emphasis, with
  ``ANSWER`` or ``Final answer`` and a ``:``. Prose ("so the answer is a tool") never is one,
  wherever it appears, so a trace cannot smuggle in an answer.
* THE FIRST decisive answer line wins (for multiple choice, one that holds a letter or hedges;
  see kgreason.families.multiple_choice); everything after it is ignored.
* The trace is the text after the first ``TRACE:`` before the answer line, up to the first line
  that starts with the answer marker. A ``TRACE:`` after the answer line does not count (a
  sampler stops at the answer line, so it would never have been generated): the completion is a
  format failure, with its answer kept for diagnostics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kgreason.families import AnswerLine, TaskFamily, get_family
from kgreason.families.base import EMPH, MARKER_LINE_RE

__all__ = ["AnswerLine", "ParsedCompletion", "cut_after_answer", "find_answer_line", "parse_completion"]

_TRACE_RE = re.compile(rf"(?<![A-Za-z0-9]){EMPH}trace{EMPH}\s*[:：]{EMPH}", re.IGNORECASE)


def find_answer_line(text: str, final: bool = True, options: Mapping[str, str] | None = None,
                     family: str | TaskFamily | None = None) -> AnswerLine | None:
    """The first decisive answer line of `text` under `family`'s rule (multiple choice by default).

    `final=False` reads a text still being generated: a line counts once its newline has arrived,
    and the final reading of any longer text is then the same line with the same answer.
    `options` (letter -> name, as the task states them) lets multiple choice read a name that
    holds brackets or a lone letter exactly.
    """
    return _family(family).find_answer_line(text, final, options)


def cut_after_answer(text: str, family: str | TaskFamily | None = None) -> str:
    """`text` up to the end of its first decisive answer line (all of it when there is none).

    What follows the answer line is never read; cutting it keeps stored completions and RSFT
    training targets to what was scored.
    """
    line = find_answer_line(text, family=family)
    return text if line is None else text[: line.line_end].rstrip()


def _family(family: str | TaskFamily | None) -> TaskFamily:
    return family if isinstance(family, TaskFamily) else get_family(family)


@dataclass(frozen=True)
class ParsedCompletion:
    """What could be read from one completion."""

    format_ok: bool
    # Multiple choice: the upper-case letter A-D; free form: the name as written. None when no answer
    # line was found (or it hedged).
    answer: str | None
    trace: str  # the trace text ("" when absent)
    has_trace: bool
    error: str = ""  # why the format failed ("" when format_ok)
    answer_entity: str = ""  # the name as written on the answer line ("" when it names none)


def parse_completion(text: object, options: Mapping[str, str] | None = None,
                     family: str | TaskFamily | None = None) -> ParsedCompletion:
    """Parse a completion; never raises, whatever `text` is.

    Chat-style completions (a list of {"role", "content"} messages, as TRL passes them) are read
    from their last assistant message. `options`: the task's (see `find_answer_line`); `family`:
    the task's family (multiple choice by default).
    """
    fam = _family(family)
    text = _message_content(text)
    if not isinstance(text, str):
        return ParsedCompletion(False, None, "", False, f"completion is {type(text).__name__}, not text")
    line = fam.find_answer_line(text, options=options)
    limit = line.start if line is not None else len(text)
    answer = fam.answer_of(line) if line is not None else None
    entity = line.entity if line is not None else ""
    # A decisive line without an answer (a hedge) is a format failure, whatever the trace.
    hedge = "" if line is None or answer is not None else fam.no_answer_reason(line)
    trace_m = _TRACE_RE.search(text, 0, limit)
    if trace_m is None:
        if hedge:
            why = f"{hedge}; no TRACE: marker"
        elif line is None:
            why = f"no TRACE: marker and no ANSWER: {fam.answer_shape} line"
        elif _TRACE_RE.search(text, line.line_end):
            why = "no TRACE: marker before the answer line (text after the answer line is ignored)"
        else:
            why = "no TRACE: marker"
        return ParsedCompletion(False, answer, "", False, why, entity)
    trace = _trace_text(text, trace_m.end(), limit)
    if answer is None:
        return ParsedCompletion(False, None, trace, True, hedge or f"no ANSWER: {fam.answer_shape} line")
    return ParsedCompletion(True, answer, trace, True, "", entity)


def _message_content(value: object) -> object:
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        contents = [m.get("content") for m in value if m.get("role", "assistant") == "assistant"]
        if contents and isinstance(contents[-1], str):
            return contents[-1]
    return value


def _trace_text(text: str, start: int, limit: int) -> str:
    """The trace runs from its marker to the first answer-marker line (complete or not) before `limit`."""
    end_m = MARKER_LINE_RE.search(text, start, limit)
    return text[start : end_m.start() if end_m else limit].strip()
