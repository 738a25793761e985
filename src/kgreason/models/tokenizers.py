"""Tokenizers read once per process: each caller gets an object of its own over one parsed copy.

Why: building the SmolLM2 tokenizer from its tokenizer.json costs 0.1-0.15 s of CPU, and one run's
stages (or one experiment's arm-seeds, in one process) ask for it dozens of times. The Rust tokenizer
underneath is shared: transformers sets its padding and truncation afresh on every encode call, and
kgreason adds no tokens to it. The Python attributes a caller may change (padding side, special tokens,
chat template) live on the caller's own copy.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

# the files that define a tokenizer folder: a changed file (a re-conversion) is read afresh
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def tokenizer_from_folder(folder: str | Path) -> Any:
    """The folder's tokenizer, pad token set (the eos token where it has none), as a copy of its own."""
    folder = Path(folder).resolve()
    parsed = _parsed(str(folder), _stamp(folder))
    tok = copy.copy(parsed)
    for name, value in vars(parsed).items():
        if isinstance(value, dict | list | set):  # containers a caller could mutate: one per copy
            tok.__dict__[name] = copy.copy(value)
    return tok


def _stamp(folder: Path) -> tuple:
    stamp = []
    for name in TOKENIZER_FILES:
        path = folder / name
        stamp.append((name, path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else (name, None))
    return tuple(stamp)


@lru_cache(maxsize=4)
def _parsed(folder: str, stamp: tuple) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
