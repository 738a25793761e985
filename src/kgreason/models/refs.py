"""Model references: `bundled:smollm2-135m`, `tiny:random[:SEED]`, a local HF folder, or a `.gguf` file.

A reference is a string that every command accepts and every run records, so a later command can
reload exactly the same model. Resolving never touches the network.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from kgreason.io import InputError
from kgreason.models.cache import build_once, models_dir
from kgreason.models.gguf import BUNDLED_NAME, bundled_gguf_path, check_gguf_file, convert_gguf

BUNDLED_REFS = {f"bundled:{BUNDLED_NAME}": BUNDLED_NAME, "bundled": BUNDLED_NAME, BUNDLED_NAME: BUNDLED_NAME}
ACCEPTED = "bundled:smollm2-135m, tiny:random[:SEED], a local Hugging Face folder, or a .gguf file"


@dataclass(frozen=True)
class ModelRef:
    """A resolved reference. `path` is the HF folder (for gguf/bundled: where the conversion goes)."""

    kind: str  # "bundled" | "gguf" | "folder" | "tiny"
    ref: str  # canonical string to record in runs and completions
    path: Path | None = None
    source: Path | None = None  # the GGUF file for kinds "bundled" and "gguf"
    seed: int = 0  # tiny:random only

    @property
    def is_prepared(self) -> bool:
        return self.kind == "tiny" or (self.path is not None and (self.path / "config.json").is_file())


def resolve_model_ref(ref: str | Path) -> ModelRef:
    """Parse a reference; raises InputError naming the reference and the accepted forms."""
    text = str(ref).strip()
    if text in BUNDLED_REFS:
        return ModelRef("bundled", f"bundled:{BUNDLED_NAME}", models_dir() / BUNDLED_NAME, None)
    if text.startswith("tiny:"):
        return _resolve_tiny(text)
    path = Path(text).expanduser()
    if text.lower().endswith(".gguf"):
        gguf = check_gguf_file(path)
        return ModelRef("gguf", str(gguf), models_dir() / _gguf_cache_name(gguf), gguf)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"{path}: not a Hugging Face model folder (no config.json); expected {ACCEPTED}")
        return ModelRef("folder", str(path.resolve()), path.resolve())
    if path.exists():
        raise InputError(f"{path}: unsupported model file (expected a .gguf file or a folder); accepted: {ACCEPTED}")
    raise InputError(f"model {text!r} not found; expected {ACCEPTED}")


def _resolve_tiny(text: str) -> ModelRef:
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[1] != "random":
        raise InputError(f"model {text!r}: expected tiny:random or tiny:random:SEED")
    try:
        seed = int(parts[2]) if len(parts) == 3 else 0
    except ValueError:
        raise InputError(f"model {text!r}: the seed after tiny:random: must be an integer") from None
    return ModelRef("tiny", "tiny:random" if seed == 0 else f"tiny:random:{seed}", None, None, seed)


def _gguf_cache_name(gguf: Path) -> str:
    st = gguf.stat()
    key = f"{gguf}:{st.st_size}:{int(st.st_mtime)}".encode()
    return f"gguf-{gguf.stem.lower()}-{hashlib.sha1(key).hexdigest()[:10]}"


def prepare_model(ref: str | Path = f"bundled:{BUNDLED_NAME}", out: Path | None = None, force: bool = False) -> tuple[Path, bool]:
    """Make sure a reference has an HF folder on disk; return (folder, converted_now).

    GGUF references are converted once into the cache (or `out`); folders are used as they are.
    """
    mref = resolve_model_ref(ref)
    if mref.kind == "tiny":
        raise InputError("tiny:random is built in memory; there is nothing to prepare")
    if mref.kind == "folder":
        return mref.path, False  # type: ignore[return-value]
    source = mref.source or bundled_gguf_path()
    target = Path(out).expanduser().resolve() if out else mref.path
    assert target is not None
    return build_once(target, lambda tmp: convert_gguf(source, tmp), force=force)


def hf_folder(ref: str | Path) -> Path:
    """The HF folder for a non-tiny reference, converting a GGUF (bundled or local) on first use."""
    return prepare_model(ref)[0]
