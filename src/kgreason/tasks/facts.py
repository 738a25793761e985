"""Facts as questions: one query per (head, relation) with every tail the graph gives, and its score.

facts.jsonl holds one record per KG edge. A head often has several tails for one relation (on the
built-in graph 245 of its 562 (head, relation) pairs do, up to 7), so training each edge as its own
"Complete the fact: H is caused by" -> "T." example gives one prompt several targets: the model
learns a distribution over the tails, and its greedy answer can name only one of them. A closed-book
chain needs all of them (which branch reaches an option is what the question asks), so the fact
material is one example per (head, relation) whose completion lists every tail, sorted, and fact
recall (kgreason.evaluate.recall) is scored per edge: an edge is recalled when its tail is among
the tails the model lists for its (head, relation).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kgreason.io import InputError

TAIL_SEPARATOR = "; "  # not ", " or " and ": entity labels of a user's graph may contain those


@dataclass(frozen=True)
class FactQuery:
    """One (head, relation) of the graph as a prompt, with its tails (labels, sorted)."""

    head: str
    relation: str
    prompt: str
    tails: tuple[str, ...]
    tail_ids: tuple[tuple[str, str], ...] = ()  # (entity id, label) of every tail edge

    @property
    def completion(self) -> str:
        return TAIL_SEPARATOR.join(self.tails) + "."

    def tail_label(self, tail_id: str) -> str | None:
        return dict(self.tail_ids).get(tail_id)


def fact_queries(records: Sequence[dict], source: str = "facts.jsonl") -> list[FactQuery]:
    """facts.jsonl records grouped by (head, relation) (by prompt where a record has no ids), in
    first-seen order; each query lists its tails sorted. Two pairs that share a prompt are refused:
    no answer could tell them apart."""
    grouped: dict[tuple[str, str] | str, dict] = {}
    owner: dict[str, tuple[int, tuple[str, str] | str]] = {}
    for i, rec in enumerate(records, start=1):
        prompt, tail, tail_id = rec.get("prompt"), rec.get("tail_label"), rec.get("tail")
        if not isinstance(prompt, str) or not prompt:
            raise InputError(f"{source}:{i}: a fact record needs a non-empty string field 'prompt'")
        if not isinstance(tail, str) or not tail:
            # records written by hand with only prompt and completion: the completion is the tail and a full stop
            completion = rec.get("completion")
            if not isinstance(completion, str) or not completion.strip():
                raise InputError(f"{source}:{i}: a fact record needs 'tail_label' or 'completion'")
            tail = completion.strip().removesuffix(".")
        if TAIL_SEPARATOR.strip() in tail:
            raise InputError(f"{source}:{i}: the label {tail!r} contains {TAIL_SEPARATOR.strip()!r}, which separates "
                             "the tails of a fact; rename the entity to train or score closed-book facts")
        head, relation = rec.get("head"), rec.get("relation")
        key = (str(head), str(relation)) if head and relation else prompt
        first = owner.setdefault(prompt, (i, key))
        if first[1] != key:
            raise InputError(f"{source}:{i}: the prompt {prompt!r} also asks line {first[0]}'s fact, about another "
                             "head or relation (two entities or relations share a label): rename one")
        entry = grouped.setdefault(key, {"head": str(head or ""), "relation": str(relation or ""), "prompt": prompt,
                                         "tails": {}})
        entry["tails"].setdefault(tail, set()).add(str(tail_id if tail_id else tail))
    queries = []
    for e in grouped.values():
        labels = tuple(sorted(e["tails"]))
        pairs = tuple((tid, label) for label in labels for tid in sorted(e["tails"][label]))
        queries.append(FactQuery(e["head"], e["relation"], e["prompt"], labels, pairs))
    return queries


def listed_tails(text: str) -> list[str]:
    """The tails a completion lists: its first line, without the final full stop, split on the separator."""
    line = text.strip().split("\n", 1)[0].strip()
    line = line.removesuffix(".").strip()
    return [part.strip() for part in line.split(TAIL_SEPARATOR.strip()) if part.strip()]


@dataclass(frozen=True)
class RecallScore:
    """How one completion recalls a query's tails."""

    recalled: int  # true tails the completion lists
    tails: int  # true tails
    listed: int  # distinct items the completion lists
    exact: bool  # the listed set is exactly the true set


def score_recall(query: FactQuery, text: str) -> RecallScore:
    listed = set(listed_tails(text))
    truth = set(query.tails)
    return RecallScore(recalled=len(listed & truth), tails=len(truth), listed=len(listed), exact=listed == truth)


def summarize_recall(scores: Iterable[RecallScore]) -> dict[str, float | int]:
    """Edge recall (true tails listed / true tails), precision (true among listed) and the exact share."""
    scores = list(scores)
    tails = sum(s.tails for s in scores)
    listed = sum(s.listed for s in scores)
    recalled = sum(s.recalled for s in scores)
    return {"queries": len(scores), "edges": tails,
            "edge_recall": recalled / tails if tails else 0.0,
            "precision": recalled / listed if listed else 0.0,
            "exact": sum(s.exact for s in scores) / len(scores) if scores else 0.0}


def queries_on_paths(queries: Sequence[FactQuery], edges: Iterable[tuple[str, str, str]]) -> list[FactQuery]:
    """The queries whose (head id, relation) is that of one of `edges` (e.g. the eval items' gold path hops)."""
    wanted = {(h, r) for h, r, _ in edges}
    return [q for q in queries if (q.head, q.relation) in wanted]


def edge_recall(queries: Sequence[FactQuery], answers: dict[str, str],
                edges: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
    """The share of `edges` (head id, relation, tail id) whose tail the model lists for its (head, relation),
    with the precision of those queries' lists beside it: recall alone rewards listing every entity."""
    by_key = {(q.head, q.relation): q for q in queries}
    edges = sorted(set(edges))
    hit = 0
    if edges and not any(q.head for q in queries):
        # facts written without entity ids cannot be matched to the paths: not measured, rather than 0
        return {"edges": len(edges), "edge_recall": None, "precision": None}
    for h, r, t in edges:
        q = by_key.get((h, r))
        label = q.tail_label(t) if q is not None else None
        if label is not None:
            hit += label in set(listed_tails(answers.get(q.prompt, "")))
    asked = queries_on_paths(queries, edges)
    precision = summarize_recall(score_recall(q, answers.get(q.prompt, "")) for q in asked)["precision"]
    return {"edges": len(edges), "edge_recall": hit / len(edges) if edges else 0.0, "precision": precision}
