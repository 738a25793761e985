"""`Evidence`: the preset-independent facts about one completion for one task.

The scorer (score.py) builds it; every reward preset (presets.py) reads it. It lives apart from
both so that presets never import the scorer and the scorer imports the presets directly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

from kgreason.records import ClaimedHop
from kgreason.reward.match import TraceReading
from kgreason.reward.parse import ParsedCompletion


@dataclass
class Evidence:
    """Preset-independent facts about one completion for one task (derived facts computed once)."""

    parsed: ParsedCompletion
    reading: TraceReading
    trace_norm: str
    start: str
    chain: list[str]  # the stated relation chain ([] when the task states none)
    path_entities: list[str]  # gold path, start first, answer last
    option_ids: dict[str, str]  # letter -> entity id (resolved from option text when missing)
    chosen_entity: str | None
    correct: bool
    mention_counts: Counter[str] = field(default_factory=Counter)

    @property
    def hops(self) -> list[ClaimedHop]:
        return self.reading.hops

    @property
    def mentioned(self) -> set[str]:
        return set(self.mention_counts)

    @cached_property
    def intermediates(self) -> list[str]:
        """Gold path entities other than the start (in the question) and the answer (in the options)."""
        return list(dict.fromkeys(self.path_entities[1:-1]))

    @cached_property
    def hits(self) -> int:
        return sum(1 for e in self.intermediates if e in self.mention_counts)

    @cached_property
    def coverage(self) -> float:
        inter = self.intermediates
        return self.hits / len(inter) if inter else 0.0

    @cached_property
    def valid_hops(self) -> int:
        return sum(1 for h in self.hops if h.valid)

    @property
    def chain_length(self) -> int:
        return len(self.chain) or max(len(self.path_entities) - 1, 0)

    @cached_property
    def chain_progress(self) -> int:
        """How many hops, from the first, are real edges that continue from the start along the stated chain."""
        current = self.start or (self.hops[0].head if self.hops else "")
        progress = 0
        for i, hop in enumerate(self.hops):
            if self.chain and i >= len(self.chain):
                break
            if not hop.valid or hop.head != current or (self.chain and hop.relation != self.chain[i]):
                break
            progress += 1
            current = hop.tail
        return progress

    @cached_property
    def walk(self) -> list[str]:
        """Entities of the verified prefix of the claimed chain (see `chain_progress`), start first."""
        hops = self.hops[: self.chain_progress]
        return [hops[0].head, *(h.tail for h in hops)] if hops else []

    @cached_property
    def faithful(self) -> bool:
        """The claimed hops are exactly a chain of real edges from the start, along the stated
        relations, ending at the entity of the chosen letter, and the trace claims nothing else that
        the graph cannot check (a relation phrase with a name the graph does not know)."""
        if not self.parsed.format_ok or self.chosen_entity is None or not self.hops:
            return False
        if self.reading.unread_claims:
            return False
        if self.chain and len(self.hops) != len(self.chain):
            return False
        if self.chain_progress != len(self.hops):
            return False
        return self.hops[-1].tail == self.chosen_entity
