"""Read-only access to the runs folder for the web demo: discovery, safe paths, paged indexes.

Why an index: a training run appends tens of thousands of episodes, and a page of them must load
in milliseconds. Each JSONL file is scanned once, remembering each line's byte offset and the few
fields the lists need; later requests seek to the lines they show. The files are append-only, so
when one grows only the new tail is scanned.

Why the name check: every run or experiment is addressed by its name relative to the runs folder,
and a name is honoured only if discovery listed it. Every file opened is resolved (following
symlinks) and must still lie inside the runs folder, so `../`, absolute paths, encoded traversal
and symlinks pointing elsewhere are refused before anything is read.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason.runs.listing import RUN_MARKERS  # what makes a folder a run: one definition

MAX_DEPTH = 4
_SCAN_TTL_S = 2.0


class NotFound(LookupError):
    """A named run, experiment, phase, task or entity does not exist (HTTP 404)."""


class BadRequest(ValueError):
    """The request is well-formed but cannot be served (HTTP 400)."""


class OutsideRoot(PermissionError):
    """A path resolved outside the runs folder (HTTP 403); never opened."""


@dataclass
class Listing:
    runs: dict[str, Path] = field(default_factory=dict)
    experiments: dict[str, Path] = field(default_factory=dict)
    scanned_at: float = 0.0


def _within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


class RunsFolder:
    """The runs folder: which runs and experiments exist, and safe paths into them."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()
        self._listing = Listing()
        self._lock = threading.Lock()

    # --- discovery -------------------------------------------------------------------------------
    def listing(self, fresh: bool = False) -> Listing:
        with self._lock:
            if fresh or time.monotonic() - self._listing.scanned_at > _SCAN_TTL_S:
                self._listing = self._scan()
            return self._listing

    def _scan(self) -> Listing:
        listing = Listing(scanned_at=time.monotonic())
        if self.root.is_dir():
            self._walk(self.root, "", 0, listing)
        listing.runs = dict(sorted(listing.runs.items()))
        listing.experiments = dict(sorted(listing.experiments.items()))
        return listing

    def _walk(self, folder: Path, prefix: str, depth: int, listing: Listing) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or not _safe_name_part(entry.name):
                continue
            path = Path(entry.path)
            try:
                if not entry.is_dir(follow_symlinks=True):
                    continue
                real = path.resolve()
            except OSError:
                continue
            if not _within(real, self.root):  # a symlink leading out of the runs folder
                continue
            name = f"{prefix}{entry.name}"
            is_experiment = (real / "results.json").is_file()
            is_run = (real / "config.json").is_file() and any((real / m).exists() for m in RUN_MARKERS)
            if is_experiment:
                listing.experiments[name] = real
            elif is_run:
                listing.runs[name] = real
                continue  # runs do not nest
            if depth + 1 < MAX_DEPTH:
                self._walk(real, f"{name}/", depth + 1, listing)

    # --- lookups ---------------------------------------------------------------------------------
    def run_dir(self, name: str) -> Path:
        runs = self.listing().runs
        if name not in runs:
            runs = self.listing(fresh=True).runs
        if name not in runs:
            known = ", ".join(list(runs)[:20]) or "none (make one with `kgreason run`)"
            raise NotFound(f"unknown run {name!r}; known runs: {known}")
        return runs[name]

    def experiment_dir(self, name: str) -> Path:
        exps = self.listing().experiments
        if name not in exps:
            exps = self.listing(fresh=True).experiments
        if name not in exps:
            known = ", ".join(list(exps)[:20]) or "none"
            raise NotFound(f"unknown experiment {name!r}; known experiments: {known}")
        return exps[name]

    def inside(self, base: Path, *parts: str) -> Path:
        """`base/parts...` resolved; raises OutsideRoot unless it stays inside the runs folder."""
        for part in parts:
            if not _safe_name_part(part):
                raise BadRequest(f"bad path component {part!r}")
        path = base.joinpath(*parts).resolve()
        if not _within(path, self.root):
            raise OutsideRoot(f"{'/'.join(parts)}: refused, it resolves outside the runs folder")
        return path

    def contains(self, path: Path) -> bool:
        """Whether `path` (resolved, symlinks followed) is the runs folder or lies inside it."""
        return _within(path.resolve(), self.root)

    def subfolders(self, base: Path, sub: str) -> list[str]:
        """Names of the folders in `base/sub` (e.g. a run's adapters/ or eval/), inside the root only."""
        folder = self.inside(base, sub)
        if not folder.is_dir():
            return []
        names = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.startswith(".") or not _safe_name_part(entry.name):
                continue
            if entry.is_dir() and _within(Path(entry.path).resolve(), self.root):
                names.append(entry.name)
        return names


