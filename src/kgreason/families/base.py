"""What every task family shares: the completion's two-line shape, the answer marker, the interface.

A completion is always ``TRACE: <numbered clauses>`` then ``ANSWER: <value>``; families differ in
what the value is (a letter among options, an entity's name, ...), how a question offers it, and
how a value is graded. The trace is read and verified the same way for every family
(kgreason.reward), so a family never touches the KG reward.

One family per module (reasoning-gym's shape): its prompt and target, its answer-line reader (which
is also the samplers' and the demo's stop rule), its grading, and its chance level. Register it with
`register_family`; every stage asks `get_family(task.family)`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kgreason.registry import Registry

if TYPE_CHECKING:
    from kgreason.records import Task

DEFAULT_FAMILY = "multiple_choice"


def system_prompt(example_answer: str) -> str:
    """The system prompt every family shares, ending with its answer line's example value.

    Short on purpose: every training example repeats it (tokens spent on it are not spent learning)."""
    return ("Follow the question's relations from the start entity, one numbered hop at a time. Reply with "
            f"two lines, like:\nTRACE: 1. A is caused by B. 2. B is fixed by C.\nANSWER: {example_answer}")


def name_key(name: str) -> str:
    """A name as names are compared (free-form grading, shared-name checks): lower case, runs of
    spaces collapsed."""
    return " ".join(name.split()).lower()

# Markdown emphasis (** or __) around markers is common in chat-tuned models.
EMPH = r"[*_]{0,3}"
H = r"[^\S\n]"  # horizontal whitespace: an answer line never spans a line break
# Spaces around the emphasis are written `{H}*(?:[*_]{1,3}{H}*)?`, not `{H}*{EMPH}{H}*`: the same
# strings, but two adjacent `{H}*` can split a run of spaces in as many ways as it is long, so a
# long blank line cost the square (three of them the cube) of its length in backtracking.
SPACED_EMPH = rf"{H}*(?:[*_]{{1,3}}{H}*)?"
# Anchored at a line start; the ':' is required ("Answer is B", "ANSWER = B" are prose).
MARKER_LINE_RE = re.compile(
    rf"^{SPACED_EMPH}(?:final{H}+)?answer{SPACED_EMPH}[:：]{EMPH}",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class AnswerLine:
    """The first decisive answer line: where it is and what it says.

    Multiple choice: `letter` is the upper-case letter; a hedge (a line naming more than one
    option) is decisive too, so that nothing after it is read: then `letter` and `entity` are "" and
    `options` lists the letters it names. Free form: `letter` is "" and `entity` is the name given.
    """

    letter: str  # upper-case A-D; "" for a hedge and for families without letters
    entity: str  # the text naming the answer ("jstat" in "ANSWER: jstat (D)"), "" if none
    start: int  # offset of the line's first character
    end: int  # offset just past what decides the answer; line_end for a hedge
    line_end: int  # offset of the line's end (its newline, or the end of the text)
    options: str = ""  # multiple choice: the letters the line names, its own first ("B"; "BC" for a hedge)


def marker_lines(text: str, final: bool = True) -> Iterator[tuple[re.Match[str], str, int]]:
    """Each answer-marker line of `text` in order, as (marker match, text after the marker, line end),
    lazily: a reader stops at the first decisive one (the samplers call it after every token).

    `final=False` reads a text still being generated: its unfinished last line is left out (it
    may go on), so a line counts once its newline has arrived.
    """
    for m in MARKER_LINE_RE.finditer(text):
        newline = text.find("\n", m.end())
        if newline < 0 and not final:
            return  # only the last line can be unfinished
        line_end = len(text) if newline < 0 else newline
        yield m, text[m.end() : line_end], line_end


Resolve = Callable[[str], Sequence[str]]  # a name as written -> the entity ids it names exactly


class TaskFamily(ABC):
    """One kind of question. Subclasses set the class attributes and implement the methods."""

    name: str = ""
    description: str = ""
    system_prompt: str = ""
    answer_shape: str = ""  # what an answer line holds, for messages ("<A-D>", "<entity>")
    # Generation: the chain must reach the answer and nothing else from the start (free form has no
    # options to tell reached entities apart), and no other entity may share the answer's name.
    unique_answer: bool = False
    offers_options: bool = True  # the prompt lists options (their letters are `Task.options`)
    attempts_factor: int = 1  # generation: candidate walks per wanted item, as a multiple of the default
    # The highest share of held-out items a shortcut baseline may answer (`--max-shortcut`'s default):
    # chance plus a margin (multiple choice: 25% + 10 points).
    max_shortcut: float = 0.35
    # Appended to a refusal's "what to try" for this family's open-book data (kgreason.tasks.refusal).
    open_book_hint: str = ""

    def format_prompt(self, question: str, options: Mapping[str, str], context_facts: Sequence[str] = ()) -> str:
        """The user message: optional facts (open mode), the question, then what the family offers."""
        parts = []
        if context_facts:
            parts.append("Facts:\n" + "\n".join(context_facts))
        parts.append(f"Question: {question}")
        offer = self.offer(options)
        if offer:
            parts.append(offer)
        return "\n\n".join(parts)

    def offer(self, options: Mapping[str, str]) -> str:
        """The prompt block after the question ("Options:\\n..."), or "" when the family offers none."""
        return ""

    @abstractmethod
    def answer_value(self, task: Task) -> str:
        """What the reference completion's answer line says for `task`."""

    @abstractmethod
    def find_answer_line(self, text: str, final: bool = True, options: Mapping[str, str] | None = None
                         ) -> AnswerLine | None:
        """The first decisive answer line of `text`, or None. With `final=False` only a line whose
        newline has arrived counts, and whatever the continuation, the final reading is the same
        line with the same answer: the samplers stop there."""

    @abstractmethod
    def answer_of(self, line: AnswerLine) -> str | None:
        """The answer a decisive line commits to, or None (a hedge commits to none)."""

    def no_answer_reason(self, line: AnswerLine) -> str:
        """Why a decisive line holds no answer (see `answer_of`)."""
        return "the answer line holds no answer"

    @abstractmethod
    def chosen_entity(self, answer: str, task: Task, option_ids: Mapping[str, str], resolve: Resolve) -> str | None:
        """The entity id the answer picks (None when it names none)."""

    @abstractmethod
    def is_correct(self, answer: str, task: Task, chosen: str | None) -> bool:
        """Whether the answer is the task's."""

    def answer_key(self, task: Task) -> str:
        """What a rule's prediction is compared with: the correct option's letter when the family
        offers options, else the answer's entity id (shortcut baselines and the oracle then pick
        among entity ids, kgreason.tasks.audit)."""
        return task.answer_star if self.offers_options else task.answer_id

    @abstractmethod
    def chance(self, task: Task, n_entities: int) -> float:
        """The probability that a uniform guess is right."""

    def check_record(self, rec: Mapping[str, object]) -> str:
        """Why a task file's record (a JSON object) cannot be one of this family's items, or ""."""
        return ""


