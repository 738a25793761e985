"""Graph file formats, a registry: each format's module registers its reader with
`register_kg_format` (kg/kgjson.py: json; kg/triples.py: tsv, csv; a plugin: its own), and
kg/sources.py's `import_kg` picks one by extension, else by the file's first line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kgreason.registry import Registry

if TYPE_CHECKING:
    from kgreason.kg.graph import KnowledgeGraph
    from kgreason.kg.relation_meta import RelationMeta

FormatLoader = Callable[[Path, "Mapping[str, RelationMeta] | None"], "KnowledgeGraph"]


@dataclass(frozen=True)
class KGFormat:
    name: str
    description: str
    suffixes: tuple[str, ...]
    load: FormatLoader  # (file, relation metadata overrides) -> graph
    sniff: Callable[[str], bool] | None = None  # first non-blank line -> "this is mine"


KG_FORMATS: Registry[KGFormat] = Registry("KG file format")


def register_kg_format(name: str, description: str, suffixes: tuple[str, ...],
                       sniff: Callable[[str], bool] | None = None) -> Callable[[FormatLoader], FormatLoader]:
    """Decorator: files ending in one of `suffixes` (or passing `sniff`) are read by `fn(path, meta)`."""

    def wrap(fn: FormatLoader) -> FormatLoader:
        KG_FORMATS.add(name, KGFormat(name, description, tuple(s.lower() for s in suffixes), fn, sniff))
        return fn

    return wrap
