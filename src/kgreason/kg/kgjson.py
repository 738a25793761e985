"""kg.json, kgreason's graph file (read and written), and the hobby project's JSON (read): one
registered format of kg/formats.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from kgreason.io import InputError, atomic_write_text, read_json
from kgreason.kg.checks import build_checked, paused_gc, short
from kgreason.kg.formats import register_kg_format
from kgreason.kg.graph import Edge, Entity, KGError, KnowledgeGraph, Relation, entity_dict
from kgreason.kg.graph import _relation_dict as relation_dict
from kgreason.kg.phrases import derive_phrase
from kgreason.kg.relation_meta import HOBBY_RELATIONS, RelationMeta, apply_relation_meta


# --- kg.json / hobby JSON ------------------------------------------------------------------------
def load_kg(
    path: str | os.PathLike, relation_meta: Mapping[str, RelationMeta] | None = None
) -> KnowledgeGraph:
    """Read kg.json, or the hobby project's JSON as it is (entities id/label/type, relations
    id/label, edges src/rel/dst). `kgreason.kg.sources.open_kg` also reads `builtin:NAME`. Raises
    InputError/KGError naming the file and item.

    Relations without a 'phrase' (the hobby format) take `HOBBY_RELATIONS` defaults;
    `relation_meta` (a sidecar's or flags') overrides both them and the file.
    """
    path = Path(path)
    with paused_gc():
        try:
            data = read_json(path)
        except InputError:
            hint = _triples_hint(path)
            if hint:
                raise InputError(hint) from None
            raise
        return kg_from_dict(data, source=str(path), default_name=path.stem, relation_meta=relation_meta)


def _triples_hint(path: Path) -> str | None:
    """For a file that is not JSON: a message saying to import it when it looks like TSV/CSV triples."""
    kind = {".tsv": "TSV", ".tab": "TSV", ".csv": "CSV"}.get(path.suffix.lower())
    if kind is None:
        try:
            with path.open(encoding="utf-8-sig") as f:
                first = next((line for line in f if line.strip()), "")
        except (OSError, UnicodeDecodeError):
            return None
        if first.lstrip().startswith(("{", "[")):
            return None
        kind = "TSV" if "\t" in first else "CSV" if "," in first else None
    if kind is None:
        return None
    return (f"{path}: {kind} triples, not a kg.json graph; run `kgreason kg import {path} --out kg.json` first "
            "and pass that kg.json")


def kg_from_dict(
    data: Any,
    source: str = "<kg>",
    default_name: str = "kg",
    relation_meta: Mapping[str, RelationMeta] | None = None,
) -> KnowledgeGraph:
    """Validate a kg.json-shaped object and build the graph; `source` prefixes every message."""
    if not isinstance(data, dict):
        raise KGError(
            f"{source}: expected a JSON object with 'entities', 'relations' and 'edges', got {type(data).__name__}"
        )
    for key in ("entities", "edges"):
        if key not in data:
            raise KGError(
                f"{source}: missing the '{key}' list (expected 'entities', 'relations' and 'edges')"
            )
    entities = _parse_entities(data["entities"], source)
    edges = _parse_edges(data["edges"], source)
    if "relations" in data:
        relations = _parse_relations(data["relations"], source)
    else:
        # Relations may be implied by the edges; phrases then come from the hobby defaults or the ids.
        relations = {r: _implied_relation(r) for r in dict.fromkeys(e.relation for e in edges)}
    if relation_meta:
        relations = apply_relation_meta(relations, relation_meta, source)
    # The hobby project's files carry a "domain" where ours carry a "name".
    named = [v for v in (data.get("name"), data.get("domain")) if isinstance(v, str) and v.strip()]
    name = named[0] if named else default_name
    order = {eid: i for i, eid in enumerate(entities)}  # entity ids are unique, so this is the file's order
    return build_checked(entities, relations, edges, lambda i: f"{source}: edges[{i}]", source, name,
                         locate_entity=lambda eid: f"{source}: entities[{order[eid]}]")


def _parse_entities(items: Any, source: str) -> dict[str, Entity]:
    if not isinstance(items, list):
        raise KGError(f"{source}: 'entities' must be a list of objects, got {type(items).__name__}")
    entities: dict[str, Entity] = {}
    first_at: dict[str, int] = {}
    for i, item in enumerate(items):
        if type(item) is dict:
            fast = _fast_entity(item)
            if fast is not None and fast.id not in entities:
                entities[fast.id] = fast
                first_at[fast.id] = i
                continue
        where = f"{source}: entities[{i}]"
        if not isinstance(item, dict):
            raise KGError(f"{where}: expected an object with 'id' and 'label', got {short(item)}")
        eid = _id_field(item, "id", where)
        label = item.get("label", eid)
        if not isinstance(label, str) or not label.strip():
            raise KGError(f"{where}: 'label' must be a non-empty string, got {short(label)}")
        etype = item.get("type")
        if etype is not None and not isinstance(etype, str):
            raise KGError(f"{where}: 'type' must be a string, got {short(etype)}")
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise KGError(f"{where}: 'aliases' must be a list of strings, got {short(aliases)}")
        if eid in entities:
            raise KGError(
                f"{where}: duplicate entity id {eid!r} (first defined at entities[{first_at[eid]}])"
            )
        first_at[eid] = i
        entities[eid] = Entity(eid, label.strip(), etype or None, tuple(a for a in aliases if a.strip()))
    return entities


def _fast_entity(item: dict) -> Entity | None:
    """The common well-formed case without per-field error handling (most of a 1M-edge load);
    None sends the item through the checked path, which explains what is wrong."""
    eid, label, etype, aliases = item.get("id"), item.get("label"), item.get("type"), item.get("aliases")
    if type(eid) is not str or not eid.strip():
        return None
    if label is None:
        label = eid
    elif type(label) is not str or not label.strip() or label != label.strip():
        return None
    if etype is not None and (type(etype) is not str or not etype):
        return None
    if aliases is None:
        return Entity(eid, label, etype)
    if type(aliases) is not list or not all(type(a) is str and a.strip() for a in aliases):
        return None
    return Entity(eid, label, etype, tuple(aliases))


def _parse_relations(items: Any, source: str) -> dict[str, Relation]:
    if not isinstance(items, list):
        raise KGError(f"{source}: 'relations' must be a list of objects, got {type(items).__name__}")
    relations: dict[str, Relation] = {}
    first_at: dict[str, int] = {}
    for i, item in enumerate(items):
        where = f"{source}: relations[{i}]"
        if isinstance(item, str):  # a bare list of relation ids
            item = {"id": item}
        if not isinstance(item, dict):
            raise KGError(
                f"{where}: expected an object with 'id' and 'phrase' (or 'label'), got {short(item)}"
            )
        rid = _id_field(item, "id", where)
        if rid in relations:
            raise KGError(
                f"{where}: duplicate relation id {rid!r} (first defined at relations[{first_at[rid]}])"
            )
        first_at[rid] = i
        phrase = item.get("phrase")
        default = None
        if phrase is None:
            # The hobby project's 'label' may be an id ("caused_by") or a bare participle
            # ("caused by"); normalising it gives "is caused by" either way.
            label = item.get("label")
            try:
                phrase = derive_phrase(label if isinstance(label, str) and label.strip() else rid)
                # A label that only restates the id ("uses tool") gives way to the hobby defaults.
                if rid in HOBBY_RELATIONS and phrase == derive_phrase(rid):
                    default = HOBBY_RELATIONS[rid]
                    phrase = default.phrase
            except KGError as exc:
                raise KGError(f"{where}: {exc}; give the relation a 'phrase'") from None
        if not isinstance(phrase, str) or not phrase.strip():
            raise KGError(f"{where}: 'phrase' must be a non-empty string, got {short(phrase)}")
        inverse = item.get("inverse_phrase", default.inverse_phrase if default else None)
        if inverse is not None and not isinstance(inverse, str):
            raise KGError(f"{where}: 'inverse_phrase' must be a string, got {short(inverse)}")
        symmetric = item.get("symmetric", bool(default and default.symmetric))
        if not isinstance(symmetric, bool):
            raise KGError(f"{where}: 'symmetric' must be true or false, got {short(symmetric)}")
        phrase, inverse = phrase.strip(), inverse.strip() if inverse and inverse.strip() else None
        if symmetric:
            if inverse not in (None, phrase):
                raise KGError(
                    f"{where}: a symmetric relation reads the same both ways: 'inverse_phrase' must equal "
                    f"'phrase' ({phrase!r}) or be left out, got {inverse!r}"
                )
            inverse = phrase
        relations[rid] = Relation(rid, phrase, inverse, symmetric)
    return relations


def _implied_relation(rid: str) -> Relation:
    default = HOBBY_RELATIONS.get(rid)
    if default is None:
        return Relation(rid, derive_phrase(rid))
    return Relation(
        rid, default.phrase or derive_phrase(rid), default.inverse_phrase, bool(default.symmetric)
    )


def _parse_edges(items: Any, source: str) -> list[Edge]:
    """Edges in file order, so edges[i] in a message is the i-th item of the file's list."""
    if not isinstance(items, list):
        raise KGError(f"{source}: 'edges' must be a list, got {type(items).__name__}")
    out: list[Edge] = []
    for i, item in enumerate(items):
        if type(item) is dict:
            h, r, t = item.get("src"), item.get("rel"), item.get("dst")
            # Whitespace-only ids pass here but match no entity, so they fail as dangling.
            if type(h) is str and type(r) is str and type(t) is str and h and r and t:
                out.append(Edge(h, r, t))
                continue
        where = f"{source}: edges[{i}]"
        if isinstance(item, dict):
            keys = ("src", "rel", "dst") if "src" in item or "dst" in item else ("head", "relation", "tail")
            out.append(Edge(*(_id_field(item, k, where, expected=keys) for k in keys)))
        elif isinstance(item, list) and len(item) == 3 and all(isinstance(x, (str, int)) for x in item):
            out.append(Edge(str(item[0]), str(item[1]), str(item[2])))
        else:
            raise KGError(
                f"{where}: expected an object with 'src', 'rel' and 'dst' (or a [head, relation, tail] list), "
                f"got {short(item)}"
            )
    return out


