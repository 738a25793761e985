"""Scoring completions against a task and the knowledge graph.

`Scorer(kg, preset)` builds the entity and relation automata once; `Scorer.score(task, text)`
reads the completion into an `Evidence` (everything a preset may use: the parsed answer, the
mentions, the claimed hops and whether they are real edges, coverage, chain progress,
faithfulness) and hands it to the preset, which returns the total and its components. The same
evidence fills the `RewardBreakdown`, so every preset reports comparable diagnostics and only the
total differs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from kgreason.families import get_family
from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import RewardBreakdown, Task
from kgreason.reward.evidence import Evidence
from kgreason.reward.match import EntityMatcher, RelationMatcher, read_trace
from kgreason.reward.parse import parse_completion
from kgreason.reward.presets import get_preset


class Scorer:
    """Scores completions with one reward preset; build once per graph, reuse for every sample."""

    def __init__(self, kg: KnowledgeGraph, preset: str = "kgreason", entity_matcher: EntityMatcher | None = None) -> None:
        self.kg = kg
        self.preset_name = preset
        self._preset = get_preset(preset)
        self.entities = entity_matcher or EntityMatcher(kg)
        self.relations = RelationMatcher(kg)
        self._option_cache: dict[tuple, dict[str, str]] = {}

    def evidence(self, task: Task, text: str) -> Evidence:
        family = get_family(task.family)
        parsed = parse_completion(text, task.options, family)
        trace = parsed.trace if parsed.has_trace else ""
        reading = read_trace(self.kg, self.entities, self.relations, trace)
        counts: Counter[str] = Counter()
        for m in reading.mentions:
            counts.update(set(m.entity_ids))
        option_ids = self._option_ids(task)
        chosen = family.chosen_entity(parsed.answer, task, option_ids, self.entities.lookup) if parsed.answer else None
        return Evidence(
            parsed=parsed,
            reading=reading,
            trace_norm=reading.text,
            start=task.start or (task.path_star.entities[0] if task.path_star.entities else ""),
            chain=list(task.relation_chain or task.path_star.relation_chain),
            path_entities=list(task.path_star.entities),
            option_ids=option_ids,
            chosen_entity=chosen,
            correct=parsed.format_ok and parsed.answer is not None and family.is_correct(parsed.answer, task, chosen),
            mention_counts=counts,
        )

    def score(self, task: Task, text: str) -> RewardBreakdown:
        """Score one completion; never raises on model output."""
        ev = self.evidence(task, text)
        family = get_family(task.family)
        result = self._preset(ev, self.kg)
        return RewardBreakdown(
            preset=self.preset_name,
            format_ok=ev.parsed.format_ok,
            answer=ev.parsed.answer,
            correct=ev.correct,
            path_coverage=round(ev.coverage, 6),
            hits=ev.hits,
            claimed_hops=list(ev.hops),
            valid_hops=ev.valid_hops,
            faithful=ev.faithful,
            repetition=round(result.repetition, 6),
            total=round(result.total, 6),
            # named_option compares the name on the line with the chosen letter's option: multiple choice only
            components={k: round(v, 6) for k, v in {**result.components,
                                                    **(self._named_option(ev) if family.offers_options else {})}.items()},
        )

    def _named_option(self, ev: Evidence) -> dict[str, float]:
        """A diagnostic, never part of the total: does the entity named on the answer line
        ("ANSWER: jstat (D)") name the chosen letter's option? {} when the line names none.

        A mismatch is no format failure; the letter is what is graded. It is logged so a run can
        show when a model names one option and picks another's letter.
        """
        named = ev.parsed.answer_entity
        if not named or not ev.parsed.format_ok or ev.chosen_entity is None:
            return {}
        return {"named_option": 1.0 if self._names_entity(named, ev.chosen_entity) else 0.0}

    def _names_entity(self, text: str, entity: str) -> bool:
        exact = self.entities.lookup(text)
        if exact:
            return entity in exact
        mentions = self.entities.find(text)
        if not mentions:
            return False
        longest = max(mentions, key=lambda m: m.end - m.start)  # as options resolve ("B) SyncNTP")
        return entity in longest.entity_ids

    def score_batch(self, tasks: Task | Sequence[Task], texts: Iterable[str]) -> list[RewardBreakdown]:
        """Score many completions: pairs (tasks[i], texts[i]), or one task for every text (GRPO groups)."""
        texts = list(texts)
        if isinstance(tasks, Task):
            return [self.score(tasks, t) for t in texts]
        if len(tasks) != len(texts):
            raise ValueError(f"score_batch: {len(tasks)} tasks but {len(texts)} completions")
        return [self.score(task, t) for task, t in zip(tasks, texts, strict=True)]

    def _option_ids(self, task: Task) -> dict[str, str]:
        """Letter -> entity id; hobby-format tasks name options only by text, so resolve it."""
        if task.option_ids:
            return dict(task.option_ids)
        key = (task.id, tuple(sorted(task.options.items())), task.answer_star, task.answer_id)
        cached = self._option_cache.get(key)
        if cached is not None:
            return cached
        resolved: dict[str, str] = {}
        for letter, text in task.options.items():
            entity = text if text in self.kg.entities else self.entities.resolve(str(text))
            if entity is not None:
                resolved[letter.strip().upper()] = entity
        if task.answer_id and task.answer_star:
            resolved[task.answer_star.strip().upper()] = task.answer_id  # the gold path's end is authoritative
        self._option_cache[key] = resolved
        return resolved
