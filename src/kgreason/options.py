"""Options declared once, as dataclass fields, turned into command-line flags and YAML config files.

Every user-facing option is a field declared with `option(default, help=...)` in kgreason/config.py
(TRL's and nanoGPT's idea: one default, one help text). From those fields this module builds:

* the argparse flags of a command (`add_options`): `--max-steps` for a field `max_steps`; a nested
  dataclass either keeps its fields' flags (`flatten=True`, e.g. TrainOptions inside SFTOptions) or
  prefixes them (`prefix="sft"`: `--sft-max-steps`); a field may name its own flag (`flag="kg"`);
* the values of a YAML file (`--config FILE.yaml`) laid over the defaults, keys mirroring the
  dataclass (`sft: {train: {max_steps: 50}}`), each checked like the flag would be and reported with
  file and line;
* the typed object back from a run folder's config.json (`from_dict`).

Precedence, lowest first: the dataclass default, a named profile's overrides, the YAML file, the
flags given on the command line. Torch-free and import-light: the CLI builds its parser from here.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from kgreason.io import InputError
from kgreason.yaml_lines import Located, plain, read_yaml_lines

T = TypeVar("T")
Parse = Callable[[str], Any]


def option(default: Any = MISSING, *, help: str, default_factory: Any = MISSING, flag: str | None = None,
           short: str | None = None, parse: Parse | None = None, choices: Any = None, metavar: str | None = None,
           cli: bool = True, flatten: bool = False, prefix: str | None = None) -> Any:
    """A dataclass field with its help text and how the command line spells it.

    `parse`: an argtypes validator (str -> value, argparse.ArgumentTypeError on a bad value), used
    for flags and YAML values alike. `choices`: a tuple, or a zero-argument callable returning the
    names (a registry's, read when the parser is built, after plugins load). `cli=False`: settable
    from YAML only. For a nested dataclass: `flatten` puts its flags beside the parent's, `prefix`
    names them `--PREFIX-FLAG`."""
    meta = {"help": help, "flag": flag, "short": short, "parse": parse, "choices": choices, "metavar": metavar,
            "cli": cli, "flatten": flatten, "prefix": prefix}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# --- walking the fields --------------------------------------------------------------------------
@dataclass(frozen=True)
class Leaf:
    """One settable value: its dotted path in the config, its flag, and how to check a value."""

    path: str  # "sft.train.max_steps"
    flag: str  # "--sft-max-steps"
    field: Field
    type: Any

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.field.metadata

    def choices(self) -> tuple[str, ...] | None:
        c = self.meta.get("choices")
        return tuple(c() if callable(c) else c) if c else None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Resolved once per class: every parser build walks the whole option tree (136 lookups), and
    # resolving their string annotations was a quarter of each build. Callers only read it.
    return typing.get_type_hints(cls)


def _nested_class(tp: Any) -> type | None:
    """The dataclass inside `tp` (`X`, `X | None`), if any."""
    if is_dataclass(tp):
        return tp  # type: ignore[return-value]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1 and is_dataclass(inner[0]):
            return inner[0]  # type: ignore[return-value]
    return None


def leaves(cls: type, path: str = "", prefix: str = "") -> Iterator[Leaf]:
    """Every settable field of `cls` and its nested dataclasses, with its flag."""
    hints = _hints(cls)
    for f in fields(cls):
        tp = hints[f.name]
        nested = _nested_class(tp)
        meta = f.metadata
        if nested is not None:
            if meta.get("flatten"):
                sub = prefix
            else:
                sub = f"{prefix}{meta.get('prefix') or f.name.replace('_', '-')}-"
            yield from leaves(nested, f"{path}{f.name}.", sub)
            continue
        flag = f"--{prefix}{meta.get('flag') or f.name.replace('_', '-')}"
        yield Leaf(f"{path}{f.name}", flag, f, tp)


def _scalar_kind(tp: Any) -> Any:
    """int, float, str, bool, or list for `list[str]`; Optional[X] -> X."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _scalar_kind(inner[0]) if len(inner) == 1 else str
    if origin in (list, tuple):
        return list
    return tp if tp in (int, float, str, bool) else str


def _optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def parse_text(leaf: Leaf, text: str) -> Any:
    """A command-line string -> the field's value (argparse.ArgumentTypeError when it is not one)."""
    kind = _scalar_kind(leaf.type)
    if kind is list:
        items = [s.strip() for s in text.split(",") if s.strip()]
        choices = leaf.choices()
        bad = [s for s in items if choices and s not in choices]
        if bad or not items:
            want = f"a comma list of {', '.join(choices)}" if choices else "a comma list"
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return items
    parse = leaf.meta.get("parse")
    if parse is not None:
        return parse(text)
    if kind is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
    choices = leaf.choices()
    if choices and text not in choices:
        close = difflib.get_close_matches(text, choices, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}{hint}")
    return text


def check_value(leaf: Leaf, value: Any) -> Any:
    """A YAML (or JSON) value -> the field's value, checked as the flag would check it."""
    kind = _scalar_kind(leaf.type)
    if value is None:
        if _optional(leaf.type):
            return None
        raise argparse.ArgumentTypeError("expected a value, got nothing")
    if kind is list:
        if isinstance(value, str):
            return parse_text(leaf, value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise argparse.ArgumentTypeError(f"expected a list of names, got {value!r}")
        return parse_text(leaf, ",".join(value))
    if kind is bool:
        if not isinstance(value, bool):
            raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
        return value
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected text, got {value!r}")
    # The same validator as the flag (ranges, registries); numbers go through their text form.
    if kind is str:
        return parse_text(leaf, value) if leaf.meta.get("parse") or leaf.choices() else value
    return parse_text(leaf, repr(value)) if leaf.meta.get("parse") else value


# --- the command line ----------------------------------------------------------------------------
def show(value: Any) -> str:
    """A default as the flag takes it: lists as comma lists, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def add_options(parser: argparse.ArgumentParser, cls: type, defaults: Any = None, *, skip: tuple[str, ...] = (),
                title: str | None = None) -> list[Leaf]:
    """Add one flag per field of `cls` (see module docs). Flags default to "not given" so a YAML file
    or a profile underneath is not overwritten; help shows the default from `defaults` (or the
    dataclass's own). Returns the leaves, for `overrides_from_args`."""
    defaults = defaults if defaults is not None else cls()
    group = parser.add_argument_group(title) if title else parser
    added = []
    for leaf in leaves(cls):
        if leaf.path in skip or not leaf.meta.get("cli", True):
            continue
        kind = _scalar_kind(leaf.type)
        names = [leaf.flag] + ([leaf.meta["short"]] if leaf.meta.get("short") else [])
        help_text = leaf.meta["help"].replace("%", "%%")
        default = get_path(defaults, leaf.path)
        kw: dict[str, Any] = {"dest": leaf.path, "default": argparse.SUPPRESS}
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
            help_text += f" (default: {'on' if default else 'off'})"
        else:
            kw["type"] = (lambda text, leaf=leaf: parse_text(leaf, text))
            kw["metavar"] = leaf.meta.get("metavar") or _metavar(leaf)
            if default is not None and default != "" and "default" not in help_text:
                help_text += f" (default: {show(default)})"
        group.add_argument(*names, help=help_text, **kw)
        added.append(leaf)
    return added


def _metavar(leaf: Leaf) -> str:
    choices = leaf.choices()
    if choices and _scalar_kind(leaf.type) is not list and len(choices) <= 6:
        return "{" + ",".join(choices) + "}"
    kind = _scalar_kind(leaf.type)
    return {int: "N", float: "X", list: "A,B"}.get(kind, "TEXT")


def overrides_from_args(args: argparse.Namespace, added: list[Leaf]) -> dict[str, Any]:
    """The dotted paths of the flags actually given, with their values."""
    given = vars(args)
    return {leaf.path: given[leaf.path] for leaf in added if leaf.path in given}


# --- YAML files ----------------------------------------------------------------------------------
def read_config_file(path: str | Path, cls: type, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A YAML (or JSON) file of options for `cls` -> {dotted path: checked value}. Unknown keys,
    repeated keys, wrong types and out-of-range values are errors naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"--config {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--config {path}: cannot read it ({exc})") from None
    tree = read_yaml_lines(text, path)
    if tree is None:
        return {}
    by_path = {leaf.path: leaf for leaf in leaves(cls)}
    out: dict[str, Any] = {}
    walk_options(tree, "", path, by_path, skip, out)
    return out


def walk_options(tree: Any, prefix: str, path: Path, by_path: dict[str, Leaf], skip: tuple[str, ...],
                 out: dict[str, Any], line: int = 1) -> None:
    """Check the located mapping `tree` (kgreason.yaml_lines) of options under `prefix` into `out`
    ({dotted path: checked value}); `line` is where a tree that is not a mapping was given."""
    if not isinstance(tree, Located):
        raise InputError(f"{path}:{line}: expected a mapping of option names"
                         + (f" under {prefix.rstrip('.')!r}" if prefix else ""))
    for key, value in tree.items():
        key_line = tree.key_lines[key]
        where = f"{path}:{key_line}"
        full = f"{prefix}{key}"
        if any(p.startswith(full + ".") for p in by_path):
            walk_options(value, full + ".", path, by_path, skip, out, key_line)
            continue
        leaf = by_path.get(full)
        if leaf is None:
            names = sorted({p[len(prefix):].split(".")[0] for p in by_path if p.startswith(prefix)})
            close = difflib.get_close_matches(str(key), names, n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; expected one of {', '.join(names)}"
            raise InputError(f"{where}: unknown option {full!r}{hint}")
        if full in skip:
            raise InputError(f"{where}: {full!r} is set by another option here (see --help)")
        try:
            out[full] = check_value(leaf, plain(value))
        except argparse.ArgumentTypeError as exc:
            raise InputError(f"{where}: {full}: {exc}") from None


# --- building and reading back the typed object ----------------------------------------------------
def with_overrides(obj: T, overrides: Mapping[str, Any]) -> T:
    """A copy of `obj` with each dotted path set (nested dataclasses copied, never shared)."""
    obj = from_dict(type(obj), to_dict(obj))
    for path, value in overrides.items():
        *parents, name = path.split(".")
        target = obj
        for part in parents:
            target = getattr(target, part)
        setattr(target, name, list(value) if isinstance(value, list) else value)
    return obj


def to_dict(obj: Any) -> dict:
    """Dataclass -> JSON-safe dict (paths as strings), as written to config.json."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """The typed object back from `to_dict`'s output (unknown keys are errors; missing keys take
    the default, so a config written by an older kgreason still reads)."""
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = _hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"{source}: unknown {cls.__name__} option(s) {', '.join(unknown)}")
    kw: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        nested = _nested_class(hints[f.name])
        if nested is not None and value is not None:
            value = from_dict(nested, value, f"{source}.{f.name}")
        elif isinstance(value, list):
            value = list(value)
        kw[f.name] = value
    return cls(**kw)


def resolve(cls: type[T], base: T, config_file: str | None, args: argparse.Namespace | None,
            added: list[Leaf], skip: tuple[str, ...] = ()) -> T:
    """base (defaults or a profile) <- the YAML file <- the flags given."""
    overrides: dict[str, Any] = {}
    if config_file:
        overrides.update(read_config_file(config_file, cls, skip))
    if args is not None:
        overrides.update(overrides_from_args(args, added))
    return with_overrides(base, overrides)


def to_yaml(obj: Any) -> str:
    """The options as a YAML file `--config` reads back (`kgreason run --print-config`)."""
    import yaml

    return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=False)


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of `to_dict(cls(...))`: the same fields, types and choices as the flags."""
    hints = _hints(cls)
    props: dict[str, Any] = {}
    for f in fields(cls):
        tp = hints[f.name]
        nested = _nested_class(tp)
        if nested is not None:
            schema = json_schema(nested)
        else:
            kind = _scalar_kind(tp)
            schema = {int: {"type": "integer"}, float: {"type": "number"}, bool: {"type": "boolean"},
                      list: {"type": "array", "items": {"type": "string"}}}.get(kind, {"type": "string"})
            inner = [a for a in typing.get_args(tp) if a is not type(None)] if _optional(tp) else [tp]
            if len(inner) == 1 and (inner[0] is dict or typing.get_origin(inner[0]) is dict):
                schema = {"type": "object"}
            choices = f.metadata.get("choices")
            if choices and not callable(choices):  # a registry's names change with plugins: not an enum
                schema = {**schema, "enum": list(choices)} if kind is str else \
                    {**schema, "items": {"type": "string", "enum": list(choices)}}
        if _optional(tp):
            schema = {"anyOf": [schema, {"type": "null"}]}
        props[f.name] = schema
    return {"type": "object", "additionalProperties": False, "properties": props}
