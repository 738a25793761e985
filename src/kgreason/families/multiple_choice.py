"""Multiple choice: four options A-D, answered ``ANSWER: <entity> (<letter>)``.

The options are written ``<entity> (<letter>)`` and the answer line repeats that text, so the
letter is a copy of what follows the reached entity in the option list, not a lookup backwards.

Reading an answer line (docs/reward.md, "Reading a completion"):

* An answer line is a line that begins, after optional spaces and Markdown emphasis, with
  ``ANSWER`` or ``Final answer`` and a ``:`` (kgreason.families.base.MARKER_LINE_RE). Prose ("so
  the answer is a tool") never is one, wherever it appears, so a trace cannot smuggle in a letter.
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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kgreason.families.base import (
    SPACED_EMPH,
    AnswerLine,
    H,
    Resolve,
    TaskFamily,
    marker_lines,
    register_family,
    system_prompt,
)
from kgreason.records import LETTERS

if TYPE_CHECKING:
    from kgreason.records import Task

SYSTEM_PROMPT = system_prompt("C (D)")

_OPENERS = "([{<"
_CLOSERS = ")]}>"
# Characters that glue a letter into a name ("D-Bus", "C++", "B/C"): the letter does not stand alone.
_GLUE = "-'’/+#&@"
# Letter-first: optional emphasis and one opening bracket, then the letter.
_LETTER_FIRST_RE = re.compile(rf"{SPACED_EMPH}(?:(?P<open>[{re.escape(_OPENERS)}]){H}*)?[*_]{{0,2}}(?P<letter>[A-Da-d])")
# Entity-first: the first bracketed letter standing alone ("jstat (D)", "Disk full [a]").
_BRACKETED_RE = re.compile(rf"[(\[]{H}*[*_]{{0,2}}(?P<letter>[A-Da-d])[*_]{{0,2}}{H}*[)\]]")
# A bracket left open at the very end of a finished line ("ANSWER: jstat (D") still names its letter.
_OPEN_AT_END_RE = re.compile(rf"[(\[]{H}*[*_]{{0,2}}(?P<letter>[A-Da-d])[*_.]*{H}*$")
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


def read_letter_line(text: str, final: bool = True, options: Mapping[str, str] | None = None) -> AnswerLine | None:
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
    for m, rest, line_end in marker_lines(text, final):
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


def format_answer(letter: str, label: str | None = None) -> str:
    """The answer line's value: "SyncNTP (B)", or just "B" when no label is given."""
    return f"{label} ({letter})" if label else letter


def format_options(options: Mapping[str, str]) -> str:
    """One option per line, written the way the answer line repeats it: "SyncNTP (B)"."""
    return "\n".join(format_answer(letter, options[letter]) for letter in LETTERS if letter in options)


class MultipleChoice(TaskFamily):
    name = "multiple_choice"
    description = "four options A-D; the answer line names the option and its letter"
    system_prompt = SYSTEM_PROMPT
    answer_shape = "<A-D>"

    def offer(self, options: Mapping[str, str]) -> str:
        return "Options:\n" + format_options(options)

    def answer_value(self, task: Task) -> str:
        return format_answer(task.answer_star, task.options.get(task.answer_star))

    def find_answer_line(self, text: str, final: bool = True, options: Mapping[str, str] | None = None
                         ) -> AnswerLine | None:
        return read_letter_line(text, final, options)

    def answer_of(self, line: AnswerLine) -> str | None:
        return line.letter or None

    def no_answer_reason(self, line: AnswerLine) -> str:
        return f"the answer line names more than one option ({', '.join(line.options)})"

    def chosen_entity(self, answer: str, task: Task, option_ids: Mapping[str, str], resolve: Resolve) -> str | None:
        return option_ids.get(answer)

    def is_correct(self, answer: str, task: Task, chosen: str | None) -> bool:
        return answer == task.answer_star.strip().upper()

    def chance(self, task: Task, n_entities: int) -> float:
        return 1.0 / max(1, len(task.options) or len(LETTERS))

    def check_record(self, rec: Mapping[str, object]) -> str:
        options = rec.get("options")
        if not isinstance(options, dict) or not options:
            return "'options' must be an object of letter -> text"
        if rec.get("answer_star") not in options:
            return f"answer_star {rec.get('answer_star')!r} is not one of the options {sorted(options)}"
        return ""


MULTIPLE_CHOICE = register_family(MultipleChoice())