def _safe_name_part(part: str) -> bool:
    return bool(part) and part not in {".", ".."} and "/" not in part and "\\" not in part and "\x00" not in part


# --- cached file readers -------------------------------------------------------------------------
def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class FileCache:
    """A small LRU of values derived from files, invalidated by (mtime, size)."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, Path], tuple[tuple[int, int] | None, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, kind: str, path: Path, build: Callable[[Path], Any]) -> Any:
        key = (kind, path)
        stamp = _stamp(path)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == stamp:
                self._items.move_to_end(key)
                return hit[1]
        value = build(path)
        with self._lock:
            self._items[key] = (stamp, value)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value


def read_json_file(path: Path) -> Any:
    """JSON from a file, or None when it is missing or malformed (the page says what is missing)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def read_line_at(path: Path, offset: int, length: int) -> dict | None:
    with path.open("rb") as f:
        f.seek(offset)
        raw = f.read(length)
    try:
        rec = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return rec if isinstance(rec, dict) else None


def iter_lines_from(path: Path, start: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for each complete line after byte `start`; a torn last line is left for later."""
    with path.open("rb") as f:
        f.seek(start)
        offset = start
        for line in f:
            if not line.endswith(b"\n"):
                return
            yield offset, line
            offset += len(line)


# --- the JSONL index -----------------------------------------------------------------------------
@dataclass
class Row:
    """One indexed JSONL line: where it is and the small fields lists, filters and curves need."""

    offset: int
    length: int
    key: str  # task id (episodes, predictions, tasks)
    phase: str = ""
    step: int = 0
    round: int = 0
    sample_index: int = 0
    hop: int = 0
    total: float = 0.0
    correct: bool = False
    faithful: bool = False
    kept: bool = False


def episode_row(offset: int, length: int, rec: dict) -> Row | None:
    reward = rec.get("reward") if isinstance(rec.get("reward"), dict) else {}
    task_id = rec.get("task_id", rec.get("id"))
    if task_id is None:
        return None
    return Row(
        offset=offset,
        length=length,
        key=str(task_id),
        phase=str(rec.get("phase", "")),
        step=_int(rec.get("step")),
        round=_int(rec.get("round")),
        sample_index=_int(rec.get("sample_index")),
        total=_float(reward.get("total", rec.get("total"))),
        correct=bool(reward.get("correct", rec.get("correct", False))),
        faithful=bool(reward.get("faithful", rec.get("faithful", False))),
        kept=bool(rec.get("kept", False)),
    )


def task_row(offset: int, length: int, rec: dict) -> Row | None:
    if "id" not in rec:
        return None
    hop = rec.get("hop_len")
    if hop is None:
        hop = len((rec.get("path_star") or {}).get("edges", []) or [])
    return Row(offset=offset, length=length, key=str(rec["id"]), phase=str(rec.get("split", "")), hop=_int(hop))


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


class JsonlIndex:
    """Byte offsets and summary fields of every line of one append-only JSONL file.

    `refresh()` scans only what was appended since the last call; a file that shrank (rewritten)
    is re-indexed from the start. Malformed lines are counted and skipped, not fatal.
    """

    def __init__(self, path: Path, make_row: Callable[[int, int, dict], Row | None]) -> None:
        self.path = path
        self.make_row = make_row
        self.rows: list[Row] = []
        self.bad_lines = 0
        self._end = 0
        self._lock = threading.Lock()

    def refresh(self) -> JsonlIndex:
        with self._lock:
            try:
                size = self.path.stat().st_size
            except OSError:
                self._reset()
                return self
            if size < self._end:
                self._reset()
            if size == self._end:
                self._on_grow()
                return self
            for offset, line in iter_lines_from(self.path, self._end):
                self._end = offset + len(line)
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    self.bad_lines += 1
                    continue
                row = self.make_row(offset, len(line), rec) if isinstance(rec, dict) else None
                if row is None:
                    self.bad_lines += 1
                else:
                    self.rows.append(row)
            self._on_grow()
            return self

    def _reset(self) -> None:
        self.rows, self._end, self.bad_lines = [], 0, 0
        self._on_grow()

    def _on_grow(self) -> None:
        """Hook for subclasses that keep derived views; called after every refresh."""

    def read(self, row: Row) -> dict | None:
        return read_line_at(self.path, row.offset, row.length)


@dataclass
class Group:
    """The k samples of one question at one training step (the unit the Training view replays)."""

    phase: str
    round: int
    step: int
    task_id: str
    rows: list[int] = field(default_factory=list)  # indexes into JsonlIndex.rows


class EpisodeIndex(JsonlIndex):
    """The episodes.jsonl index plus its groups (phase, round, step, task) and per-step curves."""

    def __init__(self, path: Path) -> None:
        self.groups: list[Group] = []
        self._group_of: dict[tuple[str, int, int, str], int] = {}
        self._grouped = 0
        super().__init__(path, episode_row)

    def _on_grow(self) -> None:
        if not self.rows:
            self.groups, self._group_of, self._grouped = [], {}, 0
        for i in range(self._grouped, len(self.rows)):
            r = self.rows[i]
            key = (r.phase, r.round, r.step, r.key)
            gi = self._group_of.get(key)
            if gi is None:
                gi = self._group_of[key] = len(self.groups)
                self.groups.append(Group(r.phase, r.round, r.step, r.key))
            self.groups[gi].rows.append(i)
        self._grouped = len(self.rows)

    def find_group(self, phase: str, round: int, step: int, task_id: str) -> Group | None:
        gi = self._group_of.get((phase, round, step, task_id))
        return self.groups[gi] if gi is not None else None

    def phases(self) -> list[dict]:
        counts: dict[str, list[int]] = {}
        for g in self.groups:
            c = counts.setdefault(g.phase, [0, 0])
            c[0] += len(g.rows)
            c[1] += 1
        return [{"phase": p, "episodes": c[0], "groups": c[1]} for p, c in counts.items()]

    def curves(self) -> dict[str, list[dict]]:
        """Per phase, per (round, step): mean reward, accuracy, faithful share, kept count."""
        acc: dict[tuple[str, int, int], list[float]] = {}
        for r in self.rows:
            a = acc.setdefault((r.phase, r.round, r.step), [0, 0.0, 0, 0, 0])
            a[0] += 1
            a[1] += r.total
            a[2] += r.correct
            a[3] += r.faithful
            a[4] += r.kept
        out: dict[str, list[dict]] = {}
        for (phase, rnd, step), (n, tot, cor, fai, kept) in sorted(acc.items()):
            out.setdefault(phase, []).append({
                "round": rnd, "step": step, "n": int(n), "mean_reward": tot / n,
                "accuracy": cor / n, "faithful": fai / n, "kept": int(kept),
            })
        return out


class KeyedIndex(JsonlIndex):
    """A JSONL index with lookup by key (task id); the first line of each key wins."""

    def __init__(self, path: Path, make_row: Callable[[int, int, dict], Row | None]) -> None:
        self.by_key: dict[str, int] = {}
        self._keyed = 0
        super().__init__(path, make_row)

    def _on_grow(self) -> None:
        if not self.rows:
            self.by_key, self._keyed = {}, 0
        for i in range(self._keyed, len(self.rows)):
            self.by_key.setdefault(self.rows[i].key, i)
        self._keyed = len(self.rows)

    def get(self, key: str) -> dict | None:
        i = self.by_key.get(key)
        return self.read(self.rows[i]) if i is not None else None


class IndexRegistry:
    """One live index per file, shared across requests (bounded, least recently used first out)."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, Path], JsonlIndex] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, kind: str, path: Path, make: Callable[[], JsonlIndex]) -> JsonlIndex:
        with self._lock:
            idx = self._items.get((kind, path))
            if idx is None:
                idx = self._items[(kind, path)] = make()
            self._items.move_to_end((kind, path))
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return idx.refresh()

    def episodes(self, path: Path) -> EpisodeIndex:
        idx = self._get("episodes", path, lambda: EpisodeIndex(path))
        assert isinstance(idx, EpisodeIndex)
        return idx

    def keyed(self, kind: str, path: Path) -> KeyedIndex:
        make_row = task_row if kind == "tasks" else episode_row
        idx = self._get(kind, path, lambda: KeyedIndex(path, make_row))
        assert isinstance(idx, KeyedIndex)
        return idx
