"""Relation metadata: hobby defaults, symmetric relations stored both ways, sidecar files and flags,
every bad-sidecar message, and the packaged and vendored real graphs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.io import InputError
from kgreason.kg.graph import Edge, Entity, KGError, KnowledgeGraph, Relation
from kgreason.kg.kgjson import load_kg, save_kg
from kgreason.kg.relation_meta import (
    HOBBY_RELATIONS,
    RelationMeta,
    merge_relation_meta,
    read_relation_meta,
    relation_meta_from_flags,
)
from kgreason.kg.sources import import_kg, open_kg

HOBBY_KG = Path(__file__).parent / "data" / "hobby_kg.json"

# The hobby schema with related_to stored one way (A->B), except for one pair stored both ways.
ONE_WAY = {
    "version": "1.0",
    "domain": "software_troubleshooting",
    "entities": [
        {"id": "HighLatency", "label": "High Latency", "type": "symptom"},
        {"id": "PacketLoss", "label": "Packet Loss", "type": "symptom"},
        {"id": "Timeout", "label": "Timeout", "type": "symptom"},
        {"id": "RestartService", "label": "Restart Service", "type": "fix"},
        {"id": "Systemctl", "label": "Systemctl", "type": "tool"},
    ],
    "relations": [
        {"id": "fixed_by", "label": "fixed by"},
        {"id": "uses_tool", "label": "uses tool"},
        {"id": "related_to", "label": "related to"},
    ],
    "edges": [
        {"src": "HighLatency", "rel": "related_to", "dst": "PacketLoss"},
        {"src": "Timeout", "rel": "related_to", "dst": "HighLatency"},
        {"src": "HighLatency", "rel": "related_to", "dst": "Timeout"},
        {"src": "PacketLoss", "rel": "fixed_by", "dst": "RestartService"},
        {"src": "RestartService", "rel": "uses_tool", "dst": "Systemctl"},
    ],
}


def write(tmp_path: Path, name: str, content: str | object) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2), encoding="utf-8")
    return path


def one_way(tmp_path: Path, **changes: object) -> Path:
    return write(tmp_path, "kg.json", {**ONE_WAY, **changes})


# --- hobby defaults and symmetric closure --------------------------------------------------------
def test_symmetric_relation_gets_its_missing_reverse_edges(tmp_path: Path) -> None:
    kg = load_kg(one_way(tmp_path))
    assert kg.relations["related_to"] == Relation("related_to", "is related to", "is related to", True)
    # 3 related_to edges, one pair already two-way: only PacketLoss -> HighLatency is missing.
    assert len(kg.edges) == 6
    assert kg.has_edge("PacketLoss", "related_to", "HighLatency")
    assert kg.follow("PacketLoss", ["related_to", "related_to"]) == {"PacketLoss", "Timeout"}
    assert kg.warnings == [
        "symmetric relation 'related_to': added 1 reverse edge(s) so it reads the same both ways, "
        "e.g. PacketLoss -related_to-> HighLatency"
    ]
    # Following a symmetric relation is symmetric: every edge has its reverse.
    for e in kg.edges:
        if e.relation == "related_to":
            assert kg.has_edge(e.tail, "related_to", e.head)
    # One-way relations stay one-way.
    assert not kg.has_edge("RestartService", "fixed_by", "PacketLoss")


def test_hobby_kg_reads_naturally(tmp_path: Path) -> None:
    kg = load_kg(HOBBY_KG)
    assert (len(kg.entities), len(kg.relations)) == (212, 6)
    assert len(kg.edges) == 629 + 38
    assert kg.warnings[0].startswith("symmetric relation 'related_to': added 38 reverse edge(s)")
    assert kg.phrase("uses_tool") == "uses" and kg.phrase("related_to") == "is related to"
    related = [e for e in kg.edges if e.relation == "related_to"]
    assert len(related) == 78 and all(kg.has_edge(e.tail, e.relation, e.head) for e in related)
    # Saved and reloaded, the graph is already closed: nothing more to add, the flag kept.
    save_kg(kg, tmp_path / "kg.json")
    again = load_kg(tmp_path / "kg.json")
    assert again.to_dict() == kg.to_dict() and again.warnings == []
    assert json.loads((tmp_path / "kg.json").read_text())["relations"][-1]["symmetric"] is True


def test_hobby_defaults_match_the_builtin_graph() -> None:
    from kgreason.kg.builtin import RELATIONS

    for rel in RELATIONS:
        default = HOBBY_RELATIONS[rel.id]
        assert (default.phrase, default.inverse_phrase) == (rel.phrase, rel.inverse_phrase), rel.id
    assert [r for r, m in HOBBY_RELATIONS.items() if m.symmetric] == ["related_to"]


def test_hobby_defaults_apply_to_implied_relations_but_not_to_own_phrases(tmp_path: Path) -> None:
    implied = load_kg(_without_relations(tmp_path))
    assert implied.phrase("uses_tool") == "uses" and implied.relations["related_to"].symmetric
    # A label that says something other than the id wins over the default.
    custom = load_kg(
        one_way(tmp_path, relations=[{"id": "uses_tool", "label": "runs"}, "fixed_by", "related_to"])
    )
    assert custom.phrase("uses_tool") == "runs"
    # kg.json relations with their own phrase are left as they are: no symmetric flag, no closure.
    own = [
        {"id": "fixed_by", "phrase": "is fixed by"},
        {"id": "uses_tool", "phrase": "uses tool"},
        {"id": "related_to", "phrase": "is related to"},
    ]
    kg = load_kg(one_way(tmp_path, relations=own))
    assert kg.phrase("uses_tool") == "uses tool" and not kg.relations["related_to"].symmetric
    assert len(kg.edges) == 5 and kg.warnings == []


def _without_relations(tmp_path: Path) -> Path:
    data = dict(ONE_WAY)
    del data["relations"]
    return write(tmp_path, "implied.json", data)


def test_kg_json_symmetric_flag_is_read_and_checked(tmp_path: Path) -> None:
    rels = [
        {"id": "fixed_by", "phrase": "is fixed by"},
        {"id": "uses_tool", "phrase": "uses"},
        {"id": "related_to", "phrase": "is related to", "symmetric": True},
    ]
    kg = load_kg(one_way(tmp_path, relations=rels))
    assert kg.relations["related_to"].inverse_phrase == "is related to" and len(kg.edges) == 6
    rels[2]["symmetric"] = "yes"
    with pytest.raises(KGError, match=r"relations\[2\]: 'symmetric' must be true or false, got 'yes'"):
        load_kg(one_way(tmp_path, relations=rels))
    rels[2].update(symmetric=True, inverse_phrase="relates from")
    with pytest.raises(KGError, match=r"relations\[2\]: a symmetric relation reads the same both ways"):
        load_kg(one_way(tmp_path, relations=rels))


def test_from_parts_closes_symmetric_relations() -> None:
    kg = KnowledgeGraph.from_parts(
        [Entity("A", "A"), Entity("B", "B")],
        [Relation("near", "is near", "is near", True)],
        [Edge("A", "near", "B")],
    )
    assert kg.has_edge("B", "near", "A") and "added 1 reverse edge(s)" in kg.warnings[0]


# --- sidecars: every format says the same thing ----------------------------------------------------
SIDECARS = {
    "relations.yaml": """\
