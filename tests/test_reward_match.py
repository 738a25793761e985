"""Entity and relation matching, and reading claimed hops from a trace."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from types import FrameType

import pytest

import kgreason.reward.match as match_module
from conftest_reward import small_kg
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.reward.commands import NaiveEntityMatcher
from kgreason.reward.match import (
    EntityMatcher,
    RelationMatcher,
    _greedy_longest,
    blank_step_labels,
    normalize,
    read_trace,
    select_longest,
)

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


# --- only affirmative declarative clauses claim hops ---------------------------------------------
GOLD_HOP = ("tls_handshake_error", "caused_by", "clock_skew", True)


@pytest.mark.parametrize(
    "sentence",
    [
        "TLSHandshakeError is not caused by ClockSkew.",
        "TLSHandshakeError isn't caused by ClockSkew.",
        "TLSHandshakeError is never caused by ClockSkew.",
        "It is false that TLSHandshakeError is caused by ClockSkew.",
        "TLSHandshakeError might be caused by ClockSkew?",
        "TLSHandshakeError might be caused by ClockSkew.",
        "TLSHandshakeError may be caused by ClockSkew.",
        "TLSHandshakeError is probably caused by ClockSkew.",
        "TLSHandshakeError is probably not caused by ClockSkew",
        "Perhaps TLSHandshakeError is caused by ClockSkew.",
        "I think TLSHandshakeError is caused by ClockSkew.",
        "If TLSHandshakeError is caused by ClockSkew, fine.",
        "TLSHandshakeError is caused by ClockSkew or ExpiredCertificate.",
        "Is TLSHandshakeError caused by ClockSkew?",
        "Does ClockSkew cause TLSHandshakeError?",
        "Does ClockSkew cause TLSHandshakeError",  # a question word first is enough
        "TLSHandshakeError is caused by ClockSkew?",
        "TLSHandshakeError is caused by ClockSkew, isn't it?",
    ],
)
def test_negated_hedged_and_questioned_clauses_claim_nothing(sentence: str) -> None:
    reading = read_trace(KG, ENT, REL, sentence)
    assert reading.hops == []
    assert reading.non_claims == 1
    # The entities are still found (naming them is coverage, worth little), only no hop is claimed.
    assert {m.entity for m in reading.mentions} >= {"tls_handshake_error", "clock_skew"}


def test_a_relation_phrase_no_hop_is_read_from_is_an_unread_claim() -> None:
    def unread(trace: str) -> int:
        return read_trace(KG, ENT, REL, trace).unread_claims

    assert unread("TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP.") == 0
    assert unread("TLSHandshakeError is caused by ClockSkew is fixed by SyncNTP.") == 0  # a run-on: two hops
    assert unread("ClockSkew is fixed by Gremlins.") == 1
    assert unread("Gremlins causes everything; SyncNTP fixes stuff.") == 2
    assert unread("ClockSkew is not fixed by Gremlins. Maybe Gremlins is fixed by SyncNTP.") == 0  # claim nothing
    # one entity named twice with a phrase between is a claimed self-loop (here not an edge), not skipped
    assert hops("ClockSkew is related to ClockSkew.") == [("clock_skew", "related_to", "clock_skew", False)]
    assert hops("ClockSkew, that is ClockSkew, is fixed by SyncNTP.") == [("clock_skew", "fixed_by", "sync_ntp", True)]


def test_a_relation_phrase_inside_a_name_is_no_unread_claim() -> None:
    kg = KnowledgeGraph.from_parts(
        [Entity("salvador", "Salvador (the city is in Bahia)", "city"), Entity("brazil", "Brazil", "country")],
        [Relation("located_in", "is in", "contains")], [Edge("salvador", "located_in", "brazil")])
    reading = read_trace(kg, EntityMatcher(kg), RelationMatcher(kg), "1. Brazil contains Salvador (the city is in Bahia).")
    assert [(h.head, h.relation, h.tail, h.valid) for h in reading.hops] == [("salvador", "located_in", "brazil", True)]
    assert reading.unread_claims == 0


def test_a_silent_clause_does_not_silence_its_neighbours() -> None:
    assert hops("TLSHandshakeError is not caused by ExpiredCertificate. TLSHandshakeError is caused by "
                "ClockSkew; ClockSkew might be fixed by RestartPod? ClockSkew is fixed by SyncNTP.") == [
        GOLD_HOP, ("clock_skew", "fixed_by", "sync_ntp", True)]


def test_affirmative_clauses_still_claim() -> None:
    assert hops("TLSHandshakeError is caused by ClockSkew!") == [GOLD_HOP]
    assert hops("So TLSHandshakeError is caused by ClockSkew.") == [GOLD_HOP]
    assert hops("TLSHandshakeError can be caused by ClockSkew.") == [GOLD_HOP]  # "can be": not a hedge


def test_cue_words_inside_names_and_relation_phrases_are_not_cues() -> None:
    kg = KnowledgeGraph.from_parts(
        [Entity("nrth", "No Route To Host"), Entity("fw", "FirewallRule"), Entity("v1", "OldDriver"),
         Entity("k", "Kernel6")],
        [Relation("caused_by", "is caused by"), Relation("incompatible", "is not compatible with"),
         Relation("may_break", "may break")],
        [Edge("nrth", "caused_by", "fw"), Edge("v1", "incompatible", "k"), Edge("k", "may_break", "v1")],
    )
    ent, rel = EntityMatcher(kg), RelationMatcher(kg)

    def claimed(trace: str) -> list[tuple[str, str | None, str, bool]]:
        return [(h.head, h.relation, h.tail, h.valid) for h in read_trace(kg, ent, rel, trace).hops]

    assert claimed("No Route To Host is caused by FirewallRule.") == [("nrth", "caused_by", "fw", True)]
    assert claimed("OldDriver is not compatible with Kernel6.") == [("v1", "incompatible", "k", True)]
    assert claimed("Kernel6 may break OldDriver.") == [("k", "may_break", "v1", True)]
    # A cue outside the phrase still silences the clause.
    assert claimed("OldDriver is probably not compatible with Kernel6.") == []


# --- step numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "trace",
    [
        "1. TLSHandshakeError is caused by ClockSkew. 2. ClockSkew is fixed by SyncNTP.",
        "1) TLSHandshakeError is caused by ClockSkew 2) ClockSkew is fixed by SyncNTP",
        "(1) TLSHandshakeError is caused by ClockSkew. (2) ClockSkew is fixed by SyncNTP.",
        "Step 1: TLSHandshakeError is caused by ClockSkew. Step 2: ClockSkew is fixed by SyncNTP.",
        "Hop 1: TLSHandshakeError is caused by ClockSkew\nHop 2: ClockSkew is fixed by SyncNTP",
        "1.TLSHandshakeError is caused by ClockSkew. 2.ClockSkew is fixed by SyncNTP.",
        "Step 1 - TLSHandshakeError is caused by ClockSkew; step 2 - ClockSkew is fixed by SyncNTP",
    ],
)
def test_step_numbers_never_break_claim_reading(trace: str) -> None:
    assert hops(trace) == [GOLD_HOP, ("clock_skew", "fixed_by", "sync_ntp", True)]


def test_step_labels_are_not_entity_names_and_do_not_split_clauses() -> None:
    kg = KnowledgeGraph.from_parts(
        [Entity("heap", "HeapSizeTooSmall"), Entity("tune", "TuneJVMHeap"), Entity("jcmd", "jcmd"),
         Entity("jstat", "jstat"), Entity("two", "2", aliases=("Step 2",)), Entity("s1", "1")],
        [Relation("fixed_by", "is fixed by"), Relation("uses_tool", "uses"), Relation("related_to", "is related to")],
        [Edge("heap", "fixed_by", "tune"), Edge("tune", "uses_tool", "jcmd"), Edge("jcmd", "related_to", "jstat")],
    )
    trace = ("1. HeapSizeTooSmall is fixed by TuneJVMHeap. 2. TuneJVMHeap uses jcmd. Step 2: jcmd is related "
             "to jstat.")
    r = read_trace(kg, EntityMatcher(kg), RelationMatcher(kg), trace)
    assert [m.entity for m in r.mentions] == ["heap", "tune", "tune", "jcmd", "jcmd", "jstat"]
    assert [(h.head, h.tail, h.valid) for h in r.hops] == [("heap", "tune", True), ("tune", "jcmd", True),
                                                          ("jcmd", "jstat", True)]
    assert r.text == normalize(trace)  # the reading's text keeps the labels (the paper preset counts tokens)
    # A number inside a sentence is no step label: its full stop still ends the clause.
    assert blank_step_labels("x uses version 2. y") == "x uses version 2. y"
    assert blank_step_labels("1. x. 2. y") == ";  x. ;  y"


# --- cost grows linearly with the trace ------------------------------------------------------------
def _traced_lines(trace: str) -> int:
    """Python lines executed inside reward.match while reading `trace` (a count, not a timing)."""
    count = 0
    target = match_module.__file__

    def tracer(frame: FrameType, event: str, arg: object) -> Callable | None:
        nonlocal count
        if frame.f_code.co_filename != target:
            return None
        count += 1
        return tracer

    sys.settrace(tracer)
    try:
        read_trace(KG, ENT, REL, trace)
    finally:
        sys.settrace(None)
    return count


def test_reading_cost_is_linear_in_trace_length() -> None:
    """Doubling a long trace (many clauses, hops, phrases, cues, step labels) about doubles the
    work. The old per-hop scan over every relation phrase made it grow with the square (ratio ~3.3
    at these sizes, ~4 in the limit), which put a 400k-character trace at seconds."""
    unit = ("TLSHandshakeError is caused by ClockSkew, and ClockSkew is fixed by SyncNTP; It is false that "
            "SyncNTP fixes OOMKilled. 2. Disk full error is related to Disk full error. Does OOM cause ZOOM? ")
    small, large = _traced_lines(unit * 100), _traced_lines(unit * 200)
    assert large / small < 2.3


def test_select_longest_matches_one_greedy_pass() -> None:
    """Clustering overlapping spans gives exactly the old single greedy pass (longest, then leftmost)."""
    rng = random.Random(11)
    for _ in range(500):
        spans = []
        for _ in range(rng.randint(0, 30)):
            start = rng.randint(0, 60)
            spans.append((start, start + rng.randint(1, 12), len(spans)))
        spans = list({(s, e): (s, e, v) for s, e, v in spans}.values())  # one value per span, as the automaton gives
        assert select_longest(spans) == _greedy_longest(spans)
