"""GPU timing that a candidate cannot fool: same process, same inputs, L2 flushed, streams joined.

Each timed call: write (or read: `l2_flush`) the flush buffer to evict L2, record a start event, call,
make the current stream wait for every stream the candidate launched kernels on, record the end event. Warm-up calls
are excluded; the number of timed calls adapts to the callable's speed within [min_reps, max_reps].

The queue is kept full (as nvbench does): before each chunk of calls the GPU gets a spin kernel long
enough for the CPU to enqueue the whole chunk, so the events measure device time alone, not the CPU's
launch overhead or its scheduling jitter (which made microsecond kernels unrepeatable). Each chunk is
checked afterwards: every call must have been fully enqueued (end event included) before the GPU reached
its start event, else the CPU fell behind (a busy machine, a slow host path) and the chunk's times may
contain idle gaps; such a chunk is discarded and re-run with a longer spin. Host work that
depends on the inputs is still inside the measurement: it must first wait for the data (a sync after
the start event), and the GPU sits idle, between the events, until the host is done. The CPU time per
call is reported beside (`Timing.host_ms`). The event methods and the synchronize function are bound at
import, before any candidate code runs.
"""
from __future__ import annotations

import statistics
import time

import torch

from verify.launches import TRACKER
from verify.verdict import Timing

_Event = torch.cuda.Event
_synchronize = torch.cuda.synchronize
_spin = torch.cuda._sleep
_clock = time.perf_counter
_CHUNK = 16
_MAX_AHEAD_MS = 50.0
_CHUNK_TRIES = 4
_HOST_BATCH = 5
_cycles_per_ms: dict[int, float] = {}
_flush_ms: dict[tuple, float] = {}


def _side_streams() -> list:
    current = torch.cuda.current_stream().cuda_stream
    return [torch.cuda.ExternalStream(h) for h in {launch.stream for launch in TRACKER.launches} if h != current]


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


def flush_l2(flush: torch.Tensor, mode: str, i: int) -> None:
    """Evict L2 before a timed call: "write" fills `flush` (leaves L2 dirty), "read" sums it (leaves it clean)."""
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


def _timed_chunk(fn, arg_sets, streams, flush, flush_mode: str, n: int, ahead_ms: float,
                 cycles_per_ms: float) -> tuple[list, float]:
    """`n` timed calls behind a spin of `ahead_ms`. Returns their device times and by how many ms the CPU
    fell behind the GPU (<= 0: every call was fully enqueued before the GPU reached its start event)."""
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
        fn(*arg_sets[i % len(arg_sets)])
        _join(streams)
        ends[i].record()
        enqueued.append((_clock() - t0) * 1e3)
    _synchronize()
    reached = [mark.elapsed_time(s) for s in starts]  # GPU ms from `mark` to each start event
    return [s.elapsed_time(e) for s, e in zip(starts, ends)], cpu_behind_ms(enqueued, reached)


def cpu_behind_ms(enqueued_ms, reached_ms) -> float:
    """How far the CPU fell behind: the largest (host time call i was fully enqueued) - (GPU time its start
    event ran), both since the chunk's mark. Positive: the GPU may have idled inside a timed call.

    >>> round(cpu_behind_ms([0.1, 0.2, 0.3], [1.0, 1.1, 1.2]), 3)   # queue stayed ahead
    -0.9
    >>> round(cpu_behind_ms([0.1, 0.9, 1.7], [0.5, 0.6, 0.7]), 3)   # CPU slower than the GPU
    1.0
    """
    return max(h - g for h, g in zip(enqueued_ms, reached_ms))


def input_copies(args, copies: int, max_bytes: int = 256 * 2**20) -> list:
    """`args` and up to `copies - 1` clones of its tensors (same values, other addresses) within `max_bytes`."""
    size = sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))
    n = max(1, min(copies, max_bytes // max(size, 1)))
    return [args] + [[a.clone() if isinstance(a, torch.Tensor) else a for a in args] for _ in range(n - 1)]


def time_callable(fn, args, *, warmup: int, min_reps: int, max_reps: int, budget_ms: float,
                  flush: torch.Tensor, flush_mode: str = "write", arg_sets: list | None = None) -> Timing:
    """Median device time and spread of `fn(*args)` in milliseconds, plus its host time per call. With
    `arg_sets` (see `input_copies`), timed call i uses `arg_sets[i % len(arg_sets)]`."""
    arg_sets = arg_sets or [args]
    TRACKER.reset("count")
    cycles_per_ms = spin_cycles_per_ms()
    with torch.no_grad():
        for _ in range(warmup):
            fn(*args)
        _synchronize()
        streams = _side_streams()
        TRACKER.reset("off")  # the wrapper's bookkeeping must not be timed
        host_ms = _host_ms_per_call(fn, args)
        probe_start, probe_end = _Event(enable_timing=True), _Event(enable_timing=True)
        probe_start.record()
        fn(*args)
        _join(streams)
        probe_end.record()
        _synchronize()
        est = max(probe_start.elapsed_time(probe_end), 1e-3)
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
                                                      cycles_per_ms)
                if behind_ms <= 0.0:
                    break
                ahead_ms = min(_MAX_AHEAD_MS, ahead_ms + 2.0 * behind_ms + 0.05)
            else:
                # no spin kept the queue full (the callable waits for the GPU itself, e.g. a host sync):
                # the remaining chunks get one try each
                tries = 1
            times += chunk_times  # after the last try: kept, the best this host can do
    times.sort()
    q = statistics.quantiles(times, n=4) if len(times) >= 4 else [times[0], times[len(times) // 2], times[-1]]
    return Timing(median_ms=statistics.median(times), iqr_ms=q[2] - q[0], min_ms=times[0], max_ms=times[-1],
                  runs=len(times), host_ms=host_ms)


def min_time_ms(nbytes: int, peak_bandwidth_gbps: float) -> float:
    """Lower bound on runtime: the bytes a program must move at the device's peak bandwidth.

    >>> round(min_time_ms(3_350_000_000, 3350.0), 3)
    1.0
    """
    return nbytes / (peak_bandwidth_gbps * 1e9) * 1e3
