"""Reading and writing graphs: kg.json, hobby JSON, TSV/CSV triples, and every bad-input message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.io import InputError
from kgreason.kg.graph import Edge, Entity, KGError, KnowledgeGraph, Relation
from kgreason.kg.kgjson import load_kg, save_kg
from kgreason.kg.phrases import derive_phrase, humanize, split_identifier
from kgreason.kg.sources import import_kg

# A file in the hobby project's schema, shaped as it writes them: "version" and "domain" instead
# of "name", spaced labels, relation labels that are bare participles, no phrases or aliases.
HOBBY = {
    "version": "1.0",
    "domain": "software_troubleshooting",
    "entities": [
        {"id": "TLSHandshakeError", "label": "TLS Handshake Error", "type": "symptom"},
        {"id": "ClockSkew", "label": "Clock Skew", "type": "cause"},
        {"id": "SyncNTP", "label": "Sync NTP", "type": "fix"},
        {"id": "ChronyTool", "label": "Chrony Tool", "type": "tool"},
        {"id": "CheckTimeSync", "label": "Check Time Sync", "type": "diagnostic"},
    ],
    "relations": [
        {"id": "caused_by", "label": "caused by"},
        {"id": "fixed_by", "label": "fixed by"},
        {"id": "uses_tool", "label": "uses tool"},
        {"id": "diagnosed_by", "label": "diagnosed by"},
        {"id": "leads_to", "label": "leads to"},
        {"id": "related_to", "label": "related to"},
    ],
    "edges": [
        {"src": "TLSHandshakeError", "rel": "caused_by", "dst": "ClockSkew"},
        {"src": "ClockSkew", "rel": "fixed_by", "dst": "SyncNTP"},
        {"src": "SyncNTP", "rel": "uses_tool", "dst": "ChronyTool"},
    ],
}


def write_json(tmp_path: Path, obj: object, name: str = "kg.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    return path


def write_text(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def hobby_with(**changes: object) -> dict:
    data = json.loads(json.dumps(HOBBY))
    data.update(changes)
    return data


# --- hobby JSON and kg.json ------------------------------------------------------------------------
def test_hobby_json_loads_unchanged(tmp_path: Path) -> None:
    kg = load_kg(write_json(tmp_path, HOBBY))
    assert kg.name == "software_troubleshooting"
    assert list(kg.entities) == ["TLSHandshakeError", "ClockSkew", "SyncNTP", "ChronyTool", "CheckTimeSync"]
    assert kg.entities["ClockSkew"].type == "cause"
    assert kg.label("TLSHandshakeError") == "TLS Handshake Error"
    phrases = {r: kg.phrase(r) for r in kg.relations}
    assert phrases == {
        "caused_by": "is caused by",  # a bare participle label gets its "is"
        "fixed_by": "is fixed by",
        "uses_tool": "uses",  # the hobby default, not the label's "uses tool"
        "diagnosed_by": "is diagnosed by",
        "leads_to": "leads to",
        "related_to": "is related to",
    }
    assert kg.relations["uses_tool"].inverse_phrase == "is used by"
    assert kg.relations["related_to"].symmetric and not kg.relations["caused_by"].symmetric
    assert kg.follow("TLSHandshakeError", ["caused_by", "fixed_by", "uses_tool"]) == {"ChronyTool"}
    assert kg.warnings == []


def test_save_then_load_is_identical_and_atomic(tmp_path: Path) -> None:
    kg = load_kg(write_json(tmp_path, HOBBY))
    out = tmp_path / "out" / "kg.json"
    save_kg(kg, out)
    again = load_kg(out)
    assert again.to_dict() == kg.to_dict()
    save_kg(again, tmp_path / "out" / "kg2.json")
    assert out.read_bytes() == (tmp_path / "out" / "kg2.json").read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["kg.json", "kg2.json"]  # no temp files left
    assert json.loads(out.read_text()) == kg.to_dict()  # the file is exactly the kg.json schema


def test_kg_json_keeps_phrases_aliases_and_inverse(tmp_path: Path) -> None:
    kg = KnowledgeGraph.from_parts(
        [Entity("A", "Alpha", "t", ("the alpha",)), Entity("B", "B")],
        [Relation("r", "points at", "is pointed at by")],
        [Edge("A", "r", "B")],
        name="mini",
    )
    save_kg(kg, tmp_path / "kg.json")
    again = load_kg(tmp_path / "kg.json")
    assert again.name == "mini"
    assert again.entities["A"] == Entity("A", "Alpha", "t", ("the alpha",))
    assert again.relations["r"] == Relation("r", "points at", "is pointed at by")


def test_relations_may_be_implied_by_edges(tmp_path: Path) -> None:
    data = hobby_with()
    del data["relations"]
    kg = load_kg(write_json(tmp_path, data))
    assert kg.phrase("caused_by") == "is caused by"


def test_edges_as_lists_and_head_relation_tail_keys(tmp_path: Path) -> None:
    data = hobby_with(
        edges=[
            ["TLSHandshakeError", "caused_by", "ClockSkew"],
            {"head": "ClockSkew", "relation": "fixed_by", "tail": "SyncNTP"},
        ]
    )
    kg = load_kg(write_json(tmp_path, data))
    assert kg.has_edge("TLSHandshakeError", "caused_by", "ClockSkew")
    assert kg.has_edge("ClockSkew", "fixed_by", "SyncNTP")


# --- bad JSON input: each names the file, the item and what was expected ----------------------
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            hobby_with(edges=[*HOBBY["edges"], {"src": "ClockSkew", "rel": "fixed_by", "dst": "RestartNTP"}]),
            ["edges[3]", "dangling tail", "'RestartNTP'"],
        ),
        (
            hobby_with(edges=[{"src": "Nowhere", "rel": "caused_by", "dst": "ClockSkew"}]),
            ["edges[0]", "dangling head", "'Nowhere'"],
        ),
        (
            hobby_with(entities=[*HOBBY["entities"], {"id": "ClockSkew", "label": "Clock skew again"}]),
            ["entities[5]", "duplicate entity id 'ClockSkew'", "entities[1]"],
        ),
        (
            hobby_with(relations=[*HOBBY["relations"], {"id": "caused_by", "label": "x"}]),
            ["relations[6]", "duplicate relation id 'caused_by'"],
        ),
        (
            hobby_with(edges=[*HOBBY["edges"], {"src": "ClockSkew", "rel": "causes", "dst": "SyncNTP"}]),
            ["edges[3]", "unknown relation 'causes'", "caused_by"],
        ),
        (
            hobby_with(relations=[{"id": "caused_by", "label": "--"}]),
            ["relations[0]", "no words", "'phrase'"],
        ),
        (hobby_with(entities=[]), ["empty graph", "no entities"]),
        (hobby_with(edges=[]), ["empty graph", "no edges"]),
        (
            hobby_with(edges=[{"src": "ClockSkew", "rel": "fixed_by", "dst": "ClockSkew"}]),
            ["empty graph", "self-loops or duplicates"],
        ),
        (
            hobby_with(edges=[{"src": "ClockSkew", "rel": "fixed_by"}]),
            ["edges[0]", "'dst' is missing", "'src'"],
        ),
        (hobby_with(edges=["ClockSkew fixed_by SyncNTP"]), ["edges[0]", "expected an object with 'src'"]),
        (hobby_with(entities=[{"label": "no id"}]), ["entities[0]", "'id' is missing"]),
        (hobby_with(entities=[{"id": "A", "type": 3}]), ["entities[0]", "'type' must be a string"]),
        (hobby_with(entities={"A": {}}), ["'entities' must be a list"]),
        ({"entities": []}, ["missing the 'edges' list"]),
        ([1, 2, 3], ["expected a JSON object"]),
    ],
)
def test_bad_json_graph_messages(tmp_path: Path, data: object, expected: list[str]) -> None:
    path = write_json(tmp_path, data, "bad.json")
    with pytest.raises(KGError) as info:
        load_kg(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_malformed_json_names_line(tmp_path: Path) -> None:
    path = write_text(tmp_path, '{\n  "entities": [\n    {"id": "A",}\n  ]\n}\n', "broken.json")
    with pytest.raises(InputError, match=r"broken\.json:3:\d+: malformed JSON"):
        load_kg(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        import_kg(tmp_path / "nope.tsv")


def test_self_loops_and_duplicates_dropped_with_warnings_json(tmp_path: Path) -> None:
    data = hobby_with(
        edges=[
            *HOBBY["edges"],
            {"src": "ClockSkew", "rel": "fixed_by", "dst": "SyncNTP"},
            {"src": "SyncNTP", "rel": "uses_tool", "dst": "SyncNTP"},
        ]
    )
    kg = load_kg(write_json(tmp_path, data))
    assert len(kg.edges) == 3
    joined = "\n".join(kg.warnings)
    assert "dropped 1 duplicate edge(s)" in joined and "edges[3]" in joined
    assert "dropped 1 self-loop edge(s)" in joined and "edges[4]" in joined


# --- TSV / CSV -------------------------------------------------------------------------------------
def test_headerless_tsv(tmp_path: Path) -> None:
    path = write_text(
        tmp_path,
        "# troubleshooting triples\nDiskFull\tfixed_by\tPruneLogs\n\nHighIOWait\tcaused_by\tDiskFull\n",
        "triples.tsv",
    )
    kg = import_kg(path)
    assert set(kg.entities) == {"DiskFull", "PruneLogs", "HighIOWait"}
    assert all(e.type is None and e.label == e.id for e in kg.entities.values())
    assert kg.phrase("fixed_by") == "is fixed by"
    assert kg.follow("HighIOWait", ["caused_by", "fixed_by"]) == {"PruneLogs"}


def test_headed_tsv_with_reordered_columns(tmp_path: Path) -> None:
    path = write_text(tmp_path, "subject\tobject\tpredicate\nA\tB\tdependsOn\n", "t.tsv")
    kg = import_kg(path)
    assert kg.has_edge("A", "dependsOn", "B")
    assert kg.phrase("dependsOn") == "depends on"


def test_headed_csv_with_quoted_commas(tmp_path: Path) -> None:
    path = write_text(
        tmp_path, 'head,relation,tail\n"Disk full, root",is-related-to,Inode exhaustion\n', "t.csv"
    )
    kg = import_kg(path)
    assert kg.has_edge("Disk full, root", "is-related-to", "Inode exhaustion")
    assert kg.phrase("is-related-to") == "is related to"


def test_format_override_and_sniffing(tmp_path: Path) -> None:
    path = write_text(tmp_path, "a,r,b\n", "triples.txt")
    assert import_kg(path).has_edge("a", "r", "b")  # sniffed as CSV
    tsv_as_txt = write_text(tmp_path, "a\tr\tb\n", "other.txt")
    assert import_kg(tsv_as_txt).has_edge("a", "r", "b")
    json_as_txt = write_json(tmp_path, HOBBY, "hobby.data")
    assert len(import_kg(json_as_txt, fmt="json").edges) == 3
    with pytest.raises(InputError, match="unknown KG file format 'xml'"):
        import_kg(path, fmt="xml")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("rows.tsv", "a\tr\tb\nc\tr\n", r"rows\.tsv:2: expected 3 TSV columns .*got 2"),
        ("rows.tsv", "a\tr\tb\nc\tr\td\te\n", r"rows\.tsv:2: expected 3 TSV columns .*got 4"),
        ("rows.tsv", "a,r,b\n", r"rows\.tsv:1: .*looks comma-separated: pass --format csv"),
        ("rows.csv", "head,relation,tail\na,r,b\n\na,,b\n", r"rows\.csv:4: empty relation"),
        ("rows.csv", 'a,r,"b\n', r"rows\.csv:\d+: malformed CSV row"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = write_text(tmp_path, text, name)
    with pytest.raises(InputError, match=expected):
        import_kg(path)


def test_empty_triples_file(tmp_path: Path) -> None:
    path = write_text(tmp_path, "head\trelation\ttail\n# nothing else\n", "empty.tsv")
    with pytest.raises(KGError, match=r"empty\.tsv: empty graph"):
        import_kg(path)


def test_tsv_self_loops_and_duplicates_are_warnings_with_lines(tmp_path: Path) -> None:
    path = write_text(tmp_path, "a\tr\tb\na\tr\ta\na\tr\tb\nb\tr\tc\n", "dup.tsv")
    kg = import_kg(path)
    assert [(e.head, e.tail) for e in kg.edges] == [("a", "b"), ("b", "c")]
    joined = "\n".join(kg.warnings)
    assert f"{path}:2 (a -r-> a)" in joined
    assert f"{path}:3 (a -r-> b)" in joined


# --- phrases and names ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("relation", "phrase"),
    [
        ("caused_by", "is caused by"),
        ("leads_to", "leads to"),
        ("fixed_by", "is fixed by"),
        ("diagnosed_by", "is diagnosed by"),
        ("uses_tool", "uses tool"),
        ("related_to", "is related to"),
        ("is_a", "is a"),
        ("has_part", "has part"),
        ("depend_on", "depends on"),
        ("dependsOn", "depends on"),
        ("part-of", "is part of"),
        ("locatedIn", "is located in"),
        ("written_by", "is written by"),
        ("birthPlace", "has birth place"),
        ("parent", "has parent"),
        ("causes", "causes"),
        ("caused by", "is caused by"),
        ("IS_A", "is a"),
    ],
)
def test_derive_phrase(relation: str, phrase: str) -> None:
    assert derive_phrase(relation) == phrase


def test_derive_phrase_rejects_wordless_ids() -> None:
    with pytest.raises(KGError, match="no words"):
        derive_phrase("__")


def test_split_and_humanize() -> None:
    assert split_identifier("TLSHandshakeError") == ["TLS", "Handshake", "Error"]
    assert split_identifier("uses-tool_now") == ["uses", "tool", "now"]
    assert humanize("TLSHandshakeError") == "TLS handshake error"
    assert humanize("OOMKilled") == "OOM killed"
    assert humanize("SyncNTP") == "sync NTP"


# --- follow semantics ----------------------------------------------------------------------------
def test_follow_semantics() -> None:
    ents = [Entity(x, x) for x in "SABCDE"]
    rels = [Relation("r", "r"), Relation("q", "q")]
    edges = [
        Edge("S", "r", "A"),
        Edge("S", "r", "B"),
        Edge("A", "q", "C"),
        Edge("B", "q", "C"),
        Edge("B", "q", "D"),
    ]
    kg = KnowledgeGraph.from_parts(ents, rels, edges)
    assert kg.follow("S", []) == {"S"}
    assert kg.follow("S", ["r"]) == {"A", "B"}
    assert kg.follow("S", ["r", "q"]) == {"C", "D"}  # a set: C reached twice counts once
    assert kg.follow("S", ["q"]) == set()  # wrong relation at the first hop
    assert kg.follow("S", ["r", "q", "q"]) == set()  # dead end
    assert kg.follow("E", ["r"]) == set()  # no edges at all
    assert kg.successors("B", "q") == ("C", "D")
    assert kg.predecessors("C", "q") == ("A", "B")
    assert kg.degree("B") == 3


def test_bom_header_and_gc_state_restored(tmp_path: Path) -> None:
    import gc

    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeffhead\trelation\ttail\nA\tr\tB\n".encode())
    assert gc.isenabled()
    kg = import_kg(path)
    assert gc.isenabled()  # the loader pauses the collector only while it builds
    assert list(kg.entities) == ["A", "B"]


def test_unrecognised_header_is_imported_with_a_warning(tmp_path: Path) -> None:
    path = write_text(tmp_path, "from_node\tedge_kind\tto_node\nA\tr\tB\nB\tr\tC\nC\tr\tD\n", "odd.tsv")
    kg = import_kg(path)
    assert kg.has_edge("from_node", "edge_kind", "to_node")
    assert any(f"{path}:1:" in w and "If it is a header" in w for w in kg.warnings)
    plain = import_kg(write_text(tmp_path, "A\tr\tB\nB\tr\tC\nC\tr\tD\n", "plain.tsv"))
    assert plain.warnings == []


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.tsv"
    path.write_bytes("Caf\u00e9\tr\tB\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.tsv: not UTF-8 text"):
        import_kg(path)
