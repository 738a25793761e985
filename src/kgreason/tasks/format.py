"""The text every stage agrees on: system prompt, user prompt, reference traces, completion format.

A completion is two lines, ``TRACE: <one numbered clause per hop>`` then ``ANSWER: <entity> (<letter>)``:

    TRACE: 1. TLSHandshakeError is caused by ClockSkew. 2. ClockSkew is fixed by SyncNTP.
    ANSWER: SyncNTP (B)

A clause is ``<head label> <relation phrase> <tail label>.``, so the reward can check each claimed
hop against the graph, and it is the very sentence that states the fact (facts.jsonl, open-mode
context). Three choices make the format learnable by a small model:

* the question numbers the relations of its chain and the trace numbers its hops the same way, so
  "which relation now, and when to stop" is a copy of the next numbered relation, not a count;
* each hop starts by repeating the entity just reached and the relation asked for, so the next
  tail is a copy of what follows that prefix in the facts (an in-context lookup);
* the answer line names the entity the last hop reached (multiple choice adds the letter written
  after it in the option list, kgreason.families.multiple_choice).

What the answer line holds, and what the prompt offers after the question, is the task family's
(kgreason.families); this module writes the parts every family shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from kgreason.families import get_family
from kgreason.families.multiple_choice import SYSTEM_PROMPT, format_answer, format_options

__all__ = ["SYSTEM_PROMPT", "chat_messages", "format_answer", "format_chain", "format_completion", "format_fact",
           "format_options", "format_prompt", "format_question", "format_trace", "reference_completion",
           "short_trace"]

if TYPE_CHECKING:
    from kgreason.kg.graph import Edge, KnowledgeGraph
    from kgreason.records import Task

    EdgeLike = Edge | tuple[str, str, str] | Mapping[str, str]


def _edge_parts(edge: EdgeLike) -> tuple[str, str, str]:
    if isinstance(edge, tuple):
        return edge
    if isinstance(edge, Mapping):
        return str(edge["src"]), str(edge["rel"]), str(edge["dst"])
    return edge.head, edge.relation, edge.tail


def _label(kg: KnowledgeGraph, entity: str) -> str:
    ent = kg.entities.get(entity)
    return ent.label if ent is not None else entity


def _phrase(kg: KnowledgeGraph, relation: str) -> str:
    rel = kg.relations.get(relation)
    return rel.phrase if rel is not None else relation.replace("_", " ")


def format_fact(kg: KnowledgeGraph, edge: EdgeLike) -> str:
    """One edge as one sentence: "TLSHandshakeError is caused by ClockSkew."."""
    head, rel, tail = _edge_parts(edge)
    return f"{_label(kg, head)} {_phrase(kg, rel)} {_label(kg, tail)}."


def format_trace(kg: KnowledgeGraph, edges: Iterable[EdgeLike], numbers: Iterable[int] | None = None) -> str:
    """The full reference trace: one numbered clause per hop, in path order ("1. A is caused by B.").

    `numbers` gives each clause its hop number (default 1, 2, ...); `numbers=()` leaves them off.
    """
    edges = list(edges)
    nums = list(range(1, len(edges) + 1)) if numbers is None else list(numbers)
    if not nums:
        return " ".join(format_fact(kg, e) for e in edges)
    return " ".join(f"{n}. {format_fact(kg, e)}" for n, e in zip(nums, edges, strict=True))


def short_trace(kg: KnowledgeGraph, edges: Sequence[EdgeLike]) -> str:
    """Key hops only: the first and the last hop, keeping their hop numbers (the whole trace for
    paths of 1-2 hops).

    Small models learn better from short traces or a mix of short and long ones; this is the
    short style the SFT trace-style option offers. The first hop anchors the start entity, the
    last names the answer.
    """
    edges = list(edges)
    if len(edges) <= 2:
        return format_trace(kg, edges)
    return format_trace(kg, [edges[0], edges[-1]], numbers=[1, len(edges)])


def format_completion(trace: str, letter: str, label: str | None = None) -> str:
    """A multiple-choice completion: "TRACE: <trace>\\nANSWER: <label> (<letter>)" ("ANSWER: <letter>"
    without label; a free-form answer is passed as `letter` alone)."""
    return f"TRACE: {trace.strip()}\nANSWER: {format_answer(letter, label)}"


def format_chain(kg: KnowledgeGraph, chain: Sequence[str]) -> str:
    """The relation chain, numbered: "1. is caused by, 2. is fixed by, 3. uses"."""
    return ", ".join(f"{i}. {_phrase(kg, r)}" for i, r in enumerate(chain, start=1))


def format_question(kg: KnowledgeGraph, start: str, chain: Sequence[str]) -> str:
    """The question names the start and every relation phrase, in order, and nothing else."""
    hops = "hop" if len(chain) == 1 else "hops"
    return (
        f"Start at {_label(kg, start)} and follow {len(chain)} {hops}: {format_chain(kg, chain)}. "
        "Which entity do you reach?"
    )


def format_prompt(question: str, options: Mapping[str, str], context_facts: Sequence[str] = (),
                  family: str | None = None) -> str:
    """The user message: optional facts (open mode), the question, then what the task family offers
    (multiple choice: the options; free form: nothing)."""
    return get_family(family).format_prompt(question, options, context_facts)


def chat_messages(task: Task, system_prompt: str | None = None) -> list[dict[str, str]]:
    """System and user messages for a chat template; the user content is exactly `task.prompt`, the
    system prompt its family's unless given."""
    return [
        {"role": "system", "content": system_prompt if system_prompt is not None else get_family(task.family).system_prompt},
        {"role": "user", "content": task.prompt},
    ]


def reference_completion(task: Task, style: str = "full") -> str:
    """The SFT target for a task: its reference trace ("full") or short trace ("short"), then the
    answer line its family writes (multiple choice: the reached entity and its letter)."""
    if style not in ("full", "short"):
        raise ValueError(f"trace style must be 'full' or 'short', got {style!r}")
    trace = task.short_trace if style == "short" and task.short_trace else task.reference_trace
    return f"TRACE: {trace.strip()}\nANSWER: {get_family(task.family).answer_value(task)}"
