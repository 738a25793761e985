"""Where converted models live: $KGREASON_CACHE (default ~/.cache/kgreason), built once, atomically.

Why a lock and a rename: several processes (tests, a training job, the demo) may ask for the same
converted model at once; each would otherwise spend a minute converting and could see a half-written
folder. One builds under a file lock into a temporary folder and renames it into place; the others wait
and reuse it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from kgreason.io import replace_dir


def cache_root() -> Path:
    env = os.environ.get("KGREASON_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kgreason"


def models_dir() -> Path:
    return cache_root() / "models"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def build_once(target: Path, build: Callable[[Path], None], force: bool = False) -> tuple[Path, bool]:
    """Return (target, built_now). `build(tmp_dir)` fills a temporary folder that is renamed to `target`.

    A folder counts as finished only once renamed, so an interrupted build leaves nothing behind
    that a later call would mistake for a finished one.
    """
    target = Path(target)
    if target.is_dir() and not force:
        return target, False
    with _file_lock(target.parent / f".{target.name}.lock"):
        if target.is_dir() and not force:  # another process finished it while we waited
            return target, False
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            build(tmp)
            # mkdtemp (and safetensors) create private files; the cache is shared like any other folder.
            tmp.chmod(0o755)
            for path in tmp.rglob("*"):
                path.chmod(0o755 if path.is_dir() else 0o644)
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target, True
