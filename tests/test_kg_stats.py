"""`kg stats` numbers on a hand-built graph whose answers are worked out by hand."""

from __future__ import annotations

from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.kg.stats import compute_stats, degree_histogram, format_stats


def hand_graph() -> KnowledgeGraph:
    # A -r-> B, A -r-> C, A -q-> D, B -q-> C ; E -r-> F (second component); G isolated.
    ents = [
        Entity("A", "A", "symptom"),
        Entity("B", "B", "cause"),
        Entity("C", "C", "cause"),
        Entity("D", "D", "fix"),
        Entity("E", "E"),
        Entity("F", "F"),
        Entity("G", "G", "fix"),
    ]
    rels = [Relation("r", "is r of"), Relation("q", "q-s"), Relation("unused", "is unused")]
    edges = [
        Edge("A", "r", "B"),
        Edge("A", "r", "C"),
        Edge("A", "q", "D"),
        Edge("B", "q", "C"),
        Edge("E", "r", "F"),
    ]
    edges += [Edge("A", "r", "B"), Edge("C", "q", "C")]  # dropped with warnings
    return KnowledgeGraph.from_parts(ents, rels, edges, name="hand")


def test_counts_types_relations() -> None:
    s = compute_stats(hand_graph())
    assert (s["entities"], s["relations"], s["edges"]) == (7, 3, 5)
    assert s["types"] == {"(untyped)": 2, "cause": 2, "fix": 2, "symptom": 1}
    assert s["relation_counts"]["r"] == {"phrase": "is r of", "edges": 3, "heads": 2, "mean_out": 1.5}
    assert s["relation_counts"]["q"] == {"phrase": "q-s", "edges": 2, "heads": 2, "mean_out": 1.0}
    assert s["relation_counts"]["unused"]["edges"] == 0
    assert len(s["warnings"]) == 2


def test_degrees_and_connectivity() -> None:
    s = compute_stats(hand_graph())
    # total degrees: A3 B2 C2 D1 E1 F1 G0 -> sorted 0 1 1 1 2 2 3
    assert s["degree"] == {"min": 0, "median": 1, "mean": round(10 / 7, 3), "max": 3}
    assert s["out_degree"]["max"] == 3 and s["in_degree"]["max"] == 2
    assert s["degree_histogram"] == {"0": 1, "1": 3, "2": 2, "3-4": 1}
    assert s["isolated_entities"] == 1
    assert s["dead_ends"] == 4  # C, D, F, G have no outgoing edge
    assert (s["components"], s["largest_component"]) == (3, 4)


def test_histogram_buckets() -> None:
    assert degree_histogram([0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 100]) == {
        "0": 1,
        "1": 1,
        "2": 1,
        "3-4": 2,
        "5-8": 2,
        "9-16": 2,
        "17-32": 1,
        "65-128": 1,
    }


def test_human_table_mentions_everything() -> None:
    text = format_stats(compute_stats(hand_graph()))
    assert "graph hand: 7 entities, 3 relations, 5 edges" in text
    assert "3 weakly connected component(s), largest 4" in text
    assert "is r of" in text and "(untyped)" in text
    assert "warnings:" in text and "self-loop" in text
