"""GPU timing that a candidate cannot fool: same process, same inputs, L2 flushed, streams joined.

Each timed call: write the flush buffer (evicts L2), record a start event, call, make the current
stream wait for every stream the candidate launched kernels on, record the end event. Warm-up calls
are excluded; the number of timed calls adapts to the callable's speed within [min_reps, max_reps].
The event methods and the synchronize function are bound at import, before any candidate code runs.
"""
from __future__ import annotations

import statistics

import torch

from verify.launches import TRACKER
from verify.verdict import Timing

_Event = torch.cuda.Event
_synchronize = torch.cuda.synchronize


def _side_streams() -> list:
    current = torch.cuda.current_stream().cuda_stream
    return [torch.cuda.ExternalStream(h) for h in {launch.stream for launch in TRACKER.launches} if h != current]


def _join(streams) -> None:
    current = torch.cuda.current_stream()
    for s in streams:
        current.wait_stream(s)


def time_callable(fn, args, *, warmup: int, min_reps: int, max_reps: int, budget_ms: float,
                  flush: torch.Tensor) -> Timing:
    """Median and spread of `fn(*args)` in milliseconds."""
    TRACKER.reset("count")
    with torch.no_grad():
        for _ in range(warmup):
            fn(*args)
        _synchronize()
        probe_start, probe_end = _Event(enable_timing=True), _Event(enable_timing=True)
        probe_start.record()
        fn(*args)
        _join(_side_streams())
        probe_end.record()
        _synchronize()
        est = max(probe_start.elapsed_time(probe_end), 1e-3)
        reps = int(min(max_reps, max(min_reps, budget_ms / est)))
        streams = _side_streams()
        TRACKER.reset("off")  # the wrapper's bookkeeping must not be timed
        starts = [_Event(enable_timing=True) for _ in range(reps)]
        ends = [_Event(enable_timing=True) for _ in range(reps)]
        for i in range(reps):
            flush.fill_(i & 0xFF)
            starts[i].record()
            fn(*args)
            _join(streams)
            ends[i].record()
        _synchronize()
    times = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    q = statistics.quantiles(times, n=4) if len(times) >= 4 else [times[0], times[len(times) // 2], times[-1]]
    return Timing(median_ms=statistics.median(times), iqr_ms=q[2] - q[0], min_ms=times[0], max_ms=times[-1],
                  runs=len(times))


def min_time_ms(nbytes: int, peak_bandwidth_gbps: float) -> float:
    """Lower bound on runtime: the bytes a program must move at the device's peak bandwidth.

    >>> round(min_time_ms(3_350_000_000, 3350.0), 3)
    1.0
    """
    return nbytes / (peak_bandwidth_gbps * 1e9) * 1e3
