"""TSV / CSV triples (`head, relation, tail` rows, header optional): two registered formats of
kg/formats.py."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kgreason.io import InputError
from kgreason.kg.checks import build_checked, paused_gc, read_rows
from kgreason.kg.formats import register_kg_format
from kgreason.kg.graph import Edge, Entity, KGError, KnowledgeGraph, Relation
from kgreason.kg.phrases import derive_phrase
from kgreason.kg.relation_meta import RelationMeta, apply_relation_meta

# --- TSV / CSV triples ---------------------------------------------------------------------------
_HEAD_NAMES = {"head", "h", "subject", "subj", "s", "src", "source", "from", "start"}
_REL_NAMES = {"relation", "rel", "r", "predicate", "pred", "p", "edge", "property", "relation_id"}
_TAIL_NAMES = {"tail", "t", "object", "obj", "o", "dst", "target", "to", "end", "destination"}


def load_triples(
    path: str | os.PathLike, delimiter: str = "\t", relation_meta: Mapping[str, RelationMeta] | None = None
) -> KnowledgeGraph:
    """Read `head, relation, tail` rows (header optional; blank lines and '#' comments skipped)."""
    path = Path(path)
    kind = "TSV" if delimiter == "\t" else "CSV"
    entities: dict[str, Entity] = {}
    relations: dict[str, Relation] = {}
    edges: list[Edge] = []
    lines: list[int] = []
    order: tuple[int, int, int] | None = None
    for line, cells in read_rows(path, delimiter, kind):
        if order is None:
            order = _header_order(cells)
            if order is not None:
                continue
            order = (0, 1, 2)
        head, rel, tail = _row_triple(cells, order, path, line, kind)
        for eid in (head, tail):
            if eid not in entities:
                entities[eid] = Entity(eid, eid)
        if rel not in relations:
            relations[rel] = Relation(rel, derive_phrase(rel))
        edges.append(Edge(head, rel, tail))
        lines.append(line)
    if not edges:
        raise KGError(f"{path}: empty graph: no 'head, relation, tail' rows found")
    if relation_meta:
        relations = apply_relation_meta(relations, relation_meta, str(path))
    kg = build_checked(entities, relations, edges, lambda i: f"{path}:{lines[i]}", str(path), path.stem)
    kg.warnings.extend(_unrecognised_header_warning(edges, lines, path))
    return kg



def _unrecognised_header_warning(edges: list[Edge], lines: list[int], path: Path) -> list[str]:
    """A first row whose relation never recurs in a longer file is probably a header we did not
    recognise; it was imported as a triple, so say so rather than stay silent."""
    if len(edges) < 3 or sum(1 for e in edges if e.relation == edges[0].relation) > 1:
        return []
    first = edges[0]
    return [
        f"{path}:{lines[0]}: read ({first.head}, {first.relation}, {first.tail}) as a triple; its relation "
        "appears nowhere else. If it is a header, name the columns head, relation, tail"
    ]


def _header_order(cells: list[str]) -> tuple[int, int, int] | None:
    """Column positions of (head, relation, tail) if `cells` is a header row, else None."""
    if len(cells) != 3:
        return None
    names = [c.lower().replace(" ", "_") for c in cells]
    roles: dict[str, int] = {}
    for i, name in enumerate(names):
        for role, vocab in (("h", _HEAD_NAMES), ("r", _REL_NAMES), ("t", _TAIL_NAMES)):
            if name in vocab and role not in roles:
                roles[role] = i
                break
    if len(roles) != 3:
        return None
    return roles["h"], roles["r"], roles["t"]


def _row_triple(
    cells: list[str], order: tuple[int, int, int], path: Path, line: int, kind: str
) -> tuple[str, str, str]:
    if len(cells) != 3:
        hint = ""
        if kind == "TSV" and len(cells) == 1 and "," in cells[0]:
            hint = " (this looks comma-separated: pass --format csv)"
        elif kind == "CSV" and len(cells) == 1 and "\t" in cells[0]:
            hint = " (this looks tab-separated: pass --format tsv)"
        raise InputError(
            f"{path}:{line}: expected 3 {kind} columns (head, relation, tail), got {len(cells)}: {cells!r}{hint}"
        )
    triple = tuple(cells[i] for i in order)
    for role, value in zip(("head", "relation", "tail"), triple, strict=True):
        if not value:
            raise InputError(f"{path}:{line}: empty {role} in row {cells!r}")
    return triple  # type: ignore[return-value]


# --- the registered formats --------------------------------------------------------------------------
@register_kg_format("tsv", "tab-separated head, relation, tail rows (header optional)", (".tsv", ".tab"),
                    sniff=lambda first: "\t" in first)
def _tsv(path: Path, meta: Mapping[str, RelationMeta] | None) -> KnowledgeGraph:
    with paused_gc():
        return load_triples(path, delimiter="\t", relation_meta=meta)


@register_kg_format("csv", "comma-separated head, relation, tail rows (header optional)", (".csv",),
                    sniff=lambda first: "," in first)
def _csv(path: Path, meta: Mapping[str, RelationMeta] | None) -> KnowledgeGraph:
    with paused_gc():
        return load_triples(path, delimiter=",", relation_meta=meta)
