"""The built-in DevOps graph: size and schema minimums, realism, determinism, chain structure."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import pytest

from kgreason.kg.builtin import RELATIONS, TYPES, build_devops_kg
from kgreason.kg.graph import KGError, KnowledgeGraph
from kgreason.kg.kgjson import save_kg
from kgreason.kg.stats import compute_stats

# The typed schema every edge must respect: relation -> allowed (head type, tail type) pairs.
SCHEMA = {
    "caused_by": {("symptom", "cause")},
    "leads_to": {("cause", "symptom")},
    "fixed_by": {("cause", "fix")},
    "diagnosed_by": {("symptom", "diagnostic")},
    "uses_tool": {("diagnostic", "tool"), ("fix", "tool")},
    "related_to": {(t, t) for t in TYPES},
}


@pytest.fixture(scope="module")
def small() -> KnowledgeGraph:
    return build_devops_kg(seed=0)


def test_minimum_size_relations_and_types(small: KnowledgeGraph) -> None:
    assert len(small.entities) >= 200
    assert len(small.edges) >= 600
    used_relations = Counter(e.relation for e in small.edges)
    assert set(used_relations) == {
        "caused_by",
        "leads_to",
        "fixed_by",
        "diagnosed_by",
        "uses_tool",
        "related_to",
    }
    assert min(used_relations.values()) >= 50
    types = Counter(e.type for e in small.entities.values())
    assert set(types) == {"symptom", "cause", "fix", "diagnostic", "tool"}
    assert min(types.values()) >= 30
    assert small.warnings == []


def test_relation_phrases(small: KnowledgeGraph) -> None:
    phrases = {r.id: (r.phrase, r.inverse_phrase) for r in small.relations.values()}
    assert phrases["caused_by"] == ("is caused by", "causes")
    assert phrases["leads_to"][0] == "leads to"
    assert phrases["fixed_by"] == ("is fixed by", "fixes")
    assert phrases["diagnosed_by"] == ("is diagnosed by", "diagnoses")
    assert phrases["uses_tool"] == ("uses", "is used by")
    assert phrases["related_to"][0] == "is related to"
    assert [r.id for r in RELATIONS] == list(small.relations)


def test_every_edge_follows_the_typed_schema(small: KnowledgeGraph) -> None:
    for e in small.edges:
        pair = (small.entities[e.head].type, small.entities[e.tail].type)
        assert pair in SCHEMA[e.relation], e


def test_realistic_curated_knowledge(small: KnowledgeGraph) -> None:
    for name in (
        "TLSHandshakeError",
        "ClockSkew",
        "SyncNTP",
        "OOMKilled",
        "MemoryLeak",
        "CheckDmesg",
        "kubectl",
    ):
        assert name in small.entities
    assert small.has_edge("ClockSkew", "fixed_by", "SyncNTP")
    assert small.has_edge("SyncNTP", "uses_tool", "chronyc")
    assert small.has_edge("OOMKilled", "diagnosed_by", "CheckDmesg")
    assert small.entities["TLSHandshakeError"].aliases == ("TLS handshake error",)
    assert small.entities["TLSHandshakeError"].label == "TLSHandshakeError"
    assert small.entities["SELinuxPolicyDenial"].aliases == ("SELinux policy denial",)
    # No placeholder names such as Entity_17 or Node42.
    assert not [e for e in small.entities if re.fullmatch(r"(Entity|Node|E)_?\d+", e)]


def test_names_are_unambiguous(small: KnowledgeGraph) -> None:
    owner: dict[str, str] = {}
    for e in small.entities.values():
        for name in e.names():
            key = name.lower()
            assert owner.setdefault(key, e.id) == e.id, f"{name!r} names both {owner[key]} and {e.id}"


def test_connected_and_no_dead_symptoms_or_causes(small: KnowledgeGraph) -> None:
    stats = compute_stats(small)
    assert stats["components"] == 1
    for e in small.entities.values():
        if e.type in ("symptom", "cause"):
            assert small.successors(e.id, "caused_by" if e.type == "symptom" else "leads_to"), e.id
            assert small.predecessors(e.id), e.id


def test_branching_out_degrees(small: KnowledgeGraph) -> None:
    for rel in ("caused_by", "leads_to"):
        degrees = [len(small.successors(h, rel)) for h in small.entities if small.successors(h, rel)]
        assert max(degrees) >= 4 and min(degrees) >= 1
        assert sum(1 for d in degrees if d >= 2) > len(degrees) / 2


def test_long_chains_with_unique_and_branching_endpoints(small: KnowledgeGraph) -> None:
    """Random 4-5 hop walks: many have a unique endpoint, many branch, and the reached set leaves
    most same-type entities unreached (room for distractors)."""
    rng = random.Random(7)
    starts = sorted(small.entities)
    unique = branching = roomy = walks = 0
    while walks < 400:
        start = node = rng.choice(starts)
        chain: list[str] = []
        for _ in range(rng.choice([4, 5])):
            rels = small.out_relations(node)
            if not rels:
                break
            rel = rng.choice(sorted(rels))
            node = rng.choice(rels[rel])
            chain.append(rel)
        if len(chain) < 4:
            continue
        walks += 1
        reached = small.follow(start, chain)
        assert node in reached
        unique += len(reached) == 1
        branching += len(reached) >= 3
        same_type = [e for e in small.entities.values() if e.type == small.entities[node].type]
        roomy += sum(e.id in reached for e in same_type) <= len(same_type) // 2
    assert unique >= 80
    assert branching >= 80
    assert roomy >= 380


def test_deterministic_from_seed(tmp_path: Path) -> None:
    save_kg(build_devops_kg(seed=5), tmp_path / "a.json")
    save_kg(build_devops_kg(seed=5), tmp_path / "b.json")
    save_kg(build_devops_kg(seed=6), tmp_path / "c.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.json").read_bytes() != (tmp_path / "c.json").read_bytes()


def test_medium_size_and_service_prefixes() -> None:
    kg = build_devops_kg(seed=1, size="medium")
    assert len(kg.edges) >= 20_000
    assert len(kg.entities) >= 5_000
    assert "PaymentsAPIClockSkew" in kg.entities
    assert kg.entities["PaymentsAPIClockSkew"].aliases == ("payments API clock skew",)
    assert kg.has_edge("PaymentsAPIClockSkew", "fixed_by", "PaymentsAPISyncNTP")
    assert compute_stats(kg)["components"] == 1
    names = [n.lower() for e in kg.entities.values() for n in {e.id, *e.aliases}]
    assert len(names) == len(set(names))
    for e in kg.edges[::50]:
        assert (kg.entities[e.head].type, kg.entities[e.tail].type) in SCHEMA[e.relation]


def test_integer_size_is_an_edge_target() -> None:
    kg = build_devops_kg(seed=0, size=3000)
    assert 3000 <= len(kg.edges) < 3000 + 2000
    assert build_devops_kg(seed=0, size="3000").to_dict() == kg.to_dict()


@pytest.mark.parametrize("size", ["huge", 0, -5])
def test_bad_size(size: object) -> None:
    with pytest.raises(KGError, match="size"):
        build_devops_kg(size=size)  # type: ignore[arg-type]
