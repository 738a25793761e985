"""Reading a completion of the form ``TRACE: <trace>\\nANSWER: <letter>``.

`find_answer_line` is THE answer reader: the parser below, the samplers' stop rule
(kgreason.sampling.base), evaluation, RSFT and GRPO all go through it, so a completion means the
same thing wherever it is read. Anything a sampler can produce is scored; a bad format is
reported in the result, never raised.

The rule (docs/reward.md, "Reading a completion"):

* An answer line is a line that begins, after optional spaces and Markdown emphasis, with
  ``ANSWER`` or ``Final answer`` and a ``:``. Prose ("so the answer is a tool") never is one,
  wherever it appears, so a trace cannot smuggle in a letter.
* The line holds a letter A-D in one of two shapes. Letter first: ``D``, ``(D)``, ``[d]``,
  ``D) jstat``, ``D (jstat)``, ``D. jstat is the tool.`` — the letter must stand alone, followed
  by the end of the line, a bracket or punctuation. Entity first: ``jstat (D)`` — the first
  bracketed letter on the line. A letter directly followed by a word ("ANSWER: A tool",
  "ANSWER: Because") is not one: it may be an article or a word's initial.
* THE FIRST complete answer line wins; everything after it is ignored. Lines that start with the
  marker but hold no letter are skipped.
* The trace is the text after the first ``TRACE:`` before the answer line, up to the first line
  that starts with the answer marker. A ``TRACE:`` after the answer line does not count (a
  sampler stops at the answer line, so it would never have been generated): the completion is a
  format failure, with its letter kept for diagnostics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Markdown emphasis (** or __) around markers is common in chat-tuned models.
_EMPH = r"[*_]{0,3}"
_H = r"[^\S\n]"  # horizontal whitespace: an answer line never spans a line break
_TRACE_RE = re.compile(rf"(?<![A-Za-z0-9]){_EMPH}trace{_EMPH}\s*[:：]{_EMPH}", re.IGNORECASE)
# Anchored at a line start; the ':' is required ("Answer is B", "ANSWER = B" are prose).
_MARKER_LINE_RE = re.compile(
    rf"^{_H}*{_EMPH}{_H}*(?:final{_H}+)?answer{_H}*{_EMPH}{_H}*[:：]{_EMPH}",
    re.IGNORECASE | re.MULTILINE,
)
_LETTERS = "ABCDabcd"
_OPENERS = "([{<"
_CLOSERS = ")]}>"
# Characters that glue a letter into a name ("D-Bus", "C++", "B/C"): the letter does not stand alone.
_GLUE = "-'’/+#&@"
# Letter-first: optional emphasis and one opening bracket, then the letter.
_LETTER_FIRST_RE = re.compile(rf"{_H}*[*_]{{0,3}}{_H}*(?P<open>[{re.escape(_OPENERS)}])?{_H}*[*_]{{0,2}}(?P<letter>[A-Da-d])")
# Entity-first: the first bracketed letter standing alone ("jstat (D)", "Disk full [a]").
_BRACKETED_RE = re.compile(rf"[(\[]{_H}*[*_]{{0,2}}(?P<letter>[A-Da-d])[*_]{{0,2}}{_H}*[)\]]")
# A bracket left open at the very end of a finished line ("ANSWER: jstat (D") still names its letter.
_OPEN_AT_END_RE = re.compile(rf"[(\[]{_H}*[*_]{{0,2}}(?P<letter>[A-Da-d])[*_.]*{_H}*$")
_ENTITY_SEPARATORS = " \t\r*_-–—:,.;=\"'"


@dataclass(frozen=True)
class AnswerLine:
    """One complete answer line: where it is and what it says."""

    letter: str  # upper-case A-D
    entity: str  # the text naming the option on the line ("jstat" in "ANSWER: jstat (D)"), "" if none
    start: int  # offset of the line's first character
    end: int  # offset just past the letter, or past its closing bracket ("(D)", "D)", "jstat (D)")
    line_end: int  # offset of the line's end (its newline, or the end of the text)


def find_answer_line(text: str, final: bool = True) -> AnswerLine | None:
    """The first complete answer line of `text`, or None.

    `final=False` reads a text that is still being generated: its last line may go on, so it
    counts only once nothing that could follow can change its letter ("ANSWER: jstat" waits for
    "(D)", "ANSWER: D" waits for the line to end, "ANSWER: D)" is complete at once). Whatever the
    continuation, the final reading of the longer text is then the same line with the same letter.
    """
    for m in _MARKER_LINE_RE.finditer(text):
        newline = text.find("\n", m.end())
        line_end = len(text) if newline < 0 else newline
        finished = final or newline >= 0
        status, letter, entity, rel_end = _read_line(text[m.end() : line_end], finished)
        if status == "answer":
            return AnswerLine(letter, entity, m.start(), m.end() + rel_end, line_end)
        if status == "pending":
            return None  # only the last, unfinished line can be pending
    return None


def cut_after_answer(text: str) -> str:
    """`text` up to the end of its first complete answer line (all of it when there is none).

    What follows the answer line is never read; cutting it keeps stored completions and RSFT
    training targets to what was scored.
    """
    line = find_answer_line(text)
    return text if line is None else text[: line.line_end].rstrip()


def _read_line(rest: str, finished: bool) -> tuple[str, str, str, int]:
    """(status, letter, entity text, end offset in `rest`) for the text after an answer marker.

    status: "answer" (a letter is decided), "none" (this line holds no letter) or "pending" (an
    unfinished line that may still become an answer).
    """
    n = len(rest)
    lf = _LETTER_FIRST_RE.match(rest)
    if lf is not None:
        j = lf.end()
        while j < n and rest[j] in "*_":  # closing emphasis ("**D**")
            j += 1
        letter = lf.group("letter").upper()
        after = rest[j] if j < n else ""
        if after and (after.isalnum() or after == "_" or after in _GLUE):
            pass  # "Because", "D-Bus (B)": the letter is a word's initial; try entity-first below
        elif lf.group("open"):
            k = _skip_spaces(rest, j)
            if k < n and rest[k] in _CLOSERS:
                return "answer", letter, _entity_after(rest, k + 1), k + 1
            if k == n:
                return ("answer", letter, "", lf.end()) if finished else ("pending", "", "", 0)
            # "(D jstat" or "(D, jstat": the bracket does not close on the letter; read it as letter first.
            if not (rest[k].isalnum() or rest[k] == "_"):
                return "answer", letter, _entity_after(rest, k), lf.end()
        elif j == n:
            return ("answer", letter, "", lf.end()) if finished else ("pending", "", "", 0)
        elif not after.isspace():  # "D)", "D.", "D:", "D," decide at once
            end = j + 1 if after in _CLOSERS else lf.end()
            return "answer", letter, _entity_after(rest, j + 1 if after in _CLOSERS else j), end
        else:
            k = _skip_spaces(rest, j)
            if k == n:
                return ("answer", letter, "", lf.end()) if finished else ("pending", "", "", 0)
            if not (rest[k].isalnum() or rest[k] == "_"):  # "D (jstat)", "D - jstat"
                return "answer", letter, _entity_after(rest, k), lf.end()
            # "A record (B)" or "A tool": only a bracketed letter later on the line decides.
    bracketed = _BRACKETED_RE.search(rest)
    if bracketed is not None:
        return "answer", bracketed.group("letter").upper(), _clean_entity(rest[: bracketed.start()]), bracketed.end()
    if not finished:
        return "pending", "", "", 0
    open_end = _OPEN_AT_END_RE.search(rest)
    if open_end is not None:
        return "answer", open_end.group("letter").upper(), _clean_entity(rest[: open_end.start()]), n
    return "none", "", "", 0


def _skip_spaces(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t\r":
        i += 1
    return i


def _entity_after(rest: str, i: int) -> str:
    return _clean_entity(rest[i:])


def _clean_entity(s: str) -> str:
    """The option's name as written: separators and one pair of wrapping brackets removed."""
    s = s.strip(_ENTITY_SEPARATORS)
    if len(s) >= 2 and s[0] in _OPENERS and s[-1] in _CLOSERS:
        s = s[1:-1].strip(_ENTITY_SEPARATORS)
    return s


@dataclass(frozen=True)
class ParsedCompletion:
    """What could be read from one completion."""

    format_ok: bool
    answer: str | None  # upper-case letter A-D, or None when no answer line was found
    trace: str  # the trace text ("" when absent)
    has_trace: bool
    error: str = ""  # why the format failed ("" when format_ok)
    answer_entity: str = ""  # the option's name as written on the answer line ("" when it names none)


def parse_completion(text: object) -> ParsedCompletion:
    """Parse a completion; never raises, whatever `text` is.

    Chat-style completions (a list of {"role", "content"} messages, as TRL passes them) are read
    from their last assistant message.
    """
    text = _message_content(text)
    if not isinstance(text, str):
        return ParsedCompletion(False, None, "", False, f"completion is {type(text).__name__}, not text")
    line = find_answer_line(text)
    limit = line.start if line is not None else len(text)
    answer = line.letter if line is not None else None
    entity = line.entity if line is not None else ""
    trace_m = _TRACE_RE.search(text, 0, limit)
    if trace_m is None:
        if line is None:
            why = "no TRACE: marker and no ANSWER: <A-D> line"
        elif _TRACE_RE.search(text, line.line_end):
            why = "no TRACE: marker before the answer line (text after the answer line is ignored)"
        else:
            why = "no TRACE: marker"
        return ParsedCompletion(False, answer, "", False, why, entity)
    trace = _trace_text(text, trace_m.end(), limit)
    if line is None:
        return ParsedCompletion(False, None, trace, True, "no ANSWER: <A-D> line")
    return ParsedCompletion(True, answer, trace, True, "", entity)


def _message_content(value: object) -> object:
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        contents = [m.get("content") for m in value if m.get("role", "assistant") == "assistant"]
        if contents and isinstance(contents[-1], str):
            return contents[-1]
    return value


def _trace_text(text: str, start: int, limit: int) -> str:
    """The trace runs from its marker to the first answer-marker line (complete or not) before `limit`."""
    end_m = _MARKER_LINE_RE.search(text, start, limit)
    return text[start : end_m.start() if end_m else limit].strip()
