"""Hand freed heap memory back to the operating system (glibc's malloc_trim).

Why: sampling refills allocate and free KV caches of changing sizes, and glibc keeps freed pages
inside its heap. Measured with SmolLM2-135M on the 2-core CPU: a trim after a sampler call took a
process from 1.23 GB back to 0.81 GB before the next one. Training does not trim: after every
optimizer step it saved ~110 MB of a 3.3 GB peak and cost ~13% of the step time (12 SFT steps:
82 and 76 s with it, 71 and 67 s without), since the next step faults the pages back in. Forcing
large allocations onto mmap (MALLOC_MMAP_THRESHOLD_) bounded training memory but doubled the step time.
A no-op where glibc is absent (macOS, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return getattr(libc, "malloc_trim", None)
    except OSError:
        return None


def release_freed_memory() -> bool:
    """Return the heap's free pages to the OS; True when glibc did (a few ms at these sizes)."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


@functools.cache
def _jemalloc_mallctl() -> Any:
    """jemalloc's mallctl when jemalloc is this process's allocator (preloaded), else None."""
    try:
        return getattr(ctypes.CDLL(None), "mallctl", None)
    except OSError:
        return None


@functools.cache
def freeze_library_objects() -> None:
    """Once per process, before the first model or tokenizer is built: import transformers' model and
    tokenizer classes (torch with them), collect, then move every live object into the collector's
    permanent generation.

    Why: those libraries leave ~430k tracked objects (modules, classes, functions) that live as long
    as the process, and every full collection walks all of them: 0.24 s a `gc.collect()` (AMD EPYC,
    AVX2), paid at each phase boundary and each model release. Frozen, a collection walks only
    what was made since (0.01 s measured, TRL imported after). Objects frozen while alive are never
    collected as cycles, so this runs once, before any model or Trainer exists.
    """
    import gc

    from transformers import AutoTokenizer, PreTrainedModel  # noqa: F401  (their modules, frozen too)

    gc.collect()
    gc.freeze()


def release_between_phases() -> None:
    """At a phase boundary (training done, its evaluation next, in the same process): collect the
    reference cycles a Trainer leaves (its model, optimizer and accelerator refer to each other),
    then hand every freed page back to the OS, jemalloc's too.

    Why: jemalloc keeps freed pages for reuse and returns them after a delay, so an evaluation
    that starts right after training begins with the training's peak still resident (measured:
    the SFT evaluation peaked at 2.6 GB after SFT in the same process, 2.0 GB on its own).
    glibc's malloc_trim does not reach jemalloc's arenas; jemalloc's "arena.<all>.purge" does.
    """
    import gc

    gc.collect()
    mallctl = _jemalloc_mallctl()
    if mallctl is not None:
        mallctl(b"arena.4096.purge", None, None, None, ctypes.c_size_t(0))  # 4096: MALLCTL_ARENAS_ALL
    release_freed_memory()


# --- the allocator of the model stages' processes ------------------------------------------------
# Why jemalloc: an SFT step allocates and frees activations of a different shape every pass, and
# glibc's heap keeps what it freed in fragments: measured on open- and closed-book SFT examples (2-core CPU,
# SmolLM2-135M, bf16) the process's peak climbed step after step, 3.0 to 5.2 GB over 60 steps at
# 2,048 tokens a pass. Preloaded jemalloc (with pass widths in multiples of 64, see train/sft.py)
# held 16 such steps to 2.7 GB at 2,048 tokens a pass and 2.0 GB at 1,024, and steps ran ~10-15%
# faster (73.9 against 85.6 s). Sampling pays for it: 64 greedy evaluation answers
# took 32.5 s against 28.7 s on glibc (jemalloc's decay and background-thread settings did not
# change that), for a peak of 1.9 GB against 2.7 GB. It is a system library (Debian's libjemalloc2,
# which `make setup` installs where it can), so it is found, not bundled; without it glibc is used.
ALLOCATORS = ("auto", "jemalloc", "system")
_JEMALLOC_FILES = ("libjemalloc.so.2", "libjemalloc.so")
# Linux folders only: the library is preloaded through LD_PRELOAD, which only Linux's loader reads.
_LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                 "/usr/local/lib")


def find_jemalloc() -> str | None:
    """Path of a jemalloc shared library on this system, or None."""
    import sys
    from pathlib import Path

    for folder in (*_LIBRARY_DIRS, str(Path(sys.prefix) / "lib")):
        for name in _JEMALLOC_FILES:
            path = Path(folder) / name
            if path.is_file():
                return str(path)
    return None


def allocator_environment(allocator: str) -> dict[str, str]:
    """Environment variables that make a new process use `allocator` (empty: the system's).

    `jemalloc` insists (ValueError when it is not installed); `auto` uses it where found."""
    if allocator not in ALLOCATORS:
        raise ValueError(f"allocator: expected one of {', '.join(ALLOCATORS)}, got {allocator!r}")
    if allocator == "system":
        return {}
    path = find_jemalloc()
    if path is None:
        if allocator == "jemalloc":
            raise ValueError("allocator jemalloc: no libjemalloc found (install Debian's libjemalloc2, "
                             "or use --allocator system)")
        return {}
    import os

    preload = os.environ.get("LD_PRELOAD", "")
    if path in preload.split(":"):
        return {}
    return {"LD_PRELOAD": f"{path}:{preload}" if preload else path}


def allocator_in_use() -> str:
    """"jemalloc" when this process runs with jemalloc loaded, else "system"."""
    try:
        with open("/proc/self/maps") as maps:
            return "jemalloc" if any("libjemalloc" in line for line in maps) else "system"
    except OSError:
        return "system"


class child_environment:
    """Set variables for the processes started inside the block; restore them after it."""

    def __init__(self, changes: dict[str, str]) -> None:
        self.changes, self.saved = changes, {}

    def __enter__(self) -> None:
        import os

        for key, value in self.changes.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc: Any) -> None:
        import os

        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


if __name__ == "__main__":  # `python -m kgreason.memory`: exit 0 when jemalloc is installed (make setup)
    raise SystemExit(0 if find_jemalloc() else 1)
