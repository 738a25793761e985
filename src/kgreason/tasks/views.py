"""What the shortcut baselines see of a task file: entity names resolved, context facts read back to
triples, each item as a `baselines.ItemView`, and every registered rule's hits or picks.

Shared by the audit (tasks/audit.py, which re-exports these names), the refusal, evaluation's
reference rows and the free-form held-out screen (tasks/screen.py); it imports nothing from the
generator, so the generator can screen its own items with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from kgreason.families import get_family
from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import Task
from kgreason.tasks.baselines import (
    BaselineContext,
    ItemView,
    expected_hits,
    predictions,
    tie_break,
)

Triple = tuple[str, str, str]


# --- resolving what an item names ------------------------------------------------------------------
class EntityIndex:
    """Option text / path entries -> entity id, by id, label or alias (case-insensitive)."""

    def __init__(self, kg: KnowledgeGraph) -> None:
        self.kg = kg
        self._tails: dict[str | None, list[str]] | None = None
        self._by_name: dict[str, list[str]] = {}
        for eid, ent in kg.entities.items():
            for name in ent.names():
                ids = self._by_name.setdefault(name.lower(), [])
                if eid not in ids:
                    ids.append(eid)

    def resolve(self, text: str) -> str | None:
        if text in self.kg.entities:
            return text
        ids = self._by_name.get(text.strip().lower(), [])
        return ids[0] if len(ids) == 1 else None

    def options(self, task: Task) -> dict[str, str | None]:
        """Key -> entity id of what a rule may pick: the options by letter, or, for a family that
        offers none (free form), every entity that is a tail of the last stated relation, keyed by
        its id (an answer must be one; a rule that knows the graph's types knows that much)."""
        if not get_family(task.family).offers_options:
            return {e: e for e in self.tails_of(task.relation_chain[-1] if task.relation_chain else None)}
        out: dict[str, str | None] = {}
        for letter, text in task.options.items():
            eid = task.option_ids.get(letter)
            out[letter] = eid if eid in self.kg.entities else self.resolve(text)
        return out

    def tails_of(self, relation: str | None) -> list[str]:
        """Entities with an incoming edge of `relation` (of any relation for None), sorted."""
        if self._tails is None:
            tails: dict[str | None, set[str]] = {None: set()}
            for e in self.kg.edges:
                tails.setdefault(e.relation, set()).add(e.tail)
                tails[None].add(e.tail)
            self._tails = {r: sorted(ts) for r, ts in tails.items()}
        return self._tails.get(relation, [])

    def start(self, task: Task) -> str | None:
        if task.start:
            return self.resolve(task.start)
        return self.resolve(task.path_star.entities[0]) if task.path_star.entities else None


def states_chain(kg: KnowledgeGraph, task: Task) -> bool:
    """Whether the question spells out the relation chain (every phrase, in order)."""
    if not task.relation_chain or any(r not in kg.relations for r in task.relation_chain):
        return False
    text = task.question.lower()
    pos = 0
    for rel in task.relation_chain:
        found = text.find(kg.phrase(rel).lower(), pos)
        if found < 0:
            return False
        pos = found + 1
    return True


def reachable(kg: KnowledgeGraph, task: Task, start: str, stated: bool) -> set[str]:
    """What the question's wording admits: the stated chain, or (no chain) any hop_len-step walk."""
    if stated:
        return kg.follow(start, task.relation_chain)
    frontier = {start}
    for _ in range(task.hop_len):
        frontier = {t for node in frontier for t in kg.successors(node)}
    return frontier


# --- oracle and shortcuts --------------------------------------------------------------------------
def _tie_break(task: Task, name: str, letters: Sequence[str]) -> str:
    """The baselines' deterministic pseudo-random pick among tied letters (ties score chance, not 'always A')."""
    letters = sorted(letters)
    return letters[tie_break(task.id, name, range(len(letters)))]


def oracle_predictions(kg: KnowledgeGraph, tasks: Sequence[Task]) -> list[str | None]:
    """The letter of the option the KG reaches from the start by the item's chain (None if none)."""
    index = EntityIndex(kg)
    preds: list[str | None] = []
    for task in tasks:
        start = index.start(task)
        if start is None:
            preds.append(None)
            continue
        reached = reachable(kg, task, start, states_chain(kg, task))
        hits = [lt for lt, eid in sorted(index.options(task).items()) if eid is not None and eid in reached]
        preds.append(hits[0] if len(hits) == 1 else (_tie_break(task, "oracle", hits) if hits else None))
    return preds


class FactReader:
    """Open-mode context sentences ("<head label> <relation phrase> <tail label>.") back to triples."""

    def __init__(self, kg: KnowledgeGraph, index: EntityIndex) -> None:
        self.kg = kg
        self.index = index
        phrases = {kg.phrase(r): r for r in kg.relations}
        self.phrases = sorted(phrases.items(), key=lambda kv: -len(kv[0]))

    def read(self, fact: str) -> Triple | None:
        text = fact.strip().removeprefix("- ").rstrip(".").strip()
        for phrase, rel in self.phrases:
            at = text.find(f" {phrase} ")
            while at >= 0:
                head = self.index.resolve(text[:at])
                tail = self.index.resolve(text[at + len(phrase) + 2:])
                if head and tail:
                    return (head, rel, tail)
                at = text.find(f" {phrase} ", at + 1)
        return None


def item_views(kg: KnowledgeGraph, tasks: Sequence[Task], index: EntityIndex | None = None) -> list[ItemView]:
    """What the shortcut baselines see of each task (context sentences read back to triples)."""
    index = index or EntityIndex(kg)
    reader = FactReader(kg, index)
    views = []
    for task in tasks:
        opts = index.options(task)
        letters = tuple(sorted(opts))
        context = tuple(t for t in (reader.read(f) for f in task.context_facts) if t is not None)
        chain = tuple(task.relation_chain) if states_chain(kg, task) else ()
        views.append(ItemView(id=task.id, start=index.start(task), chain=chain, letters=letters,
                              options=tuple(opts[lt] for lt in letters),
                              labels=tuple(task.options.get(lt) or (kg.label(opts[lt]) if opts[lt] else "") for lt in letters),
                              question=task.question,
                              hop_len=task.hop_len, context=context,
                              offers_options=get_family(task.family).offers_options))
    return views


def baseline_context(kg: KnowledgeGraph, tasks: Sequence[Task], train_tasks: Sequence[Task] | None,
                     index: EntityIndex) -> BaselineContext:
    ctx = BaselineContext(kg, letter_counts=Counter(answer_key(t) for t in tasks))
    if train_tasks is not None:
        ctx.train_answers = Counter(t.answer_id or index.options(t).get(t.answer_star) for t in train_tasks)
        # Only offered options count as "offered" (free-form items offer none).
        ctx.train_options = Counter(x for t in train_tasks if get_family(t.family).offers_options
                                    for x in index.options(t).values() if x)
    return ctx


def answer_key(task: Task) -> str:
    """The key a rule's prediction is compared with (TaskFamily.answer_key): a letter, or an entity id."""
    return get_family(task.family).answer_key(task)


def shortcut_hits(kg: KnowledgeGraph, tasks: Sequence[Task], train_tasks: Sequence[Task] | None = None,
                  names: Iterable[str] | None = None) -> dict[str, list[float]]:
    """Every registered baseline's expected hit per task (ties split evenly: see `expected_hits`)."""
    index = EntityIndex(kg)
    ctx = baseline_context(kg, tasks, train_tasks, index)
    return expected_hits(item_views(kg, tasks, index), [answer_key(t) for t in tasks], ctx, names)


def shortcut_predictions(kg: KnowledgeGraph, tasks: Sequence[Task], train_tasks: Sequence[Task] | None = None,
                         names: Iterable[str] | None = None) -> dict[str, list[str | None]]:
    """Every registered shortcut baseline's letters for `tasks` (see `tasks/baselines.py`).

    `train_tasks` (the training files) enable the answer-prior baselines; a baseline that applies
    to none of the items is left out. Ties are broken pseudo-randomly per item.
    """
    index = EntityIndex(kg)
    ctx = baseline_context(kg, tasks, train_tasks, index)
    return predictions(item_views(kg, tasks, index), ctx, names)
