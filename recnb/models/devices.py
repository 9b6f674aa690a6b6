"""Devices and precision for training: which device, which autocast type, the GradScaler, peak memory.

Mixed precision depends on the device: fp16 with a GradScaler on CUDA (and MPS), bf16 without one on the CPU.
Notebook 07 shows why; :mod:`recnb.models.training` uses these functions, and so do the environment report and
the benchmark of :mod:`recnb.teaching`.
"""

from __future__ import annotations

import sys
import warnings

import torch

from recnb.errors import InvalidArgumentError


def choose_device(name: str = "auto") -> torch.device:
    """CUDA if available, else Apple's MPS, else the CPU; or the device named, if this machine has it.

    A name that is no device, or a device this machine or torch build lacks,
    is a ValueError that says what to use instead, before any training starts.
    """
    mps_available = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InvalidArgumentError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:1 or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(f"--device {name}: this torch build or machine has no CUDA GPU; "
                                   "use --device cpu or auto.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InvalidArgumentError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices "
                                   "(numbered from 0).")
    if device.type == "mps" and not mps_available:
        raise InvalidArgumentError(f"--device {name}: Apple's MPS is not available here; use --device cpu or auto.")
    if device.type not in ("cpu", "cuda", "mps"):
        raise InvalidArgumentError(f"--device {name}: recnb trains on cpu, cuda or mps.")
    return device


def autocast_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    """fp16 on CUDA and MPS (tensor cores, the GradScaler guards its small range); bf16 on the CPU,
    where fp16 matmuls are slow and bf16's fp32-sized exponent needs no scaler."""
    if requested:
        return getattr(torch, requested)
    return torch.bfloat16 if device.type == "cpu" else torch.float16


def make_scaler(device: torch.device, dtype: torch.dtype, amp: bool) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16 autocast (bf16 and fp32 do not underflow like fp16)."""
    enabled = amp and dtype == torch.float16
    try:
        return torch.amp.GradScaler(device.type, enabled=enabled)
    except (RuntimeError, ValueError) as error:  # a backend without scaler support
        warnings.warn(f"No GradScaler for {device.type} ({error}); training fp16 without loss scaling.")
        return torch.amp.GradScaler("cpu", enabled=False)


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory: allocated tensors on CUDA, the process's maximum resident size elsewhere."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource  # POSIX only
    except ImportError:  # Windows: not measured
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux
