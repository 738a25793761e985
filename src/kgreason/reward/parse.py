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
* A line that names more than one option ("SyncNTP (B) or CheckNTPStatus (C)", "B or C", "B/C",
  "B (or maybe C)") claims nothing: it is an answer line without an answer, a hedge. Reading it
  as its first letter would pay a policy that spreads its answer over options as if it had
  committed. See `_options_named` for what counts as naming an option.
* THE FIRST answer line that holds a letter, or hedges, wins; everything after it is ignored, so a
  clean answer line after a hedge does not rescue it. Lines that start with the marker but name
  no option are skipped.
* The trace is the text after the first ``TRACE:`` before the answer line, up to the first line
  that starts with the answer marker. A ``TRACE:`` after the answer line does not count (a
  sampler stops at the answer line, so it would never have been generated): the completion is a
  format failure, with its letter kept for diagnostics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Markdown emphasis (** or __) around markers is common in chat-tuned models.
_EMPH = r"[*_]{0,3}"
_H = r"[^\S\n]"  # horizontal whitespace: an answer line never spans a line break
_TRACE_RE = re.compile(rf"(?<![A-Za-z0-9]){_EMPH}trace{_EMPH}\s*[:：]{_EMPH}", re.IGNORECASE)
# Anchored at a line start; the ':' is required ("Answer is B", "ANSWER = B" are prose).
# Spaces around the emphasis are written `{_H}*(?:[*_]{1,3}{_H}*)?`, not `{_H}*{_EMPH}{_H}*`: the same
# strings, but two adjacent `{_H}*` can split a run of spaces in as many ways as it is long, so a
# long blank line cost the square (three of them the cube) of its length in backtracking.
_SPACED_EMPH = rf"{_H}*(?:[*_]{{1,3}}{_H}*)?"
_MARKER_LINE_RE = re.compile(
    rf"^{_SPACED_EMPH}(?:final{_H}+)?answer{_SPACED_EMPH}[:：]{_EMPH}",
    re.IGNORECASE | re.MULTILINE,
)
_OPENERS = "([{<"
_CLOSERS = ")]}>"
# Characters that glue a letter into a name ("D-Bus", "C++", "B/C"): the letter does not stand alone.
_GLUE = "-'’/+#&@"
# Letter-first: optional emphasis and one opening bracket, then the letter.
_LETTER_FIRST_RE = re.compile(rf"{_SPACED_EMPH}(?:(?P<open>[{re.escape(_OPENERS)}]){_H}*)?[*_]{{0,2}}(?P<letter>[A-Da-d])")
# Entity-first: the first bracketed letter standing alone ("jstat (D)", "Disk full [a]").
_BRACKETED_RE = re.compile(rf"[(\[]{_H}*[*_]{{0,2}}(?P<letter>[A-Da-d])[*_]{{0,2}}{_H}*[)\]]")
# A bracket left open at the very end of a finished line ("ANSWER: jstat (D") still names its letter.
_OPEN_AT_END_RE = re.compile(rf"[(\[]{_H}*[*_]{{0,2}}(?P<letter>[A-Da-d])[*_.]*{_H}*$")
_ENTITY_SEPARATORS = " \t\r*_-–—:,.;=\"'"

# --- naming a second option (a hedge) ---------------------------------------------------------------
# A word on the answer line: letters and digits, glued by name characters ("D-Bus", "C++", "A/B",
# "a.k.a"). "_" and "*" are emphasis here, not word characters ("**C**" is the letter C).
_WORD_RE = re.compile(r"[^\W_]+(?:[-'’/+#&@.][^\W_]+)*[+#]*")
# A word that is only option letters: "C", "b", and lists glued without spaces ("B/C", "B&C", "B.C").
# Next to a word such a list is still a name ("Washington D.C. (B)"), as a single letter is.
_LETTER_WORD_RE = re.compile(r"[A-Da-d](?:[/&+.][A-Da-d])*")
# Words that join options rather than belong to a name: next to them a letter still stands alone
# ("B or C", "B (maybe C)", "B, not C", "B or option C").
_CONNECTIVES = frozenset({
    "or", "and", "nor", "either", "neither", "maybe", "perhaps", "possibly", "probably", "likely", "not", "vs",
    "versus", "than", "then", "also", "else", "otherwise", "alternatively", "instead", "plus",
    "option", "options", "choice", "choices", "letter", "letters", "answer", "answers",
})
_CONNECTIVE_MARKS = ",/;|&+"  # "B, C", "(B) / (C)", "B; C", "B | C"
_BLANK = frozenset(" \t\r*_")  # what may sit between two words that are next to each other