FAMILIES: Registry[TaskFamily] = Registry("task family")


def register_family(family: TaskFamily) -> TaskFamily:
    """Add `family` (an instance) under its `name`; a later one of the same name replaces it."""
    return FAMILIES.add(family.name, family)


def get_family(name: str | None = None) -> TaskFamily:
    """The registered family `name` (the default family for None or ""), or an InputError."""
    return FAMILIES.get(name or DEFAULT_FAMILY)


def mean_chance(tasks: Sequence[Task], n_entities: int) -> float | None:
    """The mean over `tasks` of their family's chance of a uniform guess (None for no tasks)."""
    return sum(get_family(t.family).chance(t, n_entities) for t in tasks) / len(tasks) if tasks else None


def shortcut_limit(tasks: Sequence[Task], max_shortcut: float | None) -> float:
    """`max_shortcut` when given, else the limit of the tasks' family (TaskFamily.max_shortcut)."""
    return max_shortcut if max_shortcut is not None else get_family(family_of_tasks(tasks)).max_shortcut


def family_of_tasks(tasks: Sequence[Task]) -> str:
    """The one family of `tasks` (the default for none); a mixed list is refused: the samplers'
    stop rule, metrics and chance level hold for one family at a time."""
    names = {t.family or DEFAULT_FAMILY for t in tasks}
    if len(names) > 1:
        from kgreason.io import InputError

        raise InputError(f"the items mix task families ({', '.join(sorted(names))}); use one family per file")
    return names.pop() if names else DEFAULT_FAMILY
