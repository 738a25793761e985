"""Reading and writing knowledge graphs: kg.json, the hobby project's JSON, and TSV/CSV triples,
plus relation metadata (phrase, inverse phrase, symmetric) from a sidecar file or flags.

Every reader validates before building, so a bad file fails with its name, the line (triples) or
the item index (JSON) and what was expected, instead of a KeyError deep inside task generation.
Self-loops and duplicate edges are common in scraped triples and harmless to drop, so they are
recorded in `KnowledgeGraph.warnings` rather than treated as errors.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kgreason.io import InputError, atomic_write_text, read_json
from kgreason.kg.graph import Edge, Entity, KGError, KnowledgeGraph, Relation, entity_dict, symmetric_closure
from kgreason.kg.graph import _relation_dict as relation_dict
from kgreason.yaml_lines import Located, put_once, read_yaml_lines

DATA_DIR = Path(__file__).resolve().parent / "data"

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


# --- relation phrases ----------------------------------------------------------------------------
_AUXILIARIES = {
    "is",
    "are",
    "was",
    "were",
    "has",
    "have",
    "had",
    "can",
    "may",
    "does",
    "do",
    "must",
    "should",
    "will",
}
_PREPOSITIONS = {
    "by", "to", "of", "in", "on", "with", "from", "for", "at", "as", "into", "onto", "via", "about",
    "after", "before", "under", "over", "within", "without", "than", "like", "near", "behind",
}  # fmt: skip
# Irregular past participles that do not end in -ed: "written_by" reads "is written by".
_IRREGULAR_PARTICIPLES = {
    "born", "built", "made", "written", "known", "found", "run", "held", "led", "sold", "taught",
    "given", "taken", "seen", "shown", "driven", "drawn", "grown", "thrown", "chosen", "spoken",
    "bought", "brought", "caught", "fed", "kept", "left", "lost", "meant", "paid", "said", "sent",
    "set", "split", "spent", "struck", "won", "bound", "hidden", "frozen", "broken", "worn", "done",
}  # fmt: skip
# Common relation verbs written in their base form ("depend_on"), conjugated to "depends on".
_BASE_VERBS = {
    "affect", "belong", "call", "cause", "connect", "contain", "depend", "fix", "follow", "include",
    "influence", "inherit", "lead", "link", "map", "need", "own", "point", "precede", "produce",
    "read", "refer", "require", "resolve", "run", "trigger", "use", "write", "import", "export",
    "extend", "implement", "invoke", "mention", "diagnose", "treat", "prevent", "replace", "host",
}  # fmt: skip
_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def split_identifier(identifier: str) -> list[str]:
    """Split snake_case, kebab-case, camelCase, CamelCase and spaced ids into words.

    Acronyms stay whole: "TLSHandshakeError" -> ["TLS", "Handshake", "Error"].
    """
    words: list[str] = []
    for chunk in re.split(r"[\s_\-./:]+", identifier.strip()):
        words.extend(_WORD_RE.findall(chunk))
    return words


def humanize(identifier: str) -> str:
    """A readable form of an id: acronyms kept, other words lower-cased ("TLS handshake error")."""
    return " ".join(
        w if (w.isupper() and len(w) > 1) or w.isdigit() else w.lower() for w in split_identifier(identifier)
    )


def derive_phrase(relation_id: str) -> str:
    """A readable English phrase for a bare relation id, used in questions and traces.

    The phrase must read as "<head> PHRASE <tail>":
    - already a verb phrase ("is_a", "has_part", "leads_to", "uses_tool") -> words as they are;
    - past participle ("caused_by", "located_in", "written_by", "related_to") -> "is ...";
    - base-form verb ("depend_on") -> third person ("depends on");
    - noun with a preposition ("part_of", "capital-of") -> "is ...";
    - bare noun ("parent", "birthPlace") -> "has ..." ("has parent", "has birth place").
    """
    words = [w.lower() for w in split_identifier(relation_id)]
    if not words:
        raise KGError(f"relation id {relation_id!r} has no words to derive a phrase from")
    first, last = words[0], words[-1]
    if first in _AUXILIARIES:
        return " ".join(words)
    if _is_participle(first):
        return " ".join(["is", *words])
    if first in _BASE_VERBS:
        return " ".join([_third_person(first), *words[1:]])
    if _looks_like_third_person_verb(first) and len(words) > 1:
        return " ".join(words)
    if last in _PREPOSITIONS:
        return " ".join(["is", *words])
    if len(words) == 1 and _looks_like_third_person_verb(first):
        return first
    return " ".join(["has", *words])


def _is_participle(word: str) -> bool:
    return word in _IRREGULAR_PARTICIPLES or (len(word) > 3 and word.endswith("ed"))


def _looks_like_third_person_verb(word: str) -> bool:
    # "leads", "uses", "causes"; not "ss"/"us"/"is" endings of nouns like "status", "access".
    return len(word) > 2 and word.endswith("s") and not word.endswith(("ss", "us", "is"))


def _third_person(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


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
            raise KGError(f"{where}: expected an object with 'id' and 'label', got {_short(item)}")
        eid = _id_field(item, "id", where)
        label = item.get("label", eid)
        if not isinstance(label, str) or not label.strip():
            raise KGError(f"{where}: 'label' must be a non-empty string, got {_short(label)}")
        etype = item.get("type")
        if etype is not None and not isinstance(etype, str):
            raise KGError(f"{where}: 'type' must be a string, got {_short(etype)}")
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise KGError(f"{where}: 'aliases' must be a list of strings, got {_short(aliases)}")
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
                f"{where}: expected an object with 'id' and 'phrase' (or 'label'), got {_short(item)}"
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
            raise KGError(f"{where}: 'phrase' must be a non-empty string, got {_short(phrase)}")
        inverse = item.get("inverse_phrase", default.inverse_phrase if default else None)
        if inverse is not None and not isinstance(inverse, str):
            raise KGError(f"{where}: 'inverse_phrase' must be a string, got {_short(inverse)}")
        symmetric = item.get("symmetric", bool(default and default.symmetric))
        if not isinstance(symmetric, bool):
            raise KGError(f"{where}: 'symmetric' must be true or false, got {_short(symmetric)}")
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
                f"got {_short(item)}"
            )
    return out


def _id_field(item: dict, key: str, where: str, expected: Iterable[str] = ("id",)) -> str:
    value = item.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        fields = ", ".join(repr(k) for k in expected)
        problem = "missing" if value is None else f"not a non-empty string ({_short(value)})"
        raise KGError(f"{where}: {key!r} is {problem}; expected fields {fields}")
    return value


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    for line, cells in _read_rows(path, delimiter, kind):
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


def _read_rows(path: Path, delimiter: str, kind: str) -> Iterator[tuple[int, list[str]]]:
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


# --- relation metadata: sidecar files and flags ----------------------------------------------------
@dataclass(frozen=True)
class RelationMeta:
    """What a sidecar row or a flag says about one relation; a None field leaves it as it was.

    `origin` ("relations.yaml:3", "--phrase") starts every message about it.
    """

    phrase: str | None = None
    inverse_phrase: str | None = None
    symmetric: bool | None = None
    origin: str = ""


# The hobby project's relations read as its questions mean them: the built-in graph's phrases
# (kg/builtin.py RELATIONS), and related_to two-way. They apply to the JSON relations that carry no
# 'phrase' of their own (the hobby format), or none at all; a sidecar or a flag overrides them.
HOBBY_RELATIONS: dict[str, RelationMeta] = {
    "caused_by": RelationMeta("is caused by", "causes"),
    "leads_to": RelationMeta("leads to", "results from"),
    "fixed_by": RelationMeta("is fixed by", "fixes"),
    "diagnosed_by": RelationMeta("is diagnosed by", "diagnoses"),
    "uses_tool": RelationMeta("uses", "is used by"),
    "related_to": RelationMeta("is related to", "is related to", symmetric=True),
}

_META_FIELDS = ("phrase", "inverse_phrase", "symmetric")
_META_ID_FIELDS = ("relation", "id")
_TRUE = {"true", "yes", "y", "1", "symmetric"}
_FALSE = {"false", "no", "n", "0", "asymmetric"}


def apply_relation_meta(
    relations: dict[str, Relation], meta: Mapping[str, RelationMeta], source: str
) -> dict[str, Relation]:
    """The relations with `meta` laid over them. A relation the graph lacks is an error (a typo in
    a sidecar would otherwise change nothing, silently), as is a symmetric relation whose inverse
    phrase differs from its phrase."""
    out = dict(relations)
    for rid, m in meta.items():
        rel = out.get(rid)
        if rel is None:
            known = ", ".join(sorted(relations)[:20]) or "none"
            raise InputError(f"{m.origin}: relation {rid!r} is not in {source}; its relations are: {known}")
        phrase = m.phrase or rel.phrase
        symmetric = rel.symmetric if m.symmetric is None else m.symmetric
        inverse = m.inverse_phrase or rel.inverse_phrase
        if symmetric:
            if m.inverse_phrase and m.inverse_phrase != phrase:
                raise InputError(
                    f"{m.origin}: relation {rid!r} is symmetric, so it reads the same both ways: its "
                    f"inverse phrase must equal its phrase ({phrase!r}) or be left out, got {m.inverse_phrase!r}"
                )
            inverse = phrase
        out[rid] = replace(rel, phrase=phrase, inverse_phrase=inverse, symmetric=symmetric)
    return out


def merge_relation_meta(*layers: Mapping[str, RelationMeta]) -> dict[str, RelationMeta]:
    """Later layers win field by field (flags over a sidecar)."""
    out: dict[str, RelationMeta] = {}
    for layer in layers:
        for rid, m in layer.items():
            old = out.get(rid)
            if old is None:
                out[rid] = m
                continue
            out[rid] = RelationMeta(
                m.phrase or old.phrase,
                m.inverse_phrase or old.inverse_phrase,
                old.symmetric if m.symmetric is None else m.symmetric,
                m.origin,
            )
    return out


def relation_meta_from_flags(
    phrases: Iterable[str] = (),
    inverse_phrases: Iterable[str] = (),
    symmetric: Iterable[str] = (),
    asymmetric: Iterable[str] = (),
) -> dict[str, RelationMeta]:
    """--phrase REL=TEXT, --inverse-phrase REL=TEXT, --symmetric REL and --asymmetric REL."""
    fields: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    for flag, key, values in (
        ("--phrase", "phrase", phrases),
        ("--inverse-phrase", "inverse_phrase", inverse_phrases),
    ):
        for value in values:
            rid, sep, text = value.partition("=")
            if not sep or not rid.strip() or not text.strip():
                raise InputError(f"{flag}: expected RELATION=PHRASE (e.g. uses_tool=uses), got {value!r}")
            fields.setdefault(rid.strip(), {})[key] = " ".join(text.split())
            origins[rid.strip()] = flag
    for flag, flag_value, values in (("--symmetric", True, symmetric), ("--asymmetric", False, asymmetric)):
        for value in values:
            rid = value.strip()
            if not rid or "=" in rid:
                raise InputError(f"{flag}: expected a relation id (e.g. related_to), got {value!r}")
            if fields.get(rid, {}).get("symmetric", flag_value) != flag_value:
                raise InputError(f"--symmetric and --asymmetric both name relation {rid!r}; give one")
            fields.setdefault(rid, {})["symmetric"] = flag_value
            origins.setdefault(rid, flag)
    return {rid: RelationMeta(**f, origin=origins[rid]) for rid, f in fields.items()}


def read_relation_meta(path: str | os.PathLike) -> dict[str, RelationMeta]:
    """Relation metadata from a sidecar: YAML or JSON (a mapping relation -> {phrase,
    inverse_phrase, symmetric}, a phrase string, or a list of such objects with 'relation'),
    or TSV/CSV rows `relation, phrase, inverse_phrase, symmetric` (header optional, cells may be
    empty). Anything else raises InputError naming file:line and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: relations file not found")
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab", ".csv"):
        return _meta_from_rows(path, "\t" if suffix != ".csv" else ",")
    if suffix not in (".json", ".yaml", ".yml"):
        raise InputError(
            f"{path}: unknown relations file type {suffix or '(none)'!r}; expected .yaml, .yml, .json, .tsv or .csv"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    tree = _located_json(text, path) if suffix == ".json" else read_yaml_lines(text, path)
    return _meta_from_tree(tree, path)


def _located_json(text: str, path: Path) -> Any:
    decoder = json.JSONDecoder()

    def parse_object(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None):  # type: ignore[no-untyped-def]
        s, end = s_and_end
        pairs, new_end = json.decoder.JSONObject(s_and_end, strict, scan_once, object_hook, list, memo)
        located = Located()
        located.line = s.count("\n", 0, end) + 1
        located.key_lines = {}
        pos = end - 1
        for key, value in pairs:
            m = re.compile(re.escape(json.dumps(key)) + r"\s*:").search(s, pos, new_end)
            line = s.count("\n", 0, m.start()) + 1 if m else located.line
            pos = m.end() if m else pos
            put_once(located, key, value, line, path)
        return located, new_end

    decoder.parse_object = parse_object  # type: ignore[assignment]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # the C scanner ignores parse_object
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None


def _meta_from_tree(tree: Any, path: Path) -> dict[str, RelationMeta]:
    """Validate a parsed JSON/YAML sidecar. YAML lists carry (item, line) pairs; JSON lists items."""
    if isinstance(tree, Located) and set(tree) == {"relations"}:
        tree = tree["relations"]
    shape = (
        "a mapping of relation id -> {phrase, inverse_phrase, symmetric} (or -> a phrase), "
        "or a list of objects with 'relation' (or 'id'), 'phrase', 'inverse_phrase', 'symmetric'"
    )
    entries: list[tuple[str, Any, int, int]] = []  # (relation id, fields, line of entry, line of id)
    if isinstance(tree, Located):
        for rid, value in tree.items():
            line = tree.key_lines.get(rid, tree.line)
            entries.append((rid, value, line, line))
    elif isinstance(tree, list):
        for i, item in enumerate(tree):
            item, line = item if isinstance(item, tuple) else (item, getattr(item, "line", 1))
            where = f"{path}:{line}"
            if not isinstance(item, Located):
                raise InputError(
                    f"{where}: relations[{i}]: expected an object with 'relation' and 'phrase', got {_short(item)}"
                )
            id_keys = [k for k in _META_ID_FIELDS if k in item]
            if len(id_keys) != 1 or not isinstance(item[id_keys[0]], str) or not item[id_keys[0]].strip():
                raise InputError(
                    f"{where}: relations[{i}]: expected exactly one of 'relation' or 'id', a non-empty relation id"
                )
            rid = item[id_keys[0]].strip()
            fields = Located({k: v for k, v in item.items() if k != id_keys[0]})
            fields.line, fields.key_lines = item.line, item.key_lines
            entries.append((rid, fields, item.line, item.key_lines.get(id_keys[0], item.line)))
    else:
        where = f"{path}:{getattr(tree, 'line', 1)}"
        raise InputError(
            f"{where}: expected {shape}, got {_short(tree) if tree is not None else 'an empty file'}"
        )
    out: dict[str, RelationMeta] = {}
    first_line: dict[str, int] = {}
    for rid, value, line, id_line in entries:
        if not rid.strip():
            raise InputError(f"{path}:{id_line}: empty relation id; expected {shape}")
        rid = rid.strip()
        if rid in out:
            raise InputError(
                f"{path}:{id_line}: relation {rid!r} is given twice (first at line {first_line[rid]})"
            )
        first_line[rid] = id_line
        out[rid] = _meta_from_fields(rid, value, line, path)
    return out


def _meta_from_fields(rid: str, value: Any, line: int, path: Path) -> RelationMeta:
    origin = f"{path}:{line}"
    if isinstance(value, str):
        if not value.strip():
            raise InputError(f"{origin}: relation {rid!r}: expected a non-empty phrase")
        return RelationMeta(phrase=" ".join(value.split()), origin=origin)
    if not isinstance(value, Located):
        raise InputError(
            f"{origin}: relation {rid!r}: expected a phrase or an object with 'phrase', 'inverse_phrase', "
            f"'symmetric', got {_short(value)}"
        )
    unknown = [k for k in value if k not in _META_FIELDS]
    if unknown:
        k = unknown[0]
        raise InputError(
            f"{path}:{value.key_lines.get(k, line)}: relation {rid!r}: unknown field {k!r}; expected "
            f"{', '.join(repr(f) for f in _META_FIELDS)}"
        )
    if not value:
        raise InputError(
            f"{origin}: relation {rid!r}: nothing to set; expected 'phrase', 'inverse_phrase' or 'symmetric'"
        )
    texts: dict[str, str | None] = {}
    for key in ("phrase", "inverse_phrase"):
        v = value.get(key)
        if v is not None and (not isinstance(v, str) or not v.strip()):
            at = value.key_lines.get(key, line)
            raise InputError(
                f"{path}:{at}: relation {rid!r}: {key!r} must be a non-empty string, got {_short(v)}"
            )
        texts[key] = " ".join(v.split()) if v is not None else None
    symmetric = value.get("symmetric")
    if symmetric is not None and not isinstance(symmetric, bool):
        at = value.key_lines.get("symmetric", line)
        raise InputError(
            f"{path}:{at}: relation {rid!r}: 'symmetric' must be true or false, got {_short(symmetric)}"
        )
    return RelationMeta(texts["phrase"], texts["inverse_phrase"], symmetric, origin)


def _meta_from_rows(path: Path, delimiter: str) -> dict[str, RelationMeta]:
    kind = "TSV" if delimiter == "\t" else "CSV"
    columns: tuple[str, ...] = ("relation", *_META_FIELDS)
    out: dict[str, RelationMeta] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    for line, cells in _read_rows(path, delimiter, kind):
        names = [c.lower().replace(" ", "_").replace("-", "_") for c in cells]
        if not header_seen and not out and names and names[0] in _META_ID_FIELDS:
            header_seen = True
            bad = [c for c in names[1:] if c not in _META_FIELDS] or (
                [n for n in set(names) if names.count(n) > 1]
            )
            if bad:
                raise InputError(
                    f"{path}:{line}: header column {bad[0]!r} is not one of relation, phrase, inverse_phrase, symmetric"
                )
            columns = ("relation", *names[1:])
            continue
        if len(cells) > len(columns):
            raise InputError(
                f"{path}:{line}: expected at most {len(columns)} {kind} columns ({', '.join(columns)}), "
                f"got {len(cells)}: {cells!r}"
            )
        row = dict(zip(columns, cells, strict=False))
        rid = row.pop("relation")
        if rid in out:
            raise InputError(
                f"{path}:{line}: relation {rid!r} is given twice (first at line {first_line[rid]})"
            )
        flag = row.get("symmetric", "")
        if flag and flag.lower() not in _TRUE | _FALSE:
            raise InputError(
                f"{path}:{line}: relation {rid!r}: symmetric must be true or false (or empty), got {flag!r}"
            )
        meta = RelationMeta(
            row.get("phrase") or None,
            row.get("inverse_phrase") or None,
            (flag.lower() in _TRUE) if flag else None,
            f"{path}:{line}",
        )
        if meta.phrase is None and meta.inverse_phrase is None and meta.symmetric is None:
            raise InputError(
                f"{path}:{line}: relation {rid!r}: nothing to set; expected {', '.join(columns[1:])} after the relation"
            )
        first_line[rid] = line
        out[rid] = meta
    if not out:
        raise InputError(
            f"{path}: no relations found; expected rows 'relation, phrase, inverse_phrase, symmetric'"
        )
    return out
