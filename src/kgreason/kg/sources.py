"""Where a graph comes from, as two registries: KG sources by scheme (here) and file formats (kg/formats.py).

A `--kg` value is read by `open_kg`:

* `SCHEME:REST` where SCHEME is a registered KG source: `builtin:devops[:SIZE]` builds the built-in
  DevOps graph (seeded by the caller's data seed), `builtin:NAME` reads a graph packaged with
  kgreason (`builtin:umls`); a plugin adds its own scheme (a database, a SPARQL dump, ...);
* anything else is a file, read by the registered format its extension (or first line) names:
  kg.json / the hobby project's JSON, TSV or CSV triples; a plugin adds formats too.

Add a source or a format from outside the package (a module named by $KGREASON_PLUGINS or a
`kgreason.plugins` entry point, see kgreason/registry.py)::

    from kgreason.kg.sources import register_kg_source

    @register_kg_source("mygraph", "my team's incident graph")
    def load_mygraph(rest: str, seed: int):
        return kg_from_dict(...)          # any KnowledgeGraph

Torch-free, like the rest of kg/.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import kgreason.kg.triples  # noqa: F401  (a format module registers itself on import: tsv, csv)
from kgreason.io import InputError
from kgreason.kg.builtin import SIZES, build_devops_kg
from kgreason.kg.formats import KG_FORMATS
from kgreason.kg.graph import KnowledgeGraph
from kgreason.kg.kgjson import kg_from_dict, load_kg  # also registers the json format
from kgreason.kg.relation_meta import RelationMeta
from kgreason.registry import Registry

SourceLoader = Callable[[str, int], KnowledgeGraph]
DATA_DIR = Path(__file__).resolve().parent / "data"  # graphs packaged with kgreason: builtin:NAME


@dataclass(frozen=True)
class KGSource:
    scheme: str
    description: str
    load: SourceLoader  # (the text after "SCHEME:", the data seed) -> graph


KG_SOURCES: Registry[KGSource] = Registry("KG source")


def register_kg_source(scheme: str, description: str) -> Callable[[SourceLoader], SourceLoader]:
    """Decorator: `--kg SCHEME:REST` calls `fn(REST, seed)`."""

    def wrap(fn: SourceLoader) -> SourceLoader:
        KG_SOURCES.add(scheme, KGSource(scheme, description, fn))
        return fn

    return wrap


# --- built-in sources and formats ------------------------------------------------------------------
@register_kg_source("builtin", "builtin:devops[:SIZE] (small, medium, large or an edge count) builds the DevOps "
                    "graph from the data seed; builtin:NAME reads a graph packaged with kgreason (builtin:umls)")
def _builtin(rest: str, seed: int) -> KnowledgeGraph:
    name, _, size = rest.partition(":")
    if name == "devops":
        if size and size not in SIZES and not size.isdigit():
            raise InputError(f"builtin:devops:{size}: the size must be {', '.join(SIZES)} or an edge count")
        return build_devops_kg(seed=seed, size=size or "small")
    found = DATA_DIR / f"{name}.json"
    if not name or "/" in name or size or not found.is_file():
        raise InputError(f"builtin:{rest}: no built-in graph of that name; built-in graphs: "
                         f"{', '.join(builtin_graph_names())}")
    return load_kg(found)


def builtin_graph_names() -> list[str]:
    return ["builtin:devops[:SIZE]", *("builtin:" + p.stem for p in sorted(DATA_DIR.glob("*.json")))]


# --- reading ---------------------------------------------------------------------------------------
def source_scheme(source: str | os.PathLike) -> str | None:
    """The registered scheme `source` names (`builtin` for `builtin:umls`), or None for a file path.
    One-letter schemes are drive letters (C:\\graphs\\kg.json), never sources."""
    text = os.fspath(source)
    scheme, sep, _ = text.partition(":")
    if not sep or len(scheme) < 2 or not scheme.replace("_", "").replace("-", "").isalnum():
        return None
    if scheme in KG_SOURCES:
        return scheme
    raise InputError(f"{text}: {KG_SOURCES.unknown_message(scheme)}")


def check_kg_source(source: str | os.PathLike) -> None:
    """Fail early (before a run folder exists) on a --kg that names no file and no registered source."""
    if source_scheme(source) is None and not Path(source).is_file():
        raise InputError(f"--kg {source}: file not found")


def open_kg(source: str | os.PathLike, seed: int = 0, fmt: str | None = None,
            relation_meta: Mapping[str, RelationMeta] | None = None, json_only: bool = False) -> KnowledgeGraph:
    """A graph from a registered source (`SCHEME:REST`) or a file in any registered format.

    `json_only`: a file must be kg.json (or the hobby JSON); the commands that read a graph beside
    task files say "run `kgreason kg import` first" for triples instead of importing them anew."""
    scheme = source_scheme(source)
    if scheme is not None:
        rest = os.fspath(source).partition(":")[2]
        kg = KG_SOURCES.get(scheme).load(rest, seed)
        if relation_meta:  # laid over the source's relations as over a file's (same checks, same errors)
            kg = kg_from_dict(kg.to_dict(), source=os.fspath(source), default_name=kg.name,
                              relation_meta=relation_meta)
        return kg
    if json_only:
        return load_kg(source, relation_meta)
    return import_kg(source, fmt=fmt, relation_meta=relation_meta)


def import_kg(path: str | os.PathLike, fmt: str | None = None,
              relation_meta: Mapping[str, RelationMeta] | None = None) -> KnowledgeGraph:
    """Read a graph file in any registered format: kg.json / hobby JSON, or TSV/CSV triples.

    Triples are `head, relation, tail` rows, with or without a header row; entities get no type
    and their id as label, relations get a phrase derived from their id. `fmt` defaults to the
    file extension, then to a look at the first line. `relation_meta` (from
    `read_relation_meta` and/or flags) sets relations' phrases and symmetric flags.
    `builtin:NAME` still works here (`kgreason kg import builtin:umls`).
    """
    if source_scheme(path) is not None:
        return open_kg(path, fmt=fmt, relation_meta=relation_meta)
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    name = (fmt or guess_format(path)).lower()
    if name not in KG_FORMATS:
        raise InputError(f"{path}: {KG_FORMATS.unknown_message(name)}")
    return KG_FORMATS.get(name).load(path, relation_meta)


def guess_format(path: Path) -> str:
    """The registered format of `path`: by extension, else by its first non-blank line."""
    suffix = path.suffix.lower()
    formats = KG_FORMATS.values()
    for f in formats:
        if suffix in f.suffixes:
            return f.name
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        first = next((line for line in fh if line.strip()), "")
    for f in formats:
        if f.sniff is not None and f.sniff(first):
            return f.name
    names = ", ".join(f.name for f in formats)
    raise InputError(f"{path}: cannot tell which format this is ({names}); pass --format")
