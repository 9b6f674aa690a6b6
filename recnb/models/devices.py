"""Devices and precision for training: which device, which autocast type, the GradScaler, peak memory, and how
the CPU's memory allocator keeps what it frees.

Mixed precision depends on the device: fp16 with a GradScaler on CUDA (and MPS), bf16 without one on the CPU.
Notebook 07 shows why; :mod:`recnb.models.training` uses these functions, and so do the environment report and
the benchmark of :mod:`recnb.teaching`.
"""

from __future__ import annotations

import ctypes
import platform
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


def minor_page_faults() -> int | None:
    """How many times this process has had memory mapped in for it without reading the disk (minor page
    faults), or None where the count is not available (Windows). Two readings bracket a piece of code."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


# glibc's mallopt parameters (malloc.h): the size above which the top of the heap is given back, and how many
# blocks may be mapped on their own (large blocks are, by default, and are unmapped again when freed)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Make glibc's allocator keep freed memory in the process; True where it applied (Linux with glibc).

    A CPU training step allocates and frees tensors of hundreds of MB (the logits, the feed-forward's
    activations). glibc maps each large block on its own and unmaps it when freed, so the next step
    asks the kernel for the same memory again and pays a page fault on every page of it. On the 2-core
    machine of the README's benchmarks an epoch took 55.7 s so and 39.7 s with freed memory kept, and an
    evaluation at batch 1,024 7.28 s and 3.28 s. Kept in the process, the freed blocks are reused at no
    cost. This is ``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=...`` set from
    Python, for the process that calls it (``python -m recnb`` does, at start). The cost: the process
    keeps its peak memory until it ends. macOS, Windows and other C libraries have other allocators;
    nothing is changed there and the answer is False.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success; the threshold is a C int, so 2 GiB is the most it can say
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