def _id_field(item: dict, key: str, where: str, expected: Iterable[str] = ("id",)) -> str:
    value = item.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        fields = ", ".join(repr(k) for k in expected)
        problem = "missing" if value is None else f"not a non-empty string ({short(value)})"
        raise KGError(f"{where}: {key!r} is {problem}; expected fields {fields}")
    return value





# --- saving --------------------------------------------------------------------------------------
def save_kg(kg: KnowledgeGraph, path: str | os.PathLike) -> None:
    """Write kg.json (`KnowledgeGraph.to_dict()`) atomically, one entity, relation or edge per line:
    diffable, and fast for a million edges.

    The output is a pure function of the graph, so the same graph gives byte-identical files.
    """
    with paused_gc():
        atomic_write_text(path, "".join(_kg_json_lines(kg)))


def _kg_json_lines(kg: KnowledgeGraph) -> Iterator[str]:
    # One reusable encoder: json.dumps(..., ensure_ascii=False) builds a new one per call.
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    yield f'{{\n  "name": {dumps(kg.name)},\n'
    for key, items in (
        ("entities", [entity_dict(e) for e in kg.entities.values()]),
        ("relations", [relation_dict(r) for r in kg.relations.values()]),
    ):
        yield f'  "{key}": [\n'
        yield ",\n".join("    " + dumps(item) for item in items)
        yield "\n  ],\n"
    # Edges are most of a big file: encode each id once, not once per edge it appears in.
    quoted: dict[str, str] = {}

    def q(text: str) -> str:
        out = quoted.get(text)
        if out is None:
            out = quoted[text] = dumps(text)
        return out

    yield '  "edges": [\n'
    yield ",\n".join(
        f'    {{"src": {q(e.head)}, "rel": {q(e.relation)}, "dst": {q(e.tail)}}}' for e in kg.edges
    )
    yield "\n  ]\n}\n"


# --- the registered format ---------------------------------------------------------------------------
@register_kg_format("json", "kg.json or the hobby project's JSON (entities, relations, edges)", (".json", ".kg"),
                    sniff=lambda first: first.lstrip().startswith(("{", "[")))
def _json(path: Path, meta: Mapping[str, RelationMeta] | None) -> KnowledgeGraph:
    return load_kg(path, meta)
