"""Run folders: everything one training job writes, laid out as docs/architecture.md ("A run folder").

```
runs/<run>/
  config.json      everything needed to reproduce the run (dataset seed, model ref, git revision, options)
  data/            kg.json and the task files the run used
  metrics.jsonl    appended during training and evaluation
  episodes.jsonl   one kgreason.records.Episode per scored sample
  adapters/<phase>/  PEFT adapter folders (Trainer checkpoints live inside while a phase runs)
  eval/<phase>/    metrics.json, predictions.jsonl, report.md
  tb/<phase>/      TensorBoard event files (tb/rsft-roundN/ per RSFT round)
  summary.json     per phase: done flag, wall seconds, and for evaluations accuracy, by_hop, ...
```

Why this shape: every long stage appends (metrics, episodes) or checkpoints (adapters) so an
interrupted job resumes, and a phase is marked done in summary.json with one atomic write, so a
rerun skips it. Only the main process writes when several run under `accelerate launch`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kgreason.io import InputError, JsonlAppender, atomic_write_json, iter_jsonl, read_json
from kgreason.records import Episode

CONFIG = "config.json"
METRICS = "metrics.jsonl"
EPISODES = "episodes.jsonl"
SUMMARY = "summary.json"

# Keys of config.json that may differ between the first run and a rerun of the same job.
VOLATILE_CONFIG_KEYS = frozenset({"created", "git_revision", "git_dirty", "command", "host"})


def is_main_process() -> bool:
    """True on the process that writes files (rank 0 under `accelerate launch` / torchrun)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Under `accelerate launch`, let the main process run a block (write files) before the others."""
    if world_size() <= 1:
        yield
        return
    from accelerate import PartialState

    with PartialState().main_process_first():
        yield


def git_revision(cwd: str | os.PathLike | None = None) -> tuple[str | None, bool | None]:
    """(commit hash, working tree has uncommitted changes), or (None, None) outside a git checkout."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def diff_configs(old: dict, new: dict, prefix: str = "", ignore: tuple[str, ...] = ()) -> list[str]:
    """The options that differ. A key the saved config lacks is an option added to kgreason after
    the folder was made (it ran with that option's behaviour of the time): not a difference, so
    an interrupted run still resumes after an upgrade. `ignore`: dotted prefixes not compared."""
    diffs: list[str] = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in VOLATILE_CONFIG_KEYS:
            continue
        if key not in old or any(f"{prefix}{key}" == p or f"{prefix}{key}".startswith(p + ".") for p in ignore):
            continue
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += diff_configs(a, b, f"{prefix}{key}.", ignore)
        elif a != b:
            diffs.append(f"{prefix}{key}: {a!r} (saved) != {b!r} (now)")
    return diffs



def reward_preset_of(config: dict) -> str:
    """The reward preset a run scored its answers with, read through the typed RunConfig."""
    from kgreason.config import RunConfig

    try:
        return RunConfig.from_json(config).scoring_preset()
    except InputError:
        from kgreason.reward.presets import DEFAULT_PRESET

        return DEFAULT_PRESET


