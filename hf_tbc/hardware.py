"""The machine a run is on: what its CPU and accelerator can do, how to describe it, and how fast a step runs on it.

One reader of the CPU's description (``/proc/cpuinfo`` on Linux) serves every question asked of it: bf16 support,
the integer-matmul instruction set, and the model name a record shows.
"""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import torch


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and feature flags (``flags`` on x86, ``Features`` on ARM)."""

    model: str
    flags: frozenset[str]


def parse_cpuinfo(text: str) -> CpuInfo:
    """The model name and feature flags in the text of ``/proc/cpuinfo`` (the first processor's)."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return CpuInfo(model or platform.processor() or platform.machine(), frozenset(flags))


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's :class:`CpuInfo`; flags are empty where ``/proc/cpuinfo`` cannot be read."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return CpuInfo(platform.processor() or platform.machine(), frozenset())


def accelerator_available() -> bool:
    if torch.cuda.is_available():
        return True
    for backend in ("xpu", "mps", "npu", "mlu", "musa"):
        module = getattr(torch, backend, None) or getattr(torch.backends, backend, None)
        if module is not None and getattr(module, "is_available", lambda: False)():
            return True
    return False


def native_bf16(cpuinfo: Optional[str] = None) -> bool:
    """Whether this machine computes in bfloat16 natively: a GPU with bf16 units (Ampere or newer), or a CPU with bf16
    instructions (x86 AVX512-BF16 or AMX, ARM's BF16 extension). Elsewhere bf16 is emulated and slower than fp32.
    ``cpuinfo`` is the text of ``/proc/cpuinfo`` (read when not given)."""
    if torch.cuda.is_available():
        return _cuda_native_bf16()
    if accelerator_available():
        return False
    flags = parse_cpuinfo(cpuinfo).flags if cpuinfo is not None else cpu_info().flags
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def _cuda_native_bf16() -> bool:
    """Whether this rank's GPU has bf16 units: compute capability 8.0 (Ampere) or newer, or a ROCm GPU.

    ``torch.cuda.is_bf16_supported()`` also says yes where bf16 is only emulated (V100, T4: slower than fp32), and
    it probes by allocating on the current device, which before the Trainer sets each rank's device is cuda:0 on
    every rank. The capability is read from the device of ``LOCAL_RANK`` without allocating anything.
    """
    if torch.version.hip:
        return True
    device = int(os.environ.get("LOCAL_RANK", "0") or 0) % max(torch.cuda.device_count(), 1)
    return torch.cuda.get_device_capability(device)[0] >= 8


INSTRUCTION_SETS = ("avx512_vnni", "avx512", "avx2", "arm64")


def cpu_instruction_set() -> str:
    """The widest integer-matmul instruction set of this CPU that ONNX Runtime's quantizer targets."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    flags = cpu_info().flags
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags and "avx512bw" in flags:
        return "avx512"
    return "avx2"


def hardware_summary() -> dict:
    """What the run ran on: CPU, accelerator, thread count and library versions."""
    import accelerate
    import transformers

    return {
        "cpu": cpu_info().model,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "python": platform.python_version(),
    }


def describe_hardware(hardware: dict, versions: bool = True) -> str:
    """A :func:`hardware_summary` in words: for a report, the accelerator (or CPU), core count and library versions;
    with ``versions=False``, for a card, the accelerator, or the CPU with its core count."""
    accelerator = hardware.get("accelerator")
    if not versions:
        return (
            f"{accelerator}" if accelerator else f"{hardware.get('cpu')} ({hardware.get('cpu_count')} cores, CPU only)"
        )
    return (
        f"{accelerator or hardware.get('cpu')}, {hardware.get('cpu_count')} CPU cores, torch "
        f"{hardware.get('torch')}, transformers {hardware.get('transformers')}."
    )


# Dense bf16 tensor-core peaks (FLOP/s, no sparsity) from the vendors' datasheets, by a name torch reports.
GPU_BF16_PEAKS = {
    "H200": 989.4e12,
    "H100 SXM": 989.4e12,
    "H100 PCIe": 756.5e12,
    "H100 NVL": 835.5e12,
    "H100": 989.4e12,
    "A100": 312e12,
    "L40S": 362.05e12,
    "L40": 181.05e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
}


def _words(name: str) -> list[str]:
    return re.split(r"[\s_-]+", name.strip().upper())


def gpu_bf16_peak(name: Optional[str] = None) -> Optional[float]:
    """The datasheet's dense bf16 peak of the GPU called ``name`` (default: this rank's GPU), or ``None`` when it is
    not in :data:`GPU_BF16_PEAKS` or there is no GPU. MFU is achieved FLOP/s over this. A key matches whole words of
    the name (``L4`` is not ``NVIDIA L40``), the longest key first (``H100 PCIe`` before ``H100``)."""
    if name is None:
        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name()
    words = _words(name)
    for key in sorted(GPU_BF16_PEAKS, key=lambda key: -len(_words(key))):
        wanted = _words(key)
        if any(words[start : start + len(wanted)] == wanted for start in range(len(words))):
            return GPU_BF16_PEAKS[key]
    return None


def training_device() -> torch.device:
    """The device a recipe launched here trains on: the first GPU (or other accelerator torch sees), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    for backend in ("xpu", "mps"):
        module = getattr(torch, backend, None)
        if module is not None and getattr(module, "is_available", lambda: False)():
            return torch.device(backend)
    return torch.device("cpu")


def _synchronize(device: torch.device) -> None:
    module = getattr(torch, device.type, None)
    if device.type != "cpu" and module is not None and hasattr(module, "synchronize"):
        module.synchronize()


def median_step_seconds(
    model: torch.nn.Module, inputs: dict, bf16: bool = False, steps: int = 3, device: Optional[torch.device] = None
) -> float:
    """Median seconds of an AdamW training step of ``model`` on ``inputs`` (with ``labels``) on ``device`` (default:
    :func:`training_device`, where a recipe launched here would train), under bf16 autocast if asked; one extra first
    step warms allocators up and is not counted. The model and inputs are moved there."""
    device = device or training_device()
    model = model.to(device)
    inputs = {key: value.to(device) for key, value in inputs.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type in ("cpu", "cuda"))
    timings = []
    for _ in range(steps + 1):
        _synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        _synchronize(device)
        timings.append(time.perf_counter() - start)
    return sorted(timings[1:])[len(timings[1:]) // 2]
