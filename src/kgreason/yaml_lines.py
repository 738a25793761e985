"""YAML read into plain values that remember their lines, so that every error names file and line.

The one line-tracking YAML reader: option files (`--config`, profiles), experiment grids and KG
relation sidecars all read through it. It sits below every package (it imports only kgreason.io)
so that kg/ can use it without importing options, which sits above kg/. Torch-free.

The tree: a mapping is a `Located` dict (its own line and the line of each key; a key given twice
is an error, where PyYAML would keep the last silently); a sequence is a list of (item, line)
pairs; a scalar is its Python value. `plain` strips the lines again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kgreason.io import InputError


class Located(dict):
    """A mapping that remembers the line it starts on and the line of each key."""

    line: int = 1
    key_lines: dict[str, int]


def put_once(located: Located, key: str, value: Any, line: int, path: Path | str) -> None:
    """Add a key, refusing a repeated one (JSON and YAML parsers would keep the last silently)."""
    if key in located:
        raise InputError(f"{path}:{line}: {key!r} is given twice (first at line {located.key_lines[key]})")
    located[key] = value
    located.key_lines[key] = line


def read_yaml_lines(text: str, path: Path | str) -> Any:
    """`text` (the contents of `path`) as a located tree; None for an empty document.
    Malformed YAML, a non-text key, a repeated key or a bad value is an InputError at its line."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with transformers
        raise InputError(f"{path}: reading YAML needs PyYAML (pip install pyyaml)") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(f"{where}: malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: malformed YAML: {exc}") from None
    constructor = yaml.SafeLoader("")

    def convert(n: Any) -> Any:
        if isinstance(n, yaml.MappingNode):
            out = Located()
            out.line = n.start_mark.line + 1
            out.key_lines = {}
            for k, v in n.value:
                key = convert(k)
                if not isinstance(key, str):
                    shown = repr(key) if len(repr(key)) <= 60 else repr(key)[:57] + "..."
                    raise InputError(f"{path}:{k.start_mark.line + 1}: expected a text key, got {shown}")
                put_once(out, key, convert(v), k.start_mark.line + 1, path)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [(convert(v), v.start_mark.line + 1) for v in n.value]
        try:
            return constructor.construct_object(n, deep=True)
        except yaml.YAMLError as exc:
            raise InputError(f"{path}:{n.start_mark.line + 1}: bad YAML value: {exc}") from None

    return None if node is None else convert(node)


def plain(tree: Any) -> Any:
    """The located tree as the plain values yaml.safe_load would give (dicts, lists, scalars)."""
    if isinstance(tree, Located):
        return {k: plain(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [plain(item) for item, _line in tree]
    return tree