class Run:
    """One run folder. Open it with `Run.create_or_resume(path, config)` or `Run.load(path)`."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._metrics: JsonlAppender | None = None
        self._episodes: JsonlAppender | None = None
        self._tb: dict[str, Any] = {}

    # --- opening ---------------------------------------------------------------------------------
    @classmethod
    def create_or_resume(cls, root: str | os.PathLike, config: dict, sections: list[str] | None = None,
                         ignore: tuple[str, ...] = ()) -> Run:
        """Create the folder and write config.json, or check that a rerun asks for the same job.

        With `sections`, only those keys of `config` must match what the folder saved (the others
        are added when missing): several commands (`train sft` then `train rsft`) may share one
        run folder, each owning its own section. `ignore` names dotted option paths a rerun may
        change (`kgreason run` ignores the options of the KG-reward phase it does not run).
        """
        run = cls(root)
        rev, dirty = git_revision()
        meta = {"created": now_iso(), "git_revision": rev, "git_dirty": dirty}
        if not run.config_path.exists():
            if is_main_process():
                atomic_write_json(run.config_path, {"run": run.name, **meta, **config})
            return run
        saved = run.config
        keys = sections if sections is not None else [k for k in config if k not in VOLATILE_CONFIG_KEYS]
        diffs: list[str] = []
        for key in keys:
            if key in saved and saved[key] != config.get(key):
                diffs += diff_configs({key: saved[key]}, {key: config.get(key)}, ignore=ignore)
        if diffs:
            raise InputError(
                f"{run.config_path}: this run folder was created with different options; use another "
                "--run-dir (or delete the folder) to start afresh:\n  " + "\n  ".join(diffs))
        missing = {k: v for k, v in config.items() if k not in saved}
        if missing and is_main_process():
            atomic_write_json(run.config_path, {**saved, **missing})
        return run

    @classmethod
    def load(cls, root: str | os.PathLike) -> Run:
        run = cls(root)
        if not run.config_path.exists():
            raise InputError(f"{run.root}: not a run folder (no {CONFIG})")
        return run

    # --- paths -----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.root / METRICS

    @property
    def episodes_path(self) -> Path:
        return self.root / EPISODES

    @property
    def summary_path(self) -> Path:
        return self.root / SUMMARY

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def adapter_dir(self, phase: str) -> Path:
        return self.root / "adapters" / phase

    def eval_dir(self, phase: str) -> Path:
        return self.root / "eval" / phase

    def tb_dir(self, phase: str | None = None) -> Path:
        return self.root / "tb" / phase if phase else self.root / "tb"

    @property
    def config(self) -> dict:
        return read_json(self.config_path)

    # --- append-only logs ------------------------------------------------------------------------
    def log_metrics(self, phase: str, step: int, values: dict[str, Any], round: int = 0) -> dict:
        """Append one metrics line and mirror its numbers to TensorBoard (tb/<phase>, tb/<phase>-roundN)."""
        record = {"phase": phase, "step": int(step), "round": int(round), "time": round_time(), **values}
        if not is_main_process():
            return record
        if self._metrics is None:
            self._metrics = JsonlAppender(self.metrics_path)
        self._metrics.write(record)
        # Each RSFT round restarts the Trainer's step count: one TensorBoard folder per round.
        writer = self.tb_writer(f"{phase}-round{round}" if round else phase)
        if writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    writer.add_scalar(key, value, int(step))
            writer.flush()
        return record

    def append_episode(self, episode: Episode) -> None:
        if not is_main_process():
            return
        if self._episodes is None:
            self._episodes = JsonlAppender(self.episodes_path)
        self._episodes.write(episode.to_dict())

    def iter_episodes(self, phase: str | None = None, round: int | None = None) -> Iterator[dict]:
        """Episode dicts (not parsed into records: fast for resume scans), optionally filtered."""
        if not self.episodes_path.exists():
            return
        for _, rec in iter_jsonl(self.episodes_path, tolerate_torn_tail=True):
            if phase is not None and rec.get("phase") != phase:
                continue
            if round is not None and rec.get("round") != round:
                continue
            yield rec

    def read_metrics(self, phase: str | None = None) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        return [r for _, r in iter_jsonl(self.metrics_path, tolerate_torn_tail=True)
                if phase is None or r.get("phase") == phase]

    def tb_writer(self, phase: str) -> Any:
        """A torch SummaryWriter for tb/<phase> (None when tensorboard is unavailable)."""
        if phase not in self._tb:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # pragma: no cover - tensorboard is a dependency
                self._tb[phase] = None
            else:
                self._tb[phase] = SummaryWriter(log_dir=str(self.tb_dir(phase)))
        return self._tb[phase]

    def close(self) -> None:
        for appender in (self._metrics, self._episodes):
            if appender is not None:
                appender.close()
        self._metrics = self._episodes = None
        for writer in self._tb.values():
            if writer is not None:
                writer.close()
        self._tb.clear()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- phases ----------------------------------------------------------------------------------
    @property
    def summary(self) -> dict:
        if not self.summary_path.exists():
            return {"run": self.name, "phases": {}}
        return read_json(self.summary_path)

    def phase_info(self, phase: str) -> dict | None:
        return self.summary.get("phases", {}).get(phase)

    def is_done(self, phase: str) -> bool:
        info = self.phase_info(phase)
        return bool(info and info.get("done"))

    def mark_done(self, phase: str, info: dict[str, Any]) -> None:
        """Record a finished phase in summary.json in one atomic write; a rerun then skips it.
        `peak_rss_mb`: this process's peak memory since the previous phase finished (see peak_rss_mb);
        `cpu`: the CPU model and matrix ISA the phase ran on (a resumed run may change machines)."""
        from kgreason.hardware import cpu_line
        from kgreason.memory import allocator_in_use

        self.update_phase(phase, {"peak_rss_mb": peak_rss_mb(reset=True), "pid": os.getpid(),
                                  "allocator": allocator_in_use(), "cpu": cpu_line(), **info,
                                  "done": True, "finished": now_iso()})

    def update_phase(self, phase: str, info: dict[str, Any]) -> None:
        if not is_main_process():
            return
        summary = self.summary
        summary["run"] = self.name
        phases = summary.setdefault("phases", {})
        phases[phase] = {**phases.get(phase, {}), **info}
        summary["updated"] = now_iso()
        atomic_write_json(self.summary_path, summary)


def peak_rss_mb(reset: bool = False) -> float | None:
    """Peak resident memory of this process in MB, since the last reset when the kernel supports it.

    Why a reset: `kgreason run` runs every stage in one process, and getrusage's peak never goes
    down, so without it every stage would report the largest stage before it. Linux resets the
    high-water mark (VmHWM) when "5" is written to /proc/self/clear_refs; elsewhere this falls back
    to the whole process's peak.
    """
    peak = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024  # kB
                break
    except OSError:
        pass
    if peak is None:
        try:
            import resource
            import sys

            raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
            peak = raw / 2**20 if sys.platform == "darwin" else raw / 1024
        except (ImportError, OSError):
            return None
    if reset:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
    return round(peak, 1)


def round_time() -> float:
    return round(time.time(), 3)


def dump_options(obj: Any) -> dict:
    """Options dataclass -> JSON-safe dict (paths as strings), for config.json."""
    from dataclasses import asdict, is_dataclass

    data = asdict(obj) if is_dataclass(obj) else dict(obj)
    return json.loads(json.dumps(data, default=str))
