"""Pick a compute dtype and device per machine: bf16 where the hardware does it fast, fp32 otherwise.

Why: on CPUs with AVX512-BF16/AMX and on Ampere+ GPUs, bf16 matmuls are several times faster than
fp32 (about 4x on this project's CI CPU), and sampling is matmul-bound. Elsewhere bf16 is emulated
and slower than fp32, so fp32 is the safe default.
"""

from __future__ import annotations

import torch

from kgreason.argtypes import DTYPE_CHOICES  # declared once, beside the flags
from kgreason.io import InputError

_DTYPES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
}


def default_device() -> str:
    """"cuda" when a GPU is visible, else "mps" on Apple silicon, else "cpu"."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels (AVX512-BF16 or AMX), i.e. bf16 is fast, not emulated."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except Exception:  # an exotic build without oneDNN: fall back to fp32
        return False


def default_dtype(device: str | torch.device | None = None) -> torch.dtype:
    """bf16 where the device runs it natively, fp32 otherwise."""
    kind = torch.device(device or default_device()).type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if kind == "cpu":
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    return torch.float32


def resolve_dtype(dtype: str | torch.dtype | None, device: str | torch.device | None = None) -> torch.dtype:
    """Accept a torch dtype, a name ("bf16", "fp32", ...), or None/"auto" for the device default."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return default_dtype(device)
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise InputError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_CHOICES)}") from None


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}.get(dtype, str(dtype))
