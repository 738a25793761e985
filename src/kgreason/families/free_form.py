"""Free form: no options; the answer line names the entity reached, ``ANSWER: <entity>``.

With no options there is nothing to eliminate or to match against the question: chance is one in
the number of entities, and a rule that ignores the chain has to name the one entity itself. That
needs a question with one answer in the whole graph, so generation keeps only chains that reach
exactly one entity from the start, and answers whose name no other entity shares
(`TaskFamily.unique_answer`).

Grading is an exact name match: the text after ``ANSWER:`` (case, runs of spaces, emphasis and a
final full stop aside) must be the answer's id, label or one of its aliases. A line that names two
entities ("SyncNTP or CheckNTPStatus") names neither exactly, so it is wrong, as a hedge should be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from kgreason.families.base import (
    AnswerLine,
    Resolve,
    TaskFamily,
    marker_lines,
    name_key,
    register_family,
    system_prompt,
)

if TYPE_CHECKING:
    from kgreason.records import Task

_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019"}
SYSTEM_PROMPT = system_prompt("C")
_WRAP = " \t\r*_"


def clean_name(text: str) -> str:
    """The name as written on an answer line: spaces and emphasis around it removed, inner runs of
    spaces collapsed."""
    return " ".join(text.strip(_WRAP).split())


def name_candidates(answer: str) -> Sequence[str]:
    """The readings of an answer that may name an entity, most literal first: as written (spaces
    collapsed; a name may itself start or end with "_" or "*"), then with emphasis, one final full
    stop and one pair of wrapping quotes taken off, in any order ("SyncNTP.", "**SyncNTP**.",
    "'SyncNTP'" and "“SyncNTP.”" name SyncNTP)."""
    out = [" ".join(answer.split())]
    for _ in range(3):
        for text in list(out):
            stripped = clean_name(text)
            if stripped.endswith(".") and len(stripped) > 1:
                out.append(stripped[:-1])
            if len(stripped) > 2 and _QUOTES.get(stripped[0]) == stripped[-1]:
                out.append(stripped[1:-1])
            out.append(stripped)
    return [x for x in dict.fromkeys(out) if x]


class FreeForm(TaskFamily):
    name = "free_form"
    description = "no options; the answer line names the entity reached (exact name match)"
    system_prompt = SYSTEM_PROMPT
    answer_shape = "<entity>"
    unique_answer = True
    offers_options = False
    # Few long chains reach one entity only (on the built-in graph 6% of 4-hop and 2% of 5-hop
    # random walks), so generation tries more walks per item.
    attempts_factor = 10
    # Chance is one in the number of entities: a rule that names the answer on more than 1 item in 20
    # is reading something off the graph or the prompt.
    max_shortcut = 0.05
    open_book_hint = ("in open book the prompt's facts hold the gold path and a few decoy walks, so a rule that "
                      "reads the facts (the entity deepest below the start, or at the end of a walk from it) "
                      "picks among a handful of entities, not all of them: free form's honest setting is closed "
                      "book (--mode closed)")

    def answer_value(self, task: Task) -> str:
        return task.answer_label or task.answer_id

    def find_answer_line(self, text: str, final: bool = True, options: Mapping[str, str] | None = None
                         ) -> AnswerLine | None:
        """The first answer line that names something: an empty one ("ANSWER:" then a new line) is
        skipped, like a multiple-choice line without a letter."""
        for m, rest, line_end in marker_lines(text, final):
            if clean_name(rest):  # "ANSWER:" with nothing but emphasis names nothing
                # the name as written (spaces collapsed): emphasis may belong to it ("__init__")
                return AnswerLine("", " ".join(rest.split()), m.start(), m.end() + len(rest.rstrip(_WRAP)), line_end)
        return None

    def answer_of(self, line: AnswerLine) -> str | None:
        return line.entity or None

    def chosen_entity(self, answer: str, task: Task, option_ids: Mapping[str, str], resolve: Resolve) -> str | None:
        own = {name_key(task.answer_label), name_key(task.answer_id)} - {""}
        for reading in name_candidates(answer):
            if name_key(reading) in own:  # the answer's own name, whatever the matcher indexes
                return task.answer_id
            ids = list(resolve(reading))
            if ids:
                # Generation keeps answers whose name is unique; should two entities share a name
                # anyway, naming it counts for the answer only when the answer is among them.
                return task.answer_id if task.answer_id in ids else ids[0]
        return None

    def is_correct(self, answer: str, task: Task, chosen: str | None) -> bool:
        return chosen is not None and chosen == task.answer_id

    def chance(self, task: Task, n_entities: int) -> float:
        return 1.0 / max(1, n_entities)

    def check_record(self, rec: Mapping[str, object]) -> str:
        if not rec.get("answer_id") or not rec.get("answer_label"):
            return "a free-form item needs 'answer_id' and 'answer_label' (the name the answer line must give)"
        return ""


FREE_FORM = register_family(FreeForm())
