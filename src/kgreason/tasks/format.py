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
* the options are written ``<entity> (<letter>)`` and the answer line repeats that text, so the
  letter is a copy of what follows the reached entity in the option list, not a lookup backwards.

The reward reads ``ANSWER: B`` and ``ANSWER: B) SyncNTP`` too (docs/reward.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from kgreason.records import LETTERS

if TYPE_CHECKING:
    from kgreason.kg.graph import Edge, KnowledgeGraph
    from kgreason.records import Task

    EdgeLike = Edge | tuple[str, str, str] | Mapping[str, str]

# Short on purpose: every training example repeats it (tokens spent on it are not spent learning).
SYSTEM_PROMPT = (
    "Follow the question's relations from the start entity, one numbered hop at a time. Reply with "
    "two lines, like:\nTRACE: 1. A is caused by B. 2. B is fixed by C.\nANSWER: C (D)"
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


def format_answer(letter: str, label: str | None = None) -> str:
    """The answer line's value: "SyncNTP (B)", or just "B" when no label is given."""
    return f"{label} ({letter})" if label else letter


def format_completion(trace: str, letter: str, label: str | None = None) -> str:
    """The target completion: "TRACE: <trace>\\nANSWER: <label> (<letter>)" ("ANSWER: <letter>" without label)."""
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


def format_options(options: Mapping[str, str]) -> str:
    """One option per line, written the way the answer line repeats it: "SyncNTP (B)"."""
    return "\n".join(format_answer(letter, options[letter]) for letter in LETTERS if letter in options)


def format_prompt(question: str, options: Mapping[str, str], context_facts: Sequence[str] = ()) -> str:
    """The user message: optional facts (open mode), the question, the options, the answer format."""
    parts = []
    if context_facts:
        parts.append("Facts:\n" + "\n".join(context_facts))
    parts.append(f"Question: {question}")
    parts.append("Options:\n" + format_options(options))
    return "\n\n".join(parts)


def chat_messages(task: Task, system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """System and user messages for a chat template; the user content is exactly `task.prompt`."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": task.prompt},
    ]


def reference_completion(task: Task, style: str = "full") -> str:
    """The SFT target for a task: its reference trace ("full") or short trace ("short"), then the
    answer line naming the reached entity and its letter."""
    if style not in ("full", "short"):
        raise ValueError(f"trace style must be 'full' or 'short', got {style!r}")
    trace = task.short_trace if style == "short" and task.short_trace else task.reference_trace
    return format_completion(trace, task.answer_star, task.options.get(task.answer_star))