@dataclass(frozen=True)
class AnswerLine:
    """The first decisive answer line: where it is and what it says.

    A hedge (a line naming more than one option) is decisive too, so that nothing after it is read:
    then `letter` and `entity` are "" and `options` lists the letters it names.
    """

    letter: str  # upper-case A-D; "" for a hedge
    entity: str  # the text naming the option on the line ("jstat" in "ANSWER: jstat (D)"), "" if none
    start: int  # offset of the line's first character
    end: int  # offset just past the letter, or past its closing bracket ("(D)", "D)", "jstat (D)"); line_end for a hedge
    line_end: int  # offset of the line's end (its newline, or the end of the text)
    options: str = ""  # the upper-case letters the line names, its own letter first ("B"; "BC" for a hedge)


def _contract_letter(rest: str, options: Mapping[str, str] | None) -> str:
    """The option key L when the answer line's text is exactly the contract `<options[L]> (<L>)` (case
    and runs of spaces aside, emphasis around it allowed), else "". With the options known, a name
    that holds brackets, commas or a lone letter ("B (musical note)", "x (C)") cannot be misread
    as a second option or a hedge."""
    if not options:
        return ""
    said = " ".join(rest.strip(" \t\r*_").split()).casefold()
    for key, name in options.items():
        if said == f"{' '.join(str(name).split())} ({key})".casefold():
            return str(key)
    return ""


def find_answer_line(text: str, final: bool = True, options: Mapping[str, str] | None = None) -> AnswerLine | None:
    """The first decisive answer line of `text` (one that holds a letter, or a hedge), or None.

    `final=False` reads a text that is still being generated: its last line may go on, and any
    continuation could still name a second option ("ANSWER: jstat (D)" may become "ANSWER: jstat (D)
    or jcmd (C)"), or turn the letter into a name's initial ("ANSWER: D" may become "ANSWER: D-Bus
    (B)"), so an unfinished last line is never reported: a line counts once its newline has arrived.
    Whatever the continuation, the final reading of the longer text is then the same line with the
    same letter (or the same hedge).

    `options` (letter -> name, as the task states them): a line that is exactly the contract
    `<name> (<letter>)` for one of them reads as that letter, whatever characters the name holds.
    """
    for m in _MARKER_LINE_RE.finditer(text):
        newline = text.find("\n", m.end())
        if newline < 0 and not final:
            return None  # only the last line can be unfinished
        line_end = len(text) if newline < 0 else newline
        rest = text[m.end() : line_end]
        key = _contract_letter(rest, options)
        if key and options:
            return AnswerLine(key.upper(), str(options[key]), m.start(), m.end() + len(rest.rstrip(" \t\r*_")),
                              line_end, key.upper())
        read = _read_line(rest)
        # Without a letter of its own, the whole line is "after" it ("ANSWER: B or C is possible").
        letter, entity, rel_end, at = read if read is not None else ("", "", 0, -1)
        named = _options_named(rest, at)
        letters = (letter + "".join(o for o in named if o != letter)) if letter else named
        if len(letters) > 1:
            return AnswerLine("", "", m.start(), line_end, line_end, letters)
        if letter:
            return AnswerLine(letter, entity, m.start(), m.end() + rel_end, line_end, letter)
    return None


def cut_after_answer(text: str) -> str:
    """`text` up to the end of its first decisive answer line (all of it when there is none).

    What follows the answer line is never read; cutting it keeps stored completions and RSFT
    training targets to what was scored.
    """
    line = find_answer_line(text)
    return text if line is None else text[: line.line_end].rstrip()


def _read_line(rest: str) -> tuple[str, str, int, int] | None:
    """(letter, entity text, end offset, letter offset) in `rest`, the finished text after an
    answer marker, or None when it holds no letter. Whether the line also names other options is
    `_options_named`'s question."""
    n = len(rest)
    lf = _LETTER_FIRST_RE.match(rest)
    if lf is not None:
        j = lf.end()
        while j < n and rest[j] in "*_":  # closing emphasis ("**D**")
            j += 1
        letter, at = lf.group("letter").upper(), lf.start("letter")
        after = rest[j] if j < n else ""
        if after and (after.isalnum() or after == "_" or after in _GLUE):
            pass  # "Because", "D-Bus (B)": the letter is a word's initial; try entity-first below
        elif lf.group("open"):
            k = _skip_spaces(rest, j)
            if k < n and rest[k] in _CLOSERS:
                return letter, _entity_after(rest, k + 1), k + 1, at
            if k == n:
                return letter, "", lf.end(), at
            # "(D jstat" or "(D, jstat": the bracket does not close on the letter; read it as letter first.
            if not (rest[k].isalnum() or rest[k] == "_"):
                return letter, _entity_after(rest, k), lf.end(), at
        elif j == n:
            return letter, "", lf.end(), at
        elif not after.isspace():  # "D)", "D.", "D:", "D,"
            end = j + 1 if after in _CLOSERS else lf.end()
            return letter, _entity_after(rest, j + 1 if after in _CLOSERS else j), end, at
        else:
            k = _skip_spaces(rest, j)
            if k == n:
                return letter, "", lf.end(), at
            if not (rest[k].isalnum() or rest[k] == "_"):  # "D (jstat)", "D - jstat"
                return letter, _entity_after(rest, k), lf.end(), at
            # "A record (B)" or "A tool": only a bracketed letter later on the line decides.
    bracketed = _BRACKETED_RE.search(rest)
    if bracketed is not None:
        letter = bracketed.group("letter").upper()
        return letter, _clean_entity(rest[: bracketed.start()]), bracketed.end(), bracketed.start("letter")
    open_end = _OPEN_AT_END_RE.search(rest)
    if open_end is not None:
        return open_end.group("letter").upper(), _clean_entity(rest[: open_end.start()]), n, open_end.start("letter")
    return None


