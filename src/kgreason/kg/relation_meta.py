"""Relation metadata (phrase, inverse phrase, symmetric) from a sidecar file (JSON, YAML, TSV, CSV)
or command-line flags, laid over what a graph file says."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kgreason.io import InputError
from kgreason.kg.checks import read_rows, short
from kgreason.kg.graph import Relation
from kgreason.yaml_lines import Located, put_once, read_yaml_lines


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
                    f"{where}: relations[{i}]: expected an object with 'relation' and 'phrase', got {short(item)}"
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
            f"{where}: expected {shape}, got {short(tree) if tree is not None else 'an empty file'}"
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
            f"'symmetric', got {short(value)}"
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
                f"{path}:{at}: relation {rid!r}: {key!r} must be a non-empty string, got {short(v)}"
            )
        texts[key] = " ".join(v.split()) if v is not None else None
    symmetric = value.get("symmetric")
    if symmetric is not None and not isinstance(symmetric, bool):
        at = value.key_lines.get("symmetric", line)
        raise InputError(
            f"{path}:{at}: relation {rid!r}: 'symmetric' must be true or false, got {short(symmetric)}"
        )
    return RelationMeta(texts["phrase"], texts["inverse_phrase"], symmetric, origin)


def _meta_from_rows(path: Path, delimiter: str) -> dict[str, RelationMeta]:
    kind = "TSV" if delimiter == "\t" else "CSV"
    columns: tuple[str, ...] = ("relation", *_META_FIELDS)
    out: dict[str, RelationMeta] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    for line, cells in read_rows(path, delimiter, kind):
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
