"""Facts as (head, relation) queries with every tail, and how a completion's recall is scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgreason.io import InputError
from kgreason.tasks.facts import (
    edge_recall,
    fact_queries,
    listed_tails,
    queries_on_paths,
    score_recall,
    summarize_recall,
)


def _rec(head: str, rel: str, tail: str, phrase: str = "is caused by") -> dict:
    return {"head": head, "relation": rel, "tail": tail, "head_label": head, "relation_phrase": phrase,
            "tail_label": tail.upper(), "prompt": f"Complete the fact: {head} {phrase}",
            "completion": f"{tail.upper()}."}


RECORDS = [_rec("a", "caused_by", "z"), _rec("a", "caused_by", "b"), _rec("b", "leads_to", "c", "leads to"),
           _rec("a", "caused_by", "c")]


def test_queries_group_every_tail_of_a_head_and_relation_sorted() -> None:
    queries = fact_queries(RECORDS)
    assert [q.prompt for q in queries] == ["Complete the fact: a is caused by", "Complete the fact: b leads to"]
    first = queries[0]
    assert first.tails == ("B", "C", "Z") and first.tail_ids == (("b", "B"), ("c", "C"), ("z", "Z"))
    assert first.completion == "B; C; Z."
    assert listed_tails(first.completion) == ["B", "C", "Z"]


def test_recall_counts_listed_true_tails_and_exactness() -> None:
    query = fact_queries(RECORDS)[0]
    assert score_recall(query, "B; Z.") == score_recall(query, " B; Z.\nmore text")
    partial = score_recall(query, "B; Z.")
    assert (partial.recalled, partial.tails, partial.listed, partial.exact) == (2, 3, 2, False)
    assert score_recall(query, "Z; C; B.").exact
    assert score_recall(query, "B, C and Z.").recalled == 0  # another separator lists one unknown item


def test_listing_every_entity_recalls_all_but_shows_in_precision_and_exactness() -> None:
    """Adversarial: a model that names every entity it knows would reach full edge recall."""
    query = fact_queries(RECORDS)[0]
    spam = score_recall(query, "; ".join(["B", "C", "Z"] + [f"X{i}" for i in range(27)]) + ".")
    summary = summarize_recall([spam])
    assert summary["edge_recall"] == 1.0
    assert summary["precision"] == pytest.approx(0.1) and summary["exact"] == 0.0


def test_edge_recall_scores_the_path_edges_by_id() -> None:
    queries = fact_queries(RECORDS)
    answers = {queries[0].prompt: "C.", queries[1].prompt: "C."}
    result = edge_recall(queries, answers, [("a", "caused_by", "c"), ("a", "caused_by", "b"), ("b", "leads_to", "c")])
    assert result == {"edges": 3, "edge_recall": pytest.approx(2 / 3), "precision": 1.0}
    spam = {q.prompt: "B; C; Z; Q; R." for q in queries}  # every label it knows, for every query
    assert edge_recall(queries, spam, [("a", "caused_by", "b")]) == {"edges": 1, "edge_recall": 1.0,
                                                                      "precision": pytest.approx(3 / 5)}
    assert [q.head for q in queries_on_paths(queries, [("b", "leads_to", "c")])] == ["b"]


def test_records_without_a_prompt_are_refused_with_their_line() -> None:
    with pytest.raises(InputError, match="facts.jsonl:2"):
        fact_queries([RECORDS[0], {"completion": "X."}])


def test_a_label_with_the_tail_separator_is_refused() -> None:
    with pytest.raises(InputError, match="facts.jsonl:1: the label 'A;B'"):
        fact_queries([{**RECORDS[0], "tail_label": "A;B"}])


def test_fact_material_is_one_example_per_query_even_when_subsampled() -> None:
    from kgreason.train.sft import fact_examples

    examples = fact_examples(RECORDS, Path("facts.jsonl"))
    assert len(examples) == 2
    assert examples[0]["completion"][0]["content"] == "B; C; Z."
    (only,) = fact_examples(RECORDS, Path("facts.jsonl"), max_examples=1, seed=3)
    assert only["completion"][0]["content"] in ("B; C; Z.", "C.")  # a subset of queries, never of tails


def test_two_pairs_sharing_a_prompt_are_refused() -> None:
    """Two heads with one label: no completion could tell their facts apart."""
    twin = {**_rec("a2", "caused_by", "q"), "prompt": RECORDS[0]["prompt"]}
    with pytest.raises(InputError, match="facts.jsonl:5: the prompt .* also asks line 1's fact"):
        fact_queries([*RECORDS, twin])


def test_facts_without_ids_group_by_prompt_and_leave_path_recall_unmeasured() -> None:
    bare = [{"prompt": r["prompt"], "completion": r["completion"]} for r in RECORDS]
    queries = fact_queries(bare)
    assert [q.tails for q in queries] == [("B", "C", "Z"), ("C",)]
    assert edge_recall(queries, {}, [("a", "caused_by", "b")]) == {"edges": 1, "edge_recall": None,
                                                                    "precision": None}


def test_two_tail_entities_with_one_label_are_one_listed_tail() -> None:
    records = [_rec("a", "caused_by", "b"), {**_rec("a", "caused_by", "b2"), "tail_label": "B"}]
    (query,) = fact_queries(records)
    assert query.tails == ("B",) and query.tail_label("b2") == "B"
    assert edge_recall([query], {query.prompt: "B."}, [("a", "caused_by", "b2")])["edge_recall"] == 1.0
