"""Shortcut features a model could exploit instead of following the graph, and a balancer that
picks distractors so none of them beats chance.

Random walks end on well-connected entities, and chains through related entities end on labels
that share words with the start, so distractors picked at random would let "choose the most
connected option" or "choose the option that shares words with the question" beat chance. The
balancer tracks, over a split, how often each shortcut would pick the answer and chooses each
item's distractor set to keep every rate at 1/4.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from kgreason.kg.graph import KnowledgeGraph

_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
BALANCED = ("type_match", "max_degree", "word_overlap")


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


def win_share(scores: Sequence[float], index: int = 0) -> float:
    """How often an argmax-with-random-ties picks `index`: 1/ties if it is a maximum, else 0."""
    best = max(scores)
    if scores[index] != best:
        return 0.0
    return 1.0 / sum(s == best for s in scores)


class ShortcutBalancer:
    """Running shortcut win rates over a split, and the distractor choice that keeps them at chance."""

    def __init__(self, kg: KnowledgeGraph, k: int = 3, range_types: dict[str, str | None] | None = None) -> None:
        self.kg = kg
        self.k = k
        self.range_types = relation_range_types(kg) if range_types is None else range_types
        self.sums = [0.0] * len(BALANCED)
        self.n = 0
        self._words: dict[str, set[str]] = {}
        self._degree: dict[str, float] = {}

    def _entity_words(self, x: str) -> set[str]:
        if x not in self._words:
            self._words[x] = words(self.kg.entities[x].label)
        return self._words[x]

    def _entity_degree(self, x: str) -> float:
        if x not in self._degree:
            self._degree[x] = float(self.kg.degree(x))
        return self._degree[x]

    def wins(self, question: str, chain: Sequence[str], options: Sequence[str],
             q_words: set[str] | None = None) -> list[float]:
        """Per shortcut, the chance it picks options[0] (the answer) among these options."""
        want = self.range_types.get(chain[-1]) if chain else None
        q_words = words(question) if q_words is None else q_words
        return [
            win_share([float(want is not None and self.kg.entities[x].type == want) for x in options]),
            win_share([self._entity_degree(x) for x in options]),
            win_share([float(len(q_words & self._entity_words(x))) for x in options]),
        ]

    def choose(self, question: str, chain: Sequence[str], answer: str, near: list[str], far: list[str],
               rng: random.Random, samples: int = 24) -> tuple[list[str], list[float]] | None:
        """The k distractors (near misses preferred) that keep each shortcut's rate closest to chance."""
        k = self.k
        if len(near) + len(far) < k:
            return None
        pool = near + far
        q_words = words(question)
        near_set = set(near)
        best: tuple[float, list[str], list[float]] | None = None
        for i in range(samples):
            src = near if i < samples // 2 and len(near) >= k else pool
            pick = rng.sample(src, k)
            w = self.wins(question, chain, [answer, *pick], q_words)
            target = (self.n + 1) / (k + 1)
            cost = sum(abs(s + x - target) for s, x in zip(self.sums, w, strict=True))
            cost += 0.01 * sum(x not in near_set for x in pick)  # near misses first, all else equal
            if best is None or cost < best[0]:
                best = (cost, pick, w)
        assert best is not None
        return best[1], best[2]

    def commit(self, wins: Sequence[float]) -> None:
        self.sums = [s + w for s, w in zip(self.sums, wins, strict=True)]
        self.n += 1
