"""Entity and relation matching, and reading claimed hops from a trace."""

from __future__ import annotations

import random

from conftest_reward import small_kg
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.reward.commands import NaiveEntityMatcher
from kgreason.reward.match import EntityMatcher, RelationMatcher, normalize, read_trace

KG = small_kg()
ENT = EntityMatcher(KG)
REL = RelationMatcher(KG)


def ids(text: str) -> list[str]:
    return [m.entity for m in ENT.find(text)]


def test_word_boundaries() -> None:
    assert ids("ZOOM meeting") == []  # the alias "OOM" is not inside "ZOOM"
    assert ids("OOMKilledX and XOOMKilled") == []
    assert ids("an OOM happened") == ["oom_killed"]
    assert ids("(OOM)") == ["oom_killed"]
    assert ids("OOM.") == ["oom_killed"]
    assert ids("SyncNTPs") == []


def test_ids_labels_aliases_case_insensitive() -> None:
    assert ids("clock_skew") == ["clock_skew"]  # id
    assert ids("CLOCKSKEW") == ["clock_skew"]  # label, upper case
    assert ids("some Clock Drift here") == ["clock_skew"]  # alias, mixed case
    assert ids("clock   drift") == ["clock_skew"]  # runs of spaces
    assert ids("oomkilled then oom") == ["oom_killed", "oom_killed"]


def test_longest_match_wins_on_overlaps() -> None:
    assert ids("Disk full error again") == ["disk_full_error"]
    assert ids("Disk full, then an error") == ["disk_full"]


def test_mentions_are_in_text_order_with_offsets() -> None:
    text = normalize("SyncNTP fixes ClockSkew")
    mentions = ENT.find(text, normalized=True)
    assert [(m.entity, text[m.start:m.end]) for m in mentions] == [("sync_ntp", "syncntp"), ("clock_skew", "clockskew")]


def test_lookup_and_resolve_option_text() -> None:
    assert ENT.lookup("syncntp") == ("sync_ntp",)
    assert ENT.lookup("nothing") == ()
    assert ENT.resolve("B) SyncNTP") == "sync_ntp"
    assert ENT.resolve("no entity") is None


def test_automaton_agrees_with_naive_loop_on_random_texts() -> None:
    naive = NaiveEntityMatcher(KG)
    rng = random.Random(7)
    words = ["ClockSkew", "clock drift", "OOM", "ZOOM", "Disk full", "error", "SyncNTP", "is", "fixed", "by", ".", "x"]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 25)))
        assert ENT.find(text) == naive.find(text)


def test_relation_phrases_forward_inverse_and_loose() -> None:
    def senses(text: str) -> list[tuple[str, bool]]:
        return [s for p in REL.find(text) for s in p.senses[:1]]

    assert senses("A is caused by B") == [("caused_by", False)]
    assert senses("B causes A") == [("caused_by", True)]
    assert senses("A caused by B") == [("caused_by", False)]  # auxiliary dropped
    assert senses("A was fixed by B") == [("fixed_by", False)]  # "fixed by" without "was"
    assert senses("A IS DIAGNOSED BY B") == [("diagnosed_by", False)]
    assert senses("A uses_tool B") == [("uses_tool", False)]  # the relation id itself
    assert senses("the causes were unclear") == [("caused_by", True)]
    assert senses("becauses") == []  # word boundaries apply to phrases too


def hops(trace: str) -> list[tuple[str, str | None, str, bool]]:
    return [(h.head, h.relation, h.tail, h.valid) for h in read_trace(KG, ENT, REL, trace).hops]


def test_claimed_hops_real_edge_wrong_relation_non_edge() -> None:
    assert hops("TLSHandshakeError is caused by ClockSkew.") == [
        ("tls_handshake_error", "caused_by", "clock_skew", True)
    ]
    assert hops("TLSHandshakeError leads to ClockSkew.") == [("tls_handshake_error", "leads_to", "clock_skew", False)]
    assert hops("TLSHandshakeError is caused by MemoryLeak.") == [
        ("tls_handshake_error", "caused_by", "memory_leak", False)
    ]
    assert hops("TLSHandshakeError ClockSkew") == [("tls_handshake_error", None, "clock_skew", False)]


def test_inverse_phrase_claims_the_edge_in_graph_direction() -> None:
    assert hops("ClockSkew causes TLSHandshakeError.") == [("tls_handshake_error", "caused_by", "clock_skew", True)]
    assert hops("SyncNTP fixes clock drift.") == [("clock_skew", "fixed_by", "sync_ntp", True)]


def test_clauses_split_hops_and_chained_clauses() -> None:
    assert hops("TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP.") == [
        ("tls_handshake_error", "caused_by", "clock_skew", True),
        ("clock_skew", "fixed_by", "sync_ntp", True),
    ]
    # One sentence, two hops; the repeated mention of the same entity is not a hop.
    assert hops("TLSHandshakeError is caused by ClockSkew, and ClockSkew is fixed by SyncNTP") == [
        ("tls_handshake_error", "caused_by", "clock_skew", True),
        ("clock_skew", "fixed_by", "sync_ntp", True),
    ]
    # No hop across a sentence end, a semicolon or a new line.
    assert hops("TLSHandshakeError is bad. SyncNTP is good") == []
    assert hops("TLSHandshakeError; SyncNTP") == []
    assert hops("TLSHandshakeError\nSyncNTP") == []


def test_a_dot_inside_a_name_does_not_end_a_clause() -> None:
    kg = KnowledgeGraph.from_parts(
        [Entity("node", "node.js"), Entity("leak", "MemoryLeak")],
        [Relation("caused_by", "is caused by")],
        [Edge("leak", "caused_by", "node")],
    )
    r = read_trace(kg, EntityMatcher(kg), RelationMatcher(kg), "MemoryLeak is caused by node.js. Done.")
    assert [(h.head, h.tail, h.valid) for h in r.hops] == [("leak", "node", True)]


def test_ambiguous_names_prefer_the_reading_that_is_an_edge() -> None:
    kg = KnowledgeGraph.from_parts(
        [Entity("a", "Alpha"), Entity("b1", "Beta"), Entity("b2", "Bravo", aliases=("Beta",))],
        [Relation("r", "links to")],
        [Edge("a", "r", "b2")],
    )
    r = read_trace(kg, EntityMatcher(kg), RelationMatcher(kg), "Alpha links to Beta.")
    assert [(h.head, h.tail, h.valid) for h in r.hops] == [("a", "b2", True)]


def test_one_character_names_do_not_match_articles() -> None:
    kg = KnowledgeGraph.from_parts(
        [Entity("a", "a", aliases=("AlphaService",)), Entity("x", "x")],
        [Relation("r", "links to")],
        [Edge("a", "r", "x")],
    )
    m = EntityMatcher(kg)
    assert [x.entity for x in m.find("a service links to AlphaService")] == ["a"]  # via the alias only
    assert [x.entity for x in m.find("x marks it")] == ["x"]  # its only name, so it is kept
