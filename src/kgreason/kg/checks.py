"""Shared validation of every graph reader: names, endpoints and relations checked before a graph is
built, dropped self-loops and duplicates recorded as warnings, and the garbage collector paused
while millions of small containers are built."""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kgreason.io import InputError
from kgreason.kg.graph import Edge, Entity, KGError, KnowledgeGraph, Relation, symmetric_closure

# How many individual dropped edges a warning lists before summarising the rest.
_WARN_EXAMPLES = 3


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small containers: a graph
    has no reference cycles to collect, and repeated full collections cost ~40% of a 1M-edge load."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()




# --- shared validation ---------------------------------------------------------------------------
def build_checked(
    entities: dict[str, Entity],
    relations: dict[str, Relation],
    edges: list[Edge],
    locate: Callable[[int], str],
    source: str,
    name: str,
    locate_entity: Callable[[str], str] | None = None,
) -> KnowledgeGraph:
    """Check names, endpoints and relations, naming the failing edge by `locate(edge index)` (an
    entity by `locate_entity(id)` when given, else by the first edge that uses it); drop
    self-loops and duplicates with a warning that says where they were; store every edge of a
    symmetric relation both ways, saying how many reverse edges that added; build the graph."""
    if not entities:
        raise KGError(f"{source}: empty graph: no entities")
    if not edges:
        raise KGError(f"{source}: empty graph: no edges")
    _check_names(entities, relations, edges, locate, locate_entity)
    kept: list[Edge] = []
    seen: set[tuple[str, str, str]] = set()
    self_loops: list[str] = []
    duplicates: list[str] = []
    for i, edge in enumerate(edges):
        h, r, t = edge.head, edge.relation, edge.tail
        if r in relations and h in entities and t in entities and h != t:
            key = (h, r, t)
            if key not in seen:
                seen.add(key)
                kept.append(edge)
                continue
        loc = locate(i)
        if edge.relation not in relations:
            known = ", ".join(sorted(relations)[:12]) or "none"
            raise KGError(
                f"{loc} ({_fmt(edge)}): unknown relation {edge.relation!r}; known relations: {known}"
            )
        for role, end in (("head", edge.head), ("tail", edge.tail)):
            if end not in entities:
                raise KGError(f"{loc} ({_fmt(edge)}): dangling {role}: entity {end!r} is not in 'entities'")
        (self_loops if h == t else duplicates).append(f"{loc} ({_fmt(edge)})")
    if not kept:
        raise KGError(f"{source}: empty graph: all {len(edges)} edges were self-loops or duplicates")
    # Everything from_parts checks has been checked above, with locations; build directly.
    warnings = _drop_warning("self-loop", self_loops) + _drop_warning("duplicate", duplicates)
    warnings += symmetric_closure(kept, relations)
    return KnowledgeGraph(entities=entities, relations=relations, edges=kept, name=name, warnings=warnings)


# Characters no name may hold: C0/C1 controls (NUL, line breaks, terminal escapes) and the bidi
# controls that make text display in another order than it is read ("Trojan Source", U+202E).
_BAD_NAME_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _check_names(
    entities: dict[str, Entity],
    relations: dict[str, Relation],
    edges: list[Edge],
    locate: Callable[[int], str],
    locate_entity: Callable[[str], str] | None,
) -> None:
    """KGError naming the first entity or relation whose id, label, type, alias or phrase holds a
    control or bidi-override character; one regex pass over all names in the common clean case."""
    def entity_texts(e: Entity) -> list[tuple[str, str]]:
        return [("id", e.id), ("label", e.label), ("type", e.type or ""), *(("alias", a) for a in e.aliases)]

    def relation_texts(r: Relation) -> list[tuple[str, str]]:
        return [("id", r.id), ("phrase", r.phrase), ("inverse phrase", r.inverse_phrase or "")]

    ents, rels = entities.values(), relations.values()
    search = _BAD_NAME_CHARS.search
    if not (search(" ".join([e.id for e in ents])) or search(" ".join([e.label for e in ents]))
            or search(" ".join([e.type for e in ents if e.type]))
            or search(" ".join([a for e in ents if e.aliases for a in e.aliases]))
            or search(" ".join([t for r in rels for t in (r.id, r.phrase, r.inverse_phrase or "")]))):
        return
    for kind, items, texts in (("entity", entities, entity_texts), ("relation", relations, relation_texts)):
        for key, item in items.items():
            for field_name, text in texts(item):
                bad = _BAD_NAME_CHARS.search(text)
                if bad is None:
                    continue
                ch = bad.group()
                what = f"U+{ord(ch):04X}" + (f" ({unicodedata.name(ch)})" if unicodedata.name(ch, "") else "")
                if kind == "entity" and locate_entity is not None:
                    where = locate_entity(key)
                else:
                    hit = (i for i, e in enumerate(edges) if key in ((e.head, e.tail) if kind == "entity" else (e.relation,)))
                    i = next(hit, None)
                    where = locate(i) if i is not None else "<graph>"
                field_text = field_name if field_name == "id" else f"{field_name} {text!r}"
                raise KGError(f"{where}: {kind} {key!r} has the control character {what} in its {field_text}; "
                              "names must be printable text without control or bidi-override characters")


def _drop_warning(kind: str, where: list[str]) -> list[str]:
    if not where:
        return []
    listed = "; ".join(where[:_WARN_EXAMPLES])
    more = f"; and {len(where) - _WARN_EXAMPLES} more" if len(where) > _WARN_EXAMPLES else ""
    return [f"dropped {len(where)} {kind} edge(s): {listed}{more}"]


def _fmt(edge: Edge) -> str:
    return f"{edge.head} -{edge.relation}-> {edge.tail}"



def short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_rows(path: Path, delimiter: str, kind: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, stripped cells) of each non-blank, non-comment row."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting, strict=True)
        try:
            for row in reader:
                cells = [c.strip() for c in row]
                if any(cells) and not cells[0].startswith("#"):
                    yield reader.line_num, cells
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: malformed {kind} row: {exc}") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None

