"""The text every stage agrees on: system prompt, user prompt, reference traces, completion format.

A completion is two lines, ``TRACE: <one clause per hop>`` then ``ANSWER: <letter>``. A clause is
``<head label> <relation phrase> <tail label>.``, e.g. "TLSHandshakeError is caused by ClockSkew.",
so the reward can check each claimed hop against the graph. The same clause is the statement of a
fact (facts.jsonl, open-mode context), so a model taught facts has already seen every clause form
its traces need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from kgreason.records import LETTERS

if TYPE_CHECKING:
    from kgreason.kg.graph import Edge, KnowledgeGraph
    from kgreason.records import Task

    EdgeLike = Edge | tuple[str, str, str] | Mapping[str, str]

SYSTEM_PROMPT = (
    "You answer multiple-choice questions about a knowledge graph. Follow the stated chain of "
    "relations one hop at a time, starting from the named entity. Reply with exactly two lines: "
    "'TRACE:' followed by one short sentence per hop (for example 'A is caused by B. B is fixed by C.'), "
    "then 'ANSWER:' followed by the letter of the option you reach."
)

ARROW = " → "

ANSWER_FORMAT_HINT = (
    "Reply in this format:\n"
    "TRACE: <one sentence per hop, e.g. X is caused by Y. Y is fixed by Z.>\n"
    "ANSWER: <letter>"
)


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


def format_trace(kg: KnowledgeGraph, edges: Iterable[EdgeLike]) -> str:
    """The full reference trace: one clause per hop, in path order."""
    return " ".join(format_fact(kg, e) for e in edges)


def short_trace(kg: KnowledgeGraph, edges: Sequence[EdgeLike]) -> str:
    """Key hops only: the first and the last hop (the whole trace for paths of 1-2 hops).

    Small models learn better from short traces or a mix of short and long ones; this is the
    short style the SFT trace-style option offers. The first hop anchors the start entity, the
    last names the answer.
    """
    edges = list(edges)
    if len(edges) <= 2:
        return format_trace(kg, edges)
    return format_trace(kg, [edges[0], edges[-1]])


def format_completion(trace: str, letter: str) -> str:
    """The target completion: "TRACE: <trace>\\nANSWER: <letter>"."""
    return f"TRACE: {trace.strip()}\nANSWER: {letter}"


def format_chain(kg: KnowledgeGraph, chain: Sequence[str]) -> str:
    """The relation chain in readable English: "is caused by → is fixed by → uses"."""
    return ARROW.join(_phrase(kg, r) for r in chain)


def format_question(kg: KnowledgeGraph, start: str, chain: Sequence[str]) -> str:
    """The question names the start and every relation phrase, in order, and nothing else."""
    hops = "hop" if len(chain) == 1 else "hops"
    return (
        f"Start at {_label(kg, start)} and follow {len(chain)} {hops}: {format_chain(kg, chain)}. "
        "Which entity do you reach?"
    )


def format_options(options: Mapping[str, str]) -> str:
    return "\n".join(f"{letter}) {options[letter]}" for letter in LETTERS if letter in options)


def format_prompt(question: str, options: Mapping[str, str], context_facts: Sequence[str] = ()) -> str:
    """The user message: optional facts (open mode), the question, the options, the answer format."""
    parts = []
    if context_facts:
        parts.append("Facts:\n" + "\n".join(f"- {f}" for f in context_facts))
    parts.append(f"Question: {question}")
    parts.append(format_options(options))
    parts.append(ANSWER_FORMAT_HINT)
    return "\n\n".join(parts)


def chat_messages(task: Task, system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """System and user messages for a chat template; the user content is exactly `task.prompt`."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": task.prompt},
    ]


def reference_completion(task: Task, style: str = "full") -> str:
    """The SFT target for a task: its reference trace ("full") or short trace ("short")."""
    if style not in ("full", "short"):
        raise ValueError(f"trace style must be 'full' or 'short', got {style!r}")
    trace = task.short_trace if style == "short" and task.short_trace else task.reference_trace
    return format_completion(trace, task.answer_star)
