"""Which CPU a figure came from: its model name and matrix instruction set (torch-free).

Why: the same `make run` took 15 minutes on an Intel CPU with AMX and 29 on an AMD one with
AVX-512 BF16 and no AMX; bf16 is native on both and emulated (so kgreason trains in fp32) on a
CPU with AVX2 only. Every benchmark prints this beside its numbers, so figures from different
machines are never compared by accident.
"""

from __future__ import annotations

import platform
from pathlib import Path

# Best first: the first of these flags the CPU has names its matrix ISA.
MATRIX_ISAS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))


def cpu_description(cpuinfo: str | None = None) -> dict[str, str]:
    """{"model": ..., "matrix_isa": ...} from /proc/cpuinfo (or `cpuinfo` text); "unknown" where absent."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    model, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    isa = next((name for flag, name in MATRIX_ISAS if flag in flags), "unknown")
    return {"model": model or platform.processor() or "unknown", "matrix_isa": isa}


def cpu_line() -> str:
    cpu = cpu_description()
    return f"{cpu['model']} ({cpu['matrix_isa']})"


if __name__ == "__main__":
    print(cpu_line())
