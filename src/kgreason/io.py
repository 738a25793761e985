"""Small file helpers every module shares: atomic writes and append-only JSONL.

Why: long jobs must never leave a half-written file behind, and resumable jobs read back the
records they appended before an interruption (a torn last line is ignored, not fatal).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """Bad user input; the message names the file, line and what was expected."""


class RunFailed(RuntimeError):
    """A run that stopped for a reason outside its input (a stage's process died): the CLI prints
    the message, which says what was kept and how to resume, and exits 1 without a traceback."""


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would have.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike) -> Iterator[Path]:
    """A fresh folder beside `target` to write into; on a clean exit it is made readable to others
    (mkdtemp makes it private, and an export is meant to be shared) and replaces `target`
    (replace_dir); on any error, an interrupt included, it is removed and `target` is untouched."""
    target = Path(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move a finished temporary folder into place, swapping out any previous version of it.

    Why: a reader must only ever see a whole folder (a converted model, an adapter), never a
    half-copied one; the old version is moved aside first and removed once the new one is in.
    """
    tmp, target = Path(tmp), Path(target)
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def check_input_file(path: Path) -> None:
    """InputError unless `path` is an existing file (not a folder)."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a file")


def file_version(path: str | os.PathLike) -> tuple[int, int, int, int]:
    """(mtime, ctime, inode, size) of a file: a cache key that changes when the file is rewritten,
    replaced or copied over, even by a copy that keeps mtime and size (`cp -p`: ctime and inode move)."""
    st = Path(path).stat()
    return st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size


def file_digest(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (whether two files are the same)."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    check_input_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected JSON") from None


def iter_jsonl(path: str | os.PathLike, tolerate_torn_tail: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record). A malformed line raises InputError naming file and line.

    With `tolerate_torn_tail`, a malformed *last* line (a write cut off by a crash) is skipped,
    which is what resuming an append-only log needs.
    """
    path = Path(path)
    check_input_file(path)
    try:
        with path.open(encoding="utf-8") as f:
            lines = f.readlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected JSON lines") from None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if tolerate_torn_tail and i == len(lines):
                return
            raise InputError(f"{path}:{i}: malformed JSON line: {exc.msg}") from None
        if not isinstance(rec, dict):
            raise InputError(f"{path}:{i}: expected a JSON object, got {type(rec).__name__}")
        yield i, rec


def read_jsonl(path: str | os.PathLike, tolerate_torn_tail: bool = False) -> list[dict]:
    return [rec for _, rec in iter_jsonl(path, tolerate_torn_tail)]


class JsonlAppender:
    """Append-only JSONL log: one flushed line per record, so a crash loses at most one line.

    Opening truncates a torn last line left by an earlier crash so new records start cleanly.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        self._f = self.path.open("a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drop_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    with path.open("r+b") as f:
        f.truncate(cut)
