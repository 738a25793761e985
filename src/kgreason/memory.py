"""Hand freed heap memory back to the operating system (glibc's malloc_trim).

Why: sampling refills and training steps allocate and free many tensors of changing sizes, and
glibc keeps freed pages inside its heap. Measured with SmolLM2-135M on the 2-core CPU: a trim
after a sampler call took a process from 1.23 GB back to 0.81 GB before the next one (what the
next call then reuses). It does not bound a training step's own peak: an SFT process still peaks
at 3.2-3.4 GB within 25 steps of 2,048-token passes with a trim after every step. Forcing large
allocations onto mmap (MALLOC_MMAP_THRESHOLD_) bounded it but doubled the step time.
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


def trainer_callback() -> Any:
    """A transformers TrainerCallback that trims after every optimizer step."""
    from transformers import TrainerCallback

    class ReleaseFreedMemory(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            release_freed_memory()

    return ReleaseFreedMemory()
