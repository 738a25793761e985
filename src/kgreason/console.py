"""What a command writes to the console: one progress bar per stage, and nothing from the libraries.

Why: a training phase used to print a transformers FutureWarning, four `datasets` progress bars,
the Trainer's own bar and its log dicts between them, and PEFT warnings; redirected to a file, every
bar update was a carriage return in it. Here:

* `quiet_libraries()` (called where model work starts) sends Python warnings and the log records of
  transformers, datasets, PEFT, TRL, accelerate and huggingface_hub to a *chatter* handler, and
  turns their progress bars off. The handler appends to the run's `log.txt` once `log_to` names it
  (records from before that, such as model loading, are kept and written then), else keeps the
  last few hundred in memory: silenced on the console either way.
* `progress(...)` is the one bar of a stage: tqdm with its ETA on a terminal; anywhere else (a log
  file, a pipe) a plain line every 10% or minute, never a carriage return.
* `-v/--verbose` (`KGREASON_VERBOSE=1`, so `accelerate launch` workers inherit it) leaves the
  libraries as they are: their warnings, bars and the Trainer's log lines come back.

Torch-free: the libraries are only touched inside `quiet_libraries`, after they are imported anyway.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

ENV_VERBOSE = "KGREASON_VERBOSE"
LOG_NAME = "log.txt"
T = TypeVar("T")
# Loggers whose records are chatter, not results (each library's root logger).
LIBRARY_LOGGERS = ("transformers", "datasets", "peft", "trl", "accelerate", "huggingface_hub", "torch", "py.warnings")


# The library switches `quiet_console` set, listed so -v can take back exactly those (a process
# started by a quiet kgreason inherits them, e.g. a test's subprocess).
_ENV_SET = "KGREASON_QUIET_ENV"
_BAR_SWITCHES = ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS")


def set_verbose(flag: bool) -> None:
    """-v: keep library output on the console (in this process and the processes it starts)."""
    if flag:
        os.environ[ENV_VERBOSE] = "1"
        for name in os.environ.pop(_ENV_SET, "").split(","):
            if name:
                os.environ.pop(name, None)


def is_verbose() -> bool:
    return os.environ.get(ENV_VERBOSE, "") not in ("", "0")


class ChatterHandler(logging.Handler):
    """Appends library records to a log file once one is named; until then keeps the last ones."""

    def __init__(self, keep: int = 500) -> None:
        super().__init__(logging.INFO)
        self.path: Path | None = None
        self.pending: deque[str] = deque(maxlen=keep)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s", "%Y-%m-%d %H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # A library may log a progress line; a carriage return has no place in a log file.
            line = self.format(record).replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
        except Exception:  # logging must never break the job
            self.handleError(record)
            return
        if self.path is None:
            self.pending.append(line)
            return
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:
            self.pending.append(line)

    def attach(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines, self.pending = list(self.pending), deque(maxlen=self.pending.maxlen)
        if lines:
            with self.path.open("a", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))


CHATTER = ChatterHandler()
_quieted = False


def log_to(path: str | os.PathLike, replace: bool = True) -> None:
    """Send chatter to `path` (a run's log.txt) from now on; `replace=False` keeps an earlier file."""
    if CHATTER.path is not None and not replace:
        return
    CHATTER.attach(Path(path))


def quiet_console() -> None:
    """The import-free part of `quiet_libraries`, for the start of every command: Python warnings
    to the chatter handler, and the progress-bar switches datasets and huggingface_hub read when
    they are imported. Does nothing with -v."""
    if is_verbose():
        return
    ours = [n for n in os.environ.get(_ENV_SET, "").split(",") if n]
    for name in _BAR_SWITCHES:
        if name not in os.environ:  # a value the user set stays theirs
            os.environ[name] = "1"
            ours.append(name)
    if ours:
        os.environ[_ENV_SET] = ",".join(dict.fromkeys(ours))
    logging.captureWarnings(True)  # warnings.warn(...) -> the "py.warnings" logger
    _route("py.warnings")


def _route(name: str) -> None:
    """Logger `name`: console handlers out, the chatter handler in, no propagation to the root."""
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        # Console handlers only; a file handler someone configured stays.
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in (sys.stderr, sys.stdout):
            logger.removeHandler(handler)
    if CHATTER not in logger.handlers:
        logger.addHandler(CHATTER)
    logger.propagate = False  # else the root logger's last-resort handler prints warnings to stderr


def quiet_libraries() -> None:
    """Library warnings, log records and progress bars off the console (see the module docstring).
    Call where model work starts (it imports transformers and datasets). Idempotent; nothing with -v."""
    global _quieted
    if _quieted or is_verbose():
        return
    _quieted = True
    quiet_console()
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_default_handler()  # its stderr handler; records still reach ours below
        hf_logging.disable_progress_bar()  # e.g. "Loading checkpoint shards"
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    try:
        import datasets

        datasets.disable_progress_bars()  # the map/filter bars TRL's tokenisation shows
    except ImportError:  # pragma: no cover
        pass
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass
    for name in LIBRARY_LOGGERS:
        _route(name)


# --- progress ------------------------------------------------------------------------------------
def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LineProgress:
    """A progress bar for logs: a line at 0, every 10% (or minute) and at the end, with the ETA."""

    def __init__(self, total: int, desc: str, unit: str = "it", initial: int = 0, stream: Any = None,
                 every_s: float = 60.0) -> None:
        self.total, self.desc, self.unit, self.n = max(0, int(total)), desc, unit, int(initial)
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.postfix = ""
        self._start = self._last_time = time.monotonic()
        self._start_n = self.n
        self._last_decile = -1
        self._closed = False
        self._emit()

    def update(self, n: int = 1) -> None:
        self.n += n
        decile = (10 * self.n // self.total) if self.total else 0
        if decile > self._last_decile or time.monotonic() - self._last_time >= self.every_s:
            self._emit()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def _emit(self) -> None:
        elapsed = time.monotonic() - self._start
        done = self.n - self._start_n
        text = f"{self.desc}: {self.n}/{self.total} {self.unit}"
        if self.total:
            text += f" ({100 * self.n // self.total}%)"
        text += f", {_clock(elapsed)} elapsed"
        if done > 0 and self.n < self.total:
            text += f", ETA {_clock(elapsed / done * (self.total - self.n))}"
        if self.postfix:
            text += f", {self.postfix}"
        print(text, file=self.stream, flush=True)
        self._last_time = time.monotonic()
        self._last_decile = (10 * self.n // self.total) if self.total else 0

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.n != self._start_n and self._last_decile < 10:
                self._emit()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _NoProgress:
    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress(total: int, desc: str, unit: str = "it", initial: int = 0, disable: bool = False) -> Any:
    """The one progress bar of a stage: tqdm (with its ETA) on a terminal, `LineProgress` elsewhere.
    Same methods either way: update(n), set_postfix(**values), close(), and `with`."""
    if disable:
        return _NoProgress()
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True)
    return LineProgress(total, desc, unit=unit, initial=initial)


def track(items: Sequence[T], desc: str, unit: str = "it") -> Iterator[T]:
    """Iterate `items` with `progress` as its bar (closed when the loop ends or breaks)."""
    bar = progress(len(items), desc, unit=unit)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()
