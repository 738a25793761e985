"""Features shared by the shortcut baselines and the generator: label words and relation ranges.

The baselines themselves are a registry in `tasks/baselines.py`; the distractor balancer that
keeps them at chance is in `tasks/distractors.py`.
"""

from __future__ import annotations

import re

from kgreason.kg.graph import KnowledgeGraph

_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def words(text: str) -> set[str]:
    """Lower-cased words, splitting CamelCase and acronyms: "TLSHandshakeError" -> tls, handshake, error."""
    return {w.lower() for w in _WORD_RE.findall(text)}


def relation_range_types(kg: KnowledgeGraph) -> dict[str, str | None]:
    """relation -> the most common type of its tails (what a question ending in it asks for)."""
    counts: dict[tuple[str, str | None], int] = {}
    for tail, ent in kg.entities.items():  # via the backward index: one step per (tail, relation)
        for rel, heads in kg.in_relations(tail).items():
            key = (rel, ent.type)
            counts[key] = counts.get(key, 0) + len(heads)
    best: dict[str, tuple[int, str | None]] = {}
    for (rel, kind), n in counts.items():
        if rel not in best or n > best[rel][0]:
            best[rel] = (n, kind)
    return {rel: kind for rel, (_, kind) in best.items()}
