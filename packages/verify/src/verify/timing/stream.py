"""The stream method: calls launched and timed one by one (and the host and device time estimates both
methods start from).

Each timed call: write (or read: `l2_flush`) the flush buffer to evict L2, record a start event, call, make
the current stream wait for every stream the candidate launched kernels on, record the end event. Warm-up
calls are excluded; the number of timed calls adapts to the callable's speed within [min_reps, max_reps].

The queue is kept full: before each chunk of calls the GPU gets a spin kernel long enough for the CPU to
enqueue the whole chunk, so the events measure device time alone, not the CPU's launch overhead or its
scheduling jitter. Each chunk is checked afterwards: every call must have been fully enqueued (end event
included) before the GPU reached its start event, else the CPU fell behind and the chunk's times may hold
idle gaps; such a chunk is discarded and re-run with a longer spin. Host work that depends on the inputs is
still inside the measurement: it must first wait for the data (a sync after the start event), and the GPU
sits idle, between the events, until the host is done. The CPU time per call is reported beside
(`Timing.host_ms`).
"""
from __future__ import annotations

import statistics

import torch

from verify.timing.flush import (
    _CHUNK_TRIES,
    _MAX_AHEAD_MS,
    _clock,
    _Event,
    _join,
    _spin,
    _synchronize,
    cpu_behind_ms,
    flush_l2,
    flush_ms,
)
from verify.verdict import Timing

_CHUNK = 16
_HOST_BATCH = 5


def _host_ms_per_call(fn, args) -> float:
    """CPU milliseconds per call: batches of calls enqueued back to back (the GPU catches up after each)."""
    per_call = []
    for _ in range(3):
        t0 = _clock()
        for _ in range(_HOST_BATCH):
            fn(*args)
        per_call.append((_clock() - t0) * 1e3 / _HOST_BATCH)
        _synchronize()
    return statistics.median(per_call)


def _device_ms_per_call(fn, args, streams, cycles_per_ms: float, host_ms: float, tries: int = 3) -> float:
    """Device milliseconds of one call, the least of `tries`, each queued behind a spin long enough for the
    CPU to enqueue it: without the spin the call's time holds its host launch, which differs between
    processes (it sets how many calls the budget allows)."""
    ahead = int(min(_MAX_AHEAD_MS, 0.5 + 4.0 * host_ms) * cycles_per_ms)
    best = float("inf")
    for _ in range(tries):
        start, end = _Event(enable_timing=True), _Event(enable_timing=True)
        _spin(ahead)
        start.record()
        fn(*args)
        _join(streams)
        end.record()
        _synchronize()
        best = min(best, start.elapsed_time(end))
    return max(best, 1e-3)


def _timed_chunk(fn, arg_sets, streams, flush, flush_mode: str, n: int, ahead_ms: float,
                 cycles_per_ms: float, last: dict | None = None) -> tuple[list, float]:
    """`n` timed calls behind a spin of `ahead_ms`. Returns their device times and by how many ms the CPU
    fell behind the GPU (<= 0: every call was fully enqueued before the GPU reached its start event).
    `last`, when given, keeps the output of the latest call on each input set (by index)."""
    mark = _Event(enable_timing=True)
    starts = [_Event(enable_timing=True) for _ in range(n)]
    ends = [_Event(enable_timing=True) for _ in range(n)]
    enqueued = []
    _synchronize()  # the GPU is idle: `mark` runs no earlier than t0 on the host clock
    t0 = _clock()
    mark.record()
    _spin(int(ahead_ms * cycles_per_ms))
    for i in range(n):
        flush_l2(flush, flush_mode, i)
        starts[i].record()
        out = fn(*arg_sets[i % len(arg_sets)])
        if last is not None:
            last[i % len(arg_sets)] = out
        del out
        _join(streams)
        ends[i].record()
        enqueued.append((_clock() - t0) * 1e3)
    _synchronize()
    reached = [mark.elapsed_time(s) for s in starts]  # GPU ms from `mark` to each start event
    return [s.elapsed_time(e) for s, e in zip(starts, ends)], cpu_behind_ms(enqueued, reached)


def _stream_times(fn, args, arg_sets, streams, host_ms: float, fallback: str, cycles_per_ms: float, *,
                  min_reps: int, max_reps: int, budget_ms: float, flush: torch.Tensor, flush_mode: str,
                  last: dict | None = None) -> Timing:
    """The stream method (see the module docstring), with the GPU held: calls timed in chunks behind a
    spin."""
    est = _device_ms_per_call(fn, args, streams, cycles_per_ms, host_ms)
    reps = int(min(max_reps, max(min_reps, budget_ms / est)))
    # GPU work queued ahead of each chunk: what the CPU needs to enqueue it (with margin) beyond what
    # the chunk itself keeps the GPU busy with (flush + call); raised when a chunk shows the CPU fell behind
    gpu_per_call = flush_ms(flush, flush_mode) + est
    chunk = max(1, min(_CHUNK, int(_MAX_AHEAD_MS / (2.0 * (host_ms + 0.02)))))
    ahead_ms = min(_MAX_AHEAD_MS, chunk * max(0.0, 2.0 * (host_ms + 0.02) - gpu_per_call) + 0.05)
    times: list[float] = []
    tries = _CHUNK_TRIES
    while len(times) < reps:
        n = min(chunk, reps - len(times))
        for _ in range(tries):
            chunk_times, behind_ms = _timed_chunk(fn, arg_sets, streams, flush, flush_mode, n, ahead_ms,
                                                  cycles_per_ms, last)
            if behind_ms <= 0.0:
                break
            ahead_ms = min(_MAX_AHEAD_MS, ahead_ms + 2.0 * behind_ms + 0.05)
        else:
            # no spin kept the queue full (the callable waits for the GPU itself, e.g. a host sync):
            # the remaining chunks get one try each
            tries = 1
        times += chunk_times  # after the last try: kept, the best this host can do
    return _summary(times, len(times), host_ms, "stream", fallback)


def _summary(times: list, calls: int, host_ms: float, method: str, fallback: str = "", sm_mhz: float = 0.0,
             replay_ms: float = 0.0) -> Timing:
    times = sorted(times)
    q = statistics.quantiles(times, n=4) if len(times) >= 4 else [times[0], times[len(times) // 2], times[-1]]
    return Timing(median_ms=statistics.median(times), iqr_ms=q[2] - q[0], min_ms=times[0], max_ms=times[-1],
                  runs=calls, host_ms=host_ms, method=method, fallback=fallback, sm_mhz=sm_mhz,
                  replay_ms=replay_ms)