# how the hobby graph's relations read
uses_tool:
  phrase: makes use of
  inverse_phrase: is used in
related_to:
  symmetric: false
fixed_by: is repaired by
""",
    "relations.yml": """\
relations:
  - relation: uses_tool
    phrase: makes use of
    inverse_phrase: is used in
  - id: related_to
    symmetric: no
  - relation: fixed_by
    phrase: is repaired by
""",
    "relations.json": """\
{
  "uses_tool": {"phrase": "makes use of", "inverse_phrase": "is used in"},
  "related_to": {"symmetric": false},
  "fixed_by": "is repaired by"
}
""",
    "relations.tsv": """\
relation\tphrase\tinverse_phrase\tsymmetric
uses_tool\tmakes use of\tis used in
related_to\t\t\tfalse

fixed_by\tis repaired by
""",
    "relations.csv": """\
uses_tool,makes use of,is used in,
related_to,,,no
fixed_by,is repaired by
""",
}


@pytest.mark.parametrize("name", sorted(SIDECARS))
def test_sidecar_overrides_the_defaults(tmp_path: Path, name: str) -> None:
    meta = read_relation_meta(write(tmp_path, name, SIDECARS[name]))
    assert set(meta) == {"uses_tool", "related_to", "fixed_by"}
    kg = import_kg(one_way(tmp_path), relation_meta=meta)
    assert kg.relations["uses_tool"] == Relation("uses_tool", "makes use of", "is used in")
    assert kg.phrase("fixed_by") == "is repaired by"
    assert not kg.relations["related_to"].symmetric  # turned off: stored as the file has it
    assert len(kg.edges) == 5 and kg.warnings == []


def test_sidecar_symmetric_on_triples(tmp_path: Path) -> None:
    triples = write(
        tmp_path, "t.tsv", "a\tsibling_of\tb\nb\tsibling_of\tc\nc\tsibling_of\tb\na\tparent_of\td\n"
    )
    meta = read_relation_meta(
        write(tmp_path, "r.yaml", "sibling_of: {phrase: is a sibling of, symmetric: true}\n")
    )
    kg = import_kg(triples, relation_meta=meta)
    assert kg.relations["sibling_of"] == Relation("sibling_of", "is a sibling of", "is a sibling of", True)
    assert kg.has_edge("b", "sibling_of", "a") and len(kg.edges) == 5
    assert kg.warnings == [
        "symmetric relation 'sibling_of': added 1 reverse edge(s) so it reads the same both ways, "
        "e.g. b -sibling_of-> a"
    ]


def test_flags_override_the_sidecar() -> None:
    sidecar = {"uses_tool": RelationMeta("makes use of", "is used in", None, "r.yaml:2")}
    flags = relation_meta_from_flags(["uses_tool=runs"], [], ["uses_tool"], ["related_to"])
    merged = merge_relation_meta(sidecar, flags)
    assert merged["uses_tool"] == RelationMeta("runs", "is used in", True, "--phrase")
    assert merged["related_to"] == RelationMeta(symmetric=False, origin="--asymmetric")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((["uses_tool"], [], [], []), "--phrase: expected RELATION=PHRASE"),
        (([], ["uses_tool= "], [], []), "--inverse-phrase: expected RELATION=PHRASE"),
        (([], [], ["a=b"], []), "--symmetric: expected a relation id"),
        (
            ([], [], ["related_to"], ["related_to"]),
            "--symmetric and --asymmetric both name relation 'related_to'",
        ),
    ],
)
def test_bad_flags(args: tuple, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        relation_meta_from_flags(*args)


# --- bad sidecars: each names file:line and what was expected -------------------------------------
@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "r.yaml",
            "uses_tool:\n  phrase: uses\nrelated_to:\n  symmetric: maybe\n",
            ":4: relation 'related_to': 'symmetric' must be true or false, got 'maybe'",
        ),
        (
            "r.yaml",
            "related_to:\n  phrase: is related to\n  symetric: true\n",
            ":3: relation 'related_to': unknown field 'symetric'; expected 'phrase'",
        ),
        ("r.yaml", "uses_tool:\n  phrase: [uses\n", ":3: malformed YAML"),
        (
            "r.yaml",
            "uses_tool:\n  phrase: ''\n",
            ":2: relation 'uses_tool': 'phrase' must be a non-empty string",
        ),
        ("r.yaml", "uses_tool: {}\n", ":1: relation 'uses_tool': nothing to set"),
        ("r.yaml", "- uses_tool\n", ":1: relations[0]: expected an object with 'relation' and 'phrase'"),
        ("r.yaml", "", ":1: expected a mapping of relation id"),
        (
            "r.yaml",
            "uses_tool: uses\nuses_tool: runs\n",
            ":2: 'uses_tool' is given twice (first at line 1)",
        ),
        (
            "r.json",
            '{\n  "uses_tool": {\n    "phrase": 7\n  }\n}\n',
            ":3: relation 'uses_tool': 'phrase' must be a non-empty string, got 7",
        ),
        (
            "r.json",
            '[\n  {"relation": "uses_tool", "phrase": "uses"},\n  {"phrase": "x"}\n]\n',
            ":3: relations[1]: expected exactly one of 'relation' or 'id'",
        ),
        ("r.json", '{\n  "uses_tool": {"phrase": "uses",}\n}\n', ":2:34: malformed JSON"),
        ("r.json", '{"uses_tool": 3}\n', ":1: relation 'uses_tool': expected a phrase or an object"),
        (
            "r.json",
            '{\n  "fixed_by": "is fixed by",\n  "fixed_by": "is repaired by"\n}\n',
            ":3: 'fixed_by' is given twice (first at line 2)",
        ),
        ("r.tsv", "uses_tool\tuses\tis used by\ttrue\textra\n", ":1: expected at most 4 TSV columns"),
        (
            "r.tsv",
            "# comment\nrelated_to\t\t\tmaybe\n",
            ":2: relation 'related_to': symmetric must be true or false (or empty), got 'maybe'",
        ),
        (
            "r.tsv",
            "uses_tool\tuses\nrelated_to\t\t\ttrue\nuses_tool\truns\n",
            ":3: relation 'uses_tool' is given twice (first at line 1)",
        ),
        ("r.tsv", "relation\tphrase\tsymetric\n", ":1: header column 'symetric' is not one of"),
        ("r.tsv", "related_to\n", ":1: relation 'related_to': nothing to set"),
        ("r.csv", 'uses_tool,"uses\n', ":1: malformed CSV row"),
    ],
)
def test_bad_sidecar_names_file_and_line(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as info:
        read_relation_meta(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_sidecar_that_does_not_fit_the_graph(tmp_path: Path) -> None:
    kg_path = one_way(tmp_path)
    typo = write(tmp_path, "r.yaml", "uses_tool: uses\nrelatd_to:\n  symmetric: true\n")
    with pytest.raises(
        InputError,
        match=r"r\.yaml:2: relation 'relatd_to' is not in .*kg\.json; its relations are: fixed_by, related_to, uses_tool",
    ):
        import_kg(kg_path, relation_meta=read_relation_meta(typo))
    clash = write(tmp_path, "c.tsv", "related_to\tis related to\trelates from\ttrue\n")
    with pytest.raises(
        InputError, match=r"c\.tsv:1: relation 'related_to' is symmetric, so it reads the same both ways"
    ):
        import_kg(kg_path, relation_meta=read_relation_meta(clash))


def test_sidecar_file_problems(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="relations file not found"):
        read_relation_meta(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match=r"unknown relations file type '\.txt'; expected \.yaml"):
        read_relation_meta(write(tmp_path, "r.txt", "uses_tool uses"))


# --- the packaged untyped benchmark graph ----------------------------------------------------------
def test_builtin_umls() -> None:
    kg = import_kg("builtin:umls")
    assert kg.name == "umls"
    assert (len(kg.entities), len(kg.relations), len(kg.edges)) == (135, 46, 7299)
    assert all(e.type is None for e in kg.entities.values())  # untyped
    assert kg.warnings == []  # already closed: the symmetric relations are stored both ways
    symmetric = sorted(r.id for r in kg.relations.values() if r.symmetric)
    assert symmetric == [
        "adjacent_to", "associated_with", "co-occurs_with", "conceptually_related_to", "connected_to", "interacts_with",
    ]  # fmt: skip
    assert kg.label("acquired_abnormality") == "acquired abnormality"
    assert open_kg("builtin:umls", json_only=True).to_dict() == kg.to_dict()
    with pytest.raises(InputError, match=r"builtin:nope: no built-in graph of that name; built-in graphs: "
                       r"builtin:devops\[:SIZE\], builtin:umls"):
        open_kg("builtin:nope")