def _options_named(rest: str, at: int) -> str:
    """The upper-case option letters an answer line's text `rest` names, in order, each once.

    Task-free (the options are not known here), so judged on the line's words alone. A letter
    A-D that is a word of its own names an option unless it is part of a name:

    * it stands alone, i.e. no other word is right next to it (only spaces or emphasis between),
      not counting connectives ("or", "and", "maybe", ...) and other letters: "(C)", "[C]", "B or
      C", "B, C.", "B/C", "C or SyncNTP (B)", "B (or maybe C)";
    * or, past the letter the line committed to (offset `at`; -1 when it has none), it is upper
      case right after a connective word or mark, even with a word after it: "SyncNTP (B) or C is
      also possible".

    Next to any other word the letter belongs to a name as written: "Vitamin C (B)", "B) Vitamin
    C", "A record (B)", "A/B testing (C)", "SyncNTP (B), a tool". Before the committed letter the
    second rule is left out, so a name such as "Cache and A record (B)" still reads as B.
    """
    words = list(_WORD_RE.finditer(rest))
    named: list[str] = []
    for i, w in enumerate(words):
        token = w.group()
        if not _LETTER_WORD_RE.fullmatch(token):
            continue
        before = rest[words[i - 1].end() if i else 0 : w.start()]
        after = rest[w.end() : words[i + 1].start() if i + 1 < len(words) else len(rest)]
        prev = words[i - 1].group() if i and _is_blank(before) else None
        nxt = words[i + 1].group() if i + 1 < len(words) and _is_blank(after) else None
        standalone = not _is_name_word(prev) and not _is_name_word(nxt)
        after_connective = (prev is not None and prev.lower() in _CONNECTIVES) or any(c in _CONNECTIVE_MARKS for c in before)
        if standalone or (w.start() > at and token.isupper() and after_connective):
            for letter in token[::2].upper():
                if letter not in named:
                    named.append(letter)
    return "".join(named)


def _is_blank(s: str) -> bool:
    return all(c in _BLANK for c in s)


def _is_name_word(word: str | None) -> bool:
    """A word that makes a letter next to it part of a name: not a connective, not another letter."""
    return word is not None and word.lower() not in _CONNECTIVES and not _LETTER_WORD_RE.fullmatch(word)


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
    answer: str | None  # upper-case letter A-D, or None when no answer line was found (or it hedged)
    trace: str  # the trace text ("" when absent)
    has_trace: bool
    error: str = ""  # why the format failed ("" when format_ok)
    answer_entity: str = ""  # the option's name as written on the answer line ("" when it names none)


def parse_completion(text: object, options: Mapping[str, str] | None = None) -> ParsedCompletion:
    """Parse a completion; never raises, whatever `text` is.

    Chat-style completions (a list of {"role", "content"} messages, as TRL passes them) are read
    from their last assistant message. `options`: the task's (see `find_answer_line`).
    """
    text = _message_content(text)
    if not isinstance(text, str):
        return ParsedCompletion(False, None, "", False, f"completion is {type(text).__name__}, not text")
    line = find_answer_line(text, options=options)
    limit = line.start if line is not None else len(text)
    answer = (line.letter or None) if line is not None else None
    entity = line.entity if line is not None else ""
    # A hedge is an answer line without an answer: a format failure, whatever the trace.
    hedge = "" if line is None or line.letter else f"the answer line names more than one option ({', '.join(line.options)})"
    trace_m = _TRACE_RE.search(text, 0, limit)
    if trace_m is None:
        if hedge:
            why = f"{hedge}; no TRACE: marker"
        elif line is None:
            why = "no TRACE: marker and no ANSWER: <A-D> line"
        elif _TRACE_RE.search(text, line.line_end):
            why = "no TRACE: marker before the answer line (text after the answer line is ignored)"
        else:
            why = "no TRACE: marker"
        return ParsedCompletion(False, answer, "", False, why, entity)
    trace = _trace_text(text, trace_m.end(), limit)
    if answer is None:
        return ParsedCompletion(False, None, trace, True, hedge or "no ANSWER: <A-D> line")
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
