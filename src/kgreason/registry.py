"""Registries: the things users extend (reward presets, KG sources, shortcut baselines) by name.

One small class serves every registry (lm-evaluation-harness / PyKEEN style): a decorator adds an
entry, `get` answers an unknown name with the closest registered ones, and plugins are imported
once, the first time any registry is asked about a name it lacks or for its full list:

* the `kgreason.plugins` entry-point group (and, for shortcut baselines, the older
  `kgreason.baselines` group) of any installed package;
* the modules named in `$KGREASON_PLUGINS` (comma-separated), for a user's own folder on
  PYTHONPATH.

A plugin module only has to import kgreason and call a `register_*` decorator. Torch-free.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from kgreason.io import InputError

T = TypeVar("T")

PLUGIN_GROUPS = ("kgreason.plugins", "kgreason.baselines")
PLUGINS_ENV = "KGREASON_PLUGINS"
_plugins_loaded = False


def load_plugins() -> None:
    """Import every plugin module once (entry points first, then $KGREASON_PLUGINS)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for group in PLUGIN_GROUPS:
        for ep in entry_points(group=group):
            ep.load()
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise InputError(f"{PLUGINS_ENV}: cannot import {module!r}: {exc}") from None


class Registry(Generic[T]):
    """Named entries of one kind. `kind` names it in messages ("reward preset")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register `entry` under `name`; a later registration under the same name replaces it."""
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind} needs a non-empty name")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str, wrap: Callable[[T], T] | None = None) -> Callable[[T], T]:
        def register(obj: T) -> T:
            self.add(name, wrap(obj) if wrap else obj)
            return obj

        return register

    def get(self, name: str) -> T:
        """The entry `name`, or an InputError listing the closest registered names."""
        if name not in self._entries:
            load_plugins()
        if name not in self._entries:
            raise InputError(self.unknown_message(name))
        return self._entries[name]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (registered: {', '.join(self.names())})"

    def names(self, plugins: bool = True) -> list[str]:
        """Registered names; `plugins=False` lists what is registered so far without importing plugins
        (for lists taken at import time, where a plugin importing kgreason would be circular)."""
        if plugins:
            load_plugins()
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        load_plugins()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def values(self, plugins: bool = True) -> list[T]:
        if plugins:
            load_plugins()
        return list(self._entries.values())

    def keys(self) -> list[str]:
        return self.names()

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def clear(self) -> None:
        self._entries.clear()

    def update(self, entries: dict[str, T]) -> None:
        self._entries.update(entries)

    def check(self, name: str) -> str:
        """argparse `type=`-style validator: `name` if registered, else a one-line error."""
        self.get(name)
        return name
