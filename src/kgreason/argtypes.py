"""argparse `type=` validators shared by every command, so a bad value stops the command at parse
time, before anything heavy (a model, a graph) loads, with one line that names the flag.

argparse turns the `ArgumentTypeError` message into "argument --FLAG: MESSAGE". The output-path
validators probe the nearest existing folder with a temporary file, because permission bits say
little to root and nothing about read-only or virtual file systems such as /proc.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

DTYPE_CHOICES = ("auto", "bf16", "fp16", "fp32")  # as kgreason.models.dtype, which imports torch
BACKEND_CHOICES = ("auto", "hf", "vllm", "openvino")


def _number(text: str, kind: Callable[[str], float], what: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def at_least(minimum: int) -> Callable[[str], int]:
    """A validator for integers >= `minimum`."""

    def check(text: str) -> int:
        what = f"a whole number of at least {minimum}"
        value = int(_number(text, int, what))
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    check.__name__ = f"at_least_{minimum}"
    return check


positive_int = at_least(1)  # counts of samples, steps, items, batch sizes
non_negative_int = at_least(0)  # where 0 has a documented meaning such as "all"


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, epochs)."""
    value = _number(text, float, "a number above 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (temperatures, KL coefficients, time budgets)."""
    value = _number(text, float, "a number of at least 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text!r}")
    return value


def unit_interval(text: str) -> float:
    """A share in [0, 1]."""
    value = _number(text, float, "a number between 0 and 1")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def probability(text: str) -> float:
    """A probability mass in (0, 1] (nucleus sampling's top-p)."""
    value = _number(text, float, "a number above 0 and at most 1")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number above 0 and at most 1, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port to listen on, 1-65535."""
    value = int(_number(text, int, "a port number from 1 to 65535"))
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {text!r}")
    return value


def _check_writable(text: str, folder: bool) -> None:
    """Raise unless `text` names a file (or folder) this process can create or overwrite."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    path = Path(text)
    if path.exists():
        if folder and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: exists and is not a folder")
        if not folder and path.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: is a folder; expected a file path")
    probe = path if folder and path.is_dir() else path.absolute().parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {probe} is a file, so nothing can be created under it")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".kgreason-probe-", dir=probe)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: cannot create files in {probe} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(tmp)


def out_file(text: str) -> str:
    """A file path that can be written (its folders are created on writing)."""
    _check_writable(text, folder=False)
    return text


def out_dir(text: str) -> str:
    """A folder that exists or can be created, and that can be written into."""
    _check_writable(text, folder=True)
    return text


def out_dir_path(text: str) -> Path:
    """`out_dir` as a Path (for the run-folder flags)."""
    return Path(out_dir(text))


def keep_epilog_lines(base: type[argparse.HelpFormatter]) -> type[argparse.HelpFormatter]:
    """`base`, printing multi-line text (a command's examples epilog) as written; one-line text is still wrapped."""

    class Formatter(base):  # type: ignore[valid-type,misc]
        def _fill_text(self, text: str, width: int, indent: str) -> str:
            if "\n" in text:
                return "".join(indent + line for line in text.splitlines(keepends=True))
            return super()._fill_text(text, width, indent)

    return Formatter
