"""Tokenizers read once per process: each caller gets an object of its own over one parsed copy.

Why: building the SmolLM2 tokenizer from its tokenizer.json costs 0.1-0.15 s of CPU, and one run's
stages (or one experiment's arm-seeds, in one process) ask for it dozens of times. The Rust tokenizer
underneath is shared: transformers sets its padding and truncation afresh on every encode call, and
kgreason adds no tokens to it (a caller that must, `add_tokens` or a new post-processor, loads its own
with `AutoTokenizer.from_pretrained`). The Python attributes a caller may change (padding side, special
tokens, chat template) live on the caller's own copy. Threads: the demo's workers encode without
padding or truncation, so they only read the shared tokenizer; a padded encode in one thread while
another encodes would make PyO3 refuse the second borrow. Only fast (tokenizer.json) tokenizers are
shared; any other kind is loaded afresh for each caller.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

from kgreason.io import file_version

# the files that define a tokenizer folder: a changed file (a re-conversion) is read afresh
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model")


def tokenizer_from_folder(folder: str | Path) -> Any:
    """The folder's tokenizer, pad token set (the eos token where it has none), as a copy of its own."""
    folder = Path(folder).resolve()
    parsed = _parsed(str(folder), _stamp(folder))
    if parsed is None:  # not a fast tokenizer: its Python-side state is not only containers
        return _load(str(folder))
    tok = copy.copy(parsed)
    for name, value in vars(parsed).items():
        # containers a caller could mutate (and the AddedToken objects in them): one set per copy
        if isinstance(value, dict | list | set):
            tok.__dict__[name] = copy.deepcopy(value)
    return tok


def save_tokenizer(tok: Any, folder: str | Path) -> None:
    """`tok.save_pretrained(folder)` without the padding or truncation the last encode call (any
    copy's, the Rust tokenizer being shared) left set: tokenizer.json stores both, and a reload
    would take them as its defaults."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        backend.no_padding()
        backend.no_truncation()
    tok.save_pretrained(str(folder))


def _stamp(folder: Path) -> tuple:
    stamp = []
    for name in TOKENIZER_FILES:
        path = folder / name
        stamp.append((name, file_version(path) if path.is_file() else None))
    return tuple(stamp)


@lru_cache(maxsize=4)
def _parsed(folder: str, stamp: tuple) -> Any:
    """The folder's fast tokenizer, parsed once per file version; None for any other kind (not kept)."""
    tok = _load(folder)
    return tok if getattr(tok, "is_fast", False) else None


def _load(folder: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
