"""What surrounds every timed call: the L2 flush, the spin kernel that queues the GPU's work ahead of the CPU
(as nvbench does) and the check that it stayed ahead, and the CUDA primitives both methods use (the event
methods and the synchronize function are bound at import, before any candidate code runs).
"""
from __future__ import annotations

import time

import torch

from verify.launches import TRACKER

_Event = torch.cuda.Event
_synchronize = torch.cuda.synchronize
_spin = torch.cuda._sleep
_clock = time.perf_counter
_MAX_AHEAD_MS = 50.0
_CHUNK_TRIES = 4
_cycles_per_ms: dict[int, float] = {}
_flush_ms: dict[tuple, float] = {}


def _side_streams() -> list:
    current = torch.cuda.current_stream().cuda_stream
    return [torch.cuda.ExternalStream(h)
            for h in {launch.stream for launch in TRACKER.launches} if h != current]


def _join(streams) -> None:
    current = torch.cuda.current_stream()
    for s in streams:
        current.wait_stream(s)


def spin_cycles_per_ms() -> float:
    """Clock cycles the spin kernel burns per millisecond on this device (measured once per process)."""
    dev = torch.cuda.current_device()
    if dev not in _cycles_per_ms:
        start, end = _Event(enable_timing=True), _Event(enable_timing=True)
        _spin(1_000_000)  # wakes the clocks up
        start.record()
        _spin(2_000_000)
        end.record()
        _synchronize()
        _cycles_per_ms[dev] = 2_000_000 / max(start.elapsed_time(end), 1e-3)
    return _cycles_per_ms[dev]


def _spin_cycles_hint() -> float:
    """Spin cycles per ms for `prepare_timing`'s estimate: the measured value once `measure()` has run in this
    process (measured there, with the GPU held), else 2 GHz (a spin that runs longer than asked for when the
    clock is lower only queues the call further ahead)."""
    return _cycles_per_ms.get(torch.cuda.current_device(), 2.0e6)


def flush_l2(flush: torch.Tensor, mode: str, i: int) -> None:
    """Evict L2 before a timed call: "write" fills `flush` (leaves L2 dirty), "read" sums it
    (leaves it clean)."""
    if mode == "read":
        flush.sum()
    else:
        flush.fill_(i & 0xFF)


def flush_ms(flush: torch.Tensor, mode: str = "write") -> float:
    """Device time of one L2 flush (measured once per process, buffer size and mode)."""
    key = (torch.cuda.current_device(), flush.numel(), mode)
    if key not in _flush_ms:
        start, end = _Event(enable_timing=True), _Event(enable_timing=True)
        flush_l2(flush, mode, 1)
        start.record()
        for i in range(5):
            flush_l2(flush, mode, i)
        end.record()
        _synchronize()
        _flush_ms[key] = start.elapsed_time(end) / 5
    return _flush_ms[key]


def cpu_behind_ms(enqueued_ms, reached_ms) -> float:
    """How far the CPU fell behind: the largest (host time call i was fully enqueued) - (GPU time its start
    event ran), both since the chunk's mark. Positive: the GPU may have idled inside a timed call.

    >>> round(cpu_behind_ms([0.1, 0.2, 0.3], [1.0, 1.1, 1.2]), 3)   # queue stayed ahead
    -0.9
    >>> round(cpu_behind_ms([0.1, 0.9, 1.7], [0.5, 0.6, 0.7]), 3)   # CPU slower than the GPU
    1.0
    """
    return max(h - g for h, g in zip(enqueued_ms, reached_ms))
