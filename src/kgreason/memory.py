"""Hand freed heap memory back to the operating system (glibc's malloc_trim).

Why: training steps and sampling refills allocate and free many tensors of changing sizes, and
glibc keeps the freed pages inside its heap, fragmented. Measured with SmolLM2-135M on the 2-core
CPU: an SFT process grew from 2.3 GB after 4 steps to 2.9 GB after 16 and 4.3 GB after 44, and an
evaluation from 0.8 GB to 1.7 GB over 48 prompts, all of it freed memory. Trimming once per
optimizer step kept SFT at 1.7 GB after 16 steps (2048-token passes) at no measurable time cost;
forcing large allocations onto mmap instead (MALLOC_MMAP_THRESHOLD_) did the same but doubled the
step time. A no-op where glibc is absent (macOS, musl).
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
