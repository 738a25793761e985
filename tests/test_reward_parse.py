"""The completion parser and THE answer reader (find_answer_line): tolerant of harmless drift,
never raising, strict about prose and about answer lines that name two options, and the first
complete answer line wins."""

from __future__ import annotations

import random
import string

import pytest

from kgreason.reward.parse import ParsedCompletion, cut_after_answer, find_answer_line, parse_completion


@pytest.mark.parametrize(
    "text, answer, trace",
    [
        ("TRACE: A is caused by B.\nANSWER: B", "B", "A is caused by B."),
        ("trace: x\nanswer: c", "C", "x"),
        ("TRACE:x\nANSWER:D", "D", "x"),
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
        ("TRACE: x\nANSWER: jstat (D)", "D", "x"),  # the entity-first form
        ("TRACE: x\nANSWER: maybe jcmd?\nANSWER: B", "B", "x"),  # a marker line without a letter is skipped
        ("TRACE: x. So the answer is a tool.\nANSWER: B", "B", "x. So the answer is a tool."),  # prose is trace
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
        ("TRACE:x ANSWER:D", "no ANSWER"),  # not at a line start: part of the trace line
        ("TRACE: x. So the answer is a tool.", "no ANSWER"),  # prose, read as letter A before
        ("TRACE: x\nThe answer is B", "no ANSWER"),
        ("TRACE: x\nAnswer is B", "no ANSWER"),  # the ':' is required
        ("TRACE: x\nANSWER = B", "no ANSWER"),
        ("TRACE: x\nANSWER: A tool", "no ANSWER"),  # a letter followed by a word may be an article
        ("TRACE: x\nANSWER:\nB", "no ANSWER"),  # the letter must be on the answer line
        ("TRACE: x\nANSWER: B or C", "names more than one option (B, C)"),  # a hedge claims nothing
        ("TRACE: x\nANSWER: SyncNTP (B) or CheckNTPStatus (C)", "names more than one option (B, C)"),
        ("TRACE: x\nANSWER: B or C\nANSWER: B", "names more than one option"),  # ... and decides: no rescue
        ("ANSWER: B/C", "names more than one option (B, C); no TRACE: marker"),
        ("ANSWER: D\nTRACE: y", "no TRACE: marker before the answer line"),  # text after the answer is ignored
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


# --- the one answer reader ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line, letter, entity",
    [
        ("ANSWER: D", "D", ""),
        ("ANSWER: (D)", "D", ""),
        ("ANSWER: D) jstat", "D", "jstat"),
        ("ANSWER: D (jstat)", "D", "jstat"),
        ("ANSWER: jstat (D)", "D", "jstat"),
        ("Answer: d", "D", ""),
        ("**ANSWER:** D", "D", ""),
        ("**ANSWER**: **D**", "D", ""),
        ("  Final answer: [c]", "C", ""),
        ("ANSWER: B. SyncNTP is the fix.", "B", "SyncNTP is the fix"),
        ("ANSWER: D (jstat).", "D", "jstat"),
        ("ANSWER: **jstat** (D)", "D", "jstat"),
        ("ANSWER: Increase memory limit (a)", "A", "Increase memory limit"),
        # Names that start with a letter A-D: the bracketed letter decides, not the initial.
        ("ANSWER: A record (B)", "B", "A record"),
        ("ANSWER: D-Bus (C)", "C", "D-Bus"),
        ("ANSWER: Bash [a]", "A", "Bash"),
        # "ANSWER: D) jstat (C)" and "ANSWER: jstat (D), not jcmd (C)" read as D before; they name
        # two options, so now they claim nothing (test_a_line_naming_two_options_claims_nothing).
        ("ANSWER: jstat (D", "D", "jstat"),  # a bracket left open at the end of a finished line
        # The same letter twice is one option.
        ("ANSWER: B (B)", "B", "B"),
        ("ANSWER: jstat (B). B", "B", "jstat"),
        # A letter next to another word is part of a name as written, not a second option.
        ("ANSWER: Vitamin C (B)", "B", "Vitamin C"),
        ("ANSWER: B) Vitamin C", "B", "Vitamin C"),
        ("ANSWER: Hepatitis B (C)", "C", "Hepatitis B"),
        ("ANSWER: C) Hepatitis B", "C", "Hepatitis B"),
        ("ANSWER: Plan B (C)", "C", "Plan B"),
        ("ANSWER: B) A record", "B", "A record"),
        ("ANSWER: A/B testing (C)", "C", "A/B testing"),
        ("ANSWER: Washington D.C. (B)", "B", "Washington D.C"),
        ("ANSWER: C++ (B)", "B", "C++"),
        ("ANSWER: B) C#", "B", "C#"),
        ("ANSWER: B (a.k.a. SyncNTP)", "B", "a.k.a. SyncNTP"),
        ("ANSWER: Cache and A record (B)", "B", "Cache and A record"),  # before the letter: a name
        # Lower case after a connective, before a word: an article, not option A.
        ("ANSWER: SyncNTP (B), a tool", "B", "SyncNTP"),
        ("ANSWER: SyncNTP (B) or a restart", "B", "SyncNTP"),
    ],
)
def test_answer_line_forms(line: str, letter: str, entity: str) -> None:
    found = find_answer_line(f"TRACE: x\n{line}\nmore text")
    assert found is not None
    assert (found.letter, found.entity) == (letter, entity)
    assert found.start == len("TRACE: x\n")
    assert found.line_end == len("TRACE: x\n") + len(line)
    p = parse_completion(f"TRACE: x\n{line}")
    assert (p.format_ok, p.answer, p.answer_entity) == (True, letter, entity)


@pytest.mark.parametrize(
    "text",
    [
        "so the answer is a tool.",
        "So the answer is a tool: jstat (D).",
        "We answer: B is wrong",  # "answer:" inside a sentence
        "The answer: B",
        "ANSWER (B)",
        "ANSWER - B",
        "ANSWER: E",
        "ANSWER: AB",
        "ANSWER: Because (it) drifts",
        "ANSWER: the one before",
        "TRACE: x ANSWER: B",
    ],
)
def test_prose_is_never_an_answer_line(text: str) -> None:
    assert find_answer_line(text) is None
    assert find_answer_line(text + "\n") is None


@pytest.mark.parametrize(
    "line, options",
    [
        ("ANSWER: SyncNTP (B) or CheckNTPStatus (C)", "BC"),
        ("ANSWER: B (or maybe C)", "BC"),
        ("ANSWER: B (maybe C)", "BC"),
        ("ANSWER: B or C", "BC"),  # held no letter before, so a later answer line could rescue it
        ("ANSWER: B/C", "BC"),
        ("ANSWER: B / C", "BC"),
        ("ANSWER: [B]/[C]", "BC"),
        ("ANSWER: B|C", "BC"),
        ("ANSWER: B.C", "BC"),
        ("ANSWER: (B) and (C)", "BC"),
        ("ANSWER: (B) or (C)", "BC"),
        ("ANSWER: B) or C)", "BC"),
        ("ANSWER: B and C", "BC"),
        ("ANSWER: either B or C", "BC"),
        ("ANSWER: B, C", "BC"),
        ("ANSWER: B, or C", "BC"),
        ("ANSWER: B, not C", "BC"),
        ("ANSWER: B or option C", "BC"),
        ("ANSWER: B. Or C.", "BC"),
        ("ANSWER: B C", "BC"),
        ("ANSWER: (B) (C)", "BC"),
        ("ANSWER: B (C)", "BC"),  # read as B with the entity "C" before
        ("ANSWER: SyncNTP (B) C", "BC"),
        ("ANSWER: **B** or **C**", "BC"),
        ("ANSWER: b or c", "BC"),
        ("ANSWER: B (c)", "BC"),
        ("ANSWER: C or SyncNTP (B)", "BC"),  # the read letter comes first in `options`
        ("ANSWER: D) jstat (C)", "DC"),  # read as D before
        ("ANSWER: jstat (D), not jcmd (C)", "DC"),  # read as D before
        ("ANSWER: SyncNTP (B) or C is also possible", "BC"),  # after the letter, a capital after "or" is an option
        ("ANSWER: B or C is also possible", "BC"),  # ... anywhere on a line with no letter of its own
        ("ANSWER: A, B or C", "ABC"),
        # Strict on purpose (one option per line is the format): these could be meant as one option
        # but also name a second letter in an option's place.
        ("ANSWER: SyncNTP (B), A tool", "BA"),
        ("ANSWER: B) Cache and A record", "BA"),
        ("ANSWER: Vitamin C and D (B)", "BD"),
    ],
)
def test_a_line_naming_two_options_claims_nothing(line: str, options: str) -> None:
    """A hedge is paid as no answer, never as its first letter, and it decides like any answer line."""
    text = f"TRACE: x\n{line}\nANSWER: B\nmore text"
    found = find_answer_line(text)
    assert found is not None and (found.letter, found.entity, found.options) == ("", "", options)
    assert text[found.start : found.line_end] == line
    p = parse_completion(text)
    assert (p.format_ok, p.answer, p.trace, p.answer_entity) == (False, None, "x", "")
    assert f"names more than one option ({', '.join(options)})" in p.error
    assert cut_after_answer(text) == f"TRACE: x\n{line}"  # the clean line after the hedge is never read


def test_first_complete_answer_line_wins_and_the_rest_is_ignored() -> None:
    text = "TRACE: x\nANSWER: hmm\nANSWER: C\nANSWER: B\nTRACE: y"
    line = find_answer_line(text)
    assert line is not None and line.letter == "C"
    assert text[line.start : line.line_end] == "ANSWER: C"
    assert cut_after_answer(text) == "TRACE: x\nANSWER: hmm\nANSWER: C"
    assert parse_completion(text).answer == "C"
    assert cut_after_answer("no answer here\nat all") == "no answer here\nat all"
    assert cut_after_answer("TRACE: x\nANSWER: B) SyncNTP  \nextra") == "TRACE: x\nANSWER: B) SyncNTP"


def test_an_answer_line_in_the_trace_ends_it() -> None:
    """A letter inside the trace block counts only on its own line; then it is the answer."""
    p = parse_completion("TRACE: a is caused by b.\nANSWER: A\nb is fixed by c.\nANSWER: B")
    assert (p.answer, p.trace) == ("A", "a is caused by b.")
    # The same words inside the trace line are prose: the real answer line decides.
    p = parse_completion("TRACE: a is caused by b, the ANSWER: A.\nANSWER: B")
    assert (p.answer, p.trace) == ("B", "a is caused by b, the ANSWER: A.")


def test_entity_first_line_streamed_waits_for_the_letter() -> None:
    """Reading a generation in progress: no letter is decided before the line has one for sure."""
    pending = ["ANSWER: jstat", "ANSWER: jstat (", "ANSWER: jstat (D", "ANSWER: D", "ANSWER: D ",
               "ANSWER: A record", "ANSWER: (D", "**ANSWER:** D*", "ANSWER: Bash",
               # These were decided at once before; the rest of the line may still name a second
               # option ("ANSWER: jstat (D) or jcmd (C)"), so now they wait for the line's end.
               "ANSWER: jstat (D)", "ANSWER: D)", "ANSWER: D.", "ANSWER: (D)", "ANSWER: D (",
               "ANSWER: A record (B)", "ANSWER: Bash\nANSWER: C)", "ANSWER: B or C"]
    for text in pending:
        assert find_answer_line("TRACE: x\n" + text, final=False) is None, text
    decided = {"ANSWER: jstat (D)\n": "D", "ANSWER: D)\n": "D", "ANSWER: D.\n": "D", "ANSWER: (D)\n": "D",
               "ANSWER: D (\n": "D", "ANSWER: A record (B)\n": "B", "ANSWER: D\n": "D",
               "ANSWER: Bash\nANSWER: C)\n": "C", "ANSWER: jstat (D) or jcmd (C)\n": ""}
    for text, letter in decided.items():
        line = find_answer_line("TRACE: x\n" + text, final=False)
        assert line is not None and line.letter == letter, text


def _random_completion(rng: random.Random) -> str:
    pieces = ["TRACE:", "ANSWER:", "\nANSWER: ", "\n**Answer:** ", "answer is ", "(", ")", "[", "A", "b", "C.",
              "d)", "D-Bus", "jstat", " ", " ", "\n", "record", "Because", ",", "\nFinal answer:", "?", "x", "**",
              " or ", "/", "maybe"]
    head = rng.choice(["", "TRACE: t\n", "ANSWER: "])
    return head + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))


def test_streamed_reading_agrees_with_the_final_one() -> None:
    """The stop rule's promise: once a prefix has a complete answer line, no continuation changes
    which line it is or its letter (or that it hedges), and the cut text parses exactly like the
    full text."""
    rng = random.Random(4321)
    checked = 0
    for _ in range(3000):
        full = _random_completion(rng)
        final = find_answer_line(full)
        for cut in range(len(full) + 1):
            line = find_answer_line(full[:cut], final=False)
            if line is None:
                continue
            checked += 1
            assert final is not None, full
            assert (final.start, final.letter, final.end, final.options) == (line.start, line.letter, line.end,
                                                                             line.options), (full, cut)
            break
        assert _reading(parse_completion(cut_after_answer(full))) == _reading(parse_completion(full)), full
    assert checked > 300


def _reading(p: ParsedCompletion) -> tuple:
    return p.format_ok, p.answer, p.trace, p.has_trace, p.answer_entity  # the error text may name what was cut
