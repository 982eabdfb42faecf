"""GPU timing that a candidate cannot fool: same process, same inputs, L2 flushed, streams joined.

Two methods, both device time only: "graph" (the default; `verify.timing.graph`) captures the calls in a
CUDA graph and times its replays from a device trace; "stream" (`verify.timing.stream`) launches and times
call by call, the queue kept ahead of the CPU by a spin kernel (`verify.timing.flush`). Preparing and
measuring are split (`prepare_timing`, then `PreparedTiming.measure()`; `time_callable` does both), so that
a verifier holds the GPU exclusively only while it measures: warm-up, the time estimates and the graph's
capture and check run while other processes use the GPU. Why it is built this way, measured:
benchmarks/verify/RESULTS.md.
"""
from __future__ import annotations

import statistics

import torch

from verify.launches import TRACKER
from verify.timing.flush import (
    _join,
    _side_streams,
    _spin_cycles_hint,
    _synchronize,
    cpu_behind_ms,
    flush_l2,
    flush_ms,
    spin_cycles_per_ms,
)
from verify.timing.graph import (
    _MAX_GRAPH_CALLS,
    _capture,
    _Captured,
    _nbytes,
    _replay_times,
    _tensors,
    fill_copies,
    outputs_agree,
    spans_miss_work,
)
from verify.timing.stream import _device_ms_per_call, _host_ms_per_call, _stream_times, _summary
from verify.verdict import Timing

__all__ = ["PreparedTiming", "cpu_behind_ms", "fill_copies", "flush_l2", "flush_ms", "input_copies",
           "min_time_ms", "outputs_agree", "prepare_timing", "spans_miss_work", "spin_cycles_per_ms",
           "time_callable"]

def input_copies(args, copies: int, max_bytes: int = 256 * 2**20) -> list:
    """`args` and up to `copies - 1` clones of its tensors (same values, other addresses) within
    `max_bytes`."""
    size = sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))
    n = max(1, min(copies, max_bytes // max(size, 1)))
    return [args] + [[a.clone() if isinstance(a, torch.Tensor) else a for a in args] for _ in range(n - 1)]


def time_callable(fn, args, *, warmup: int, min_reps: int, max_reps: int, budget_ms: float,
                  flush: torch.Tensor, flush_mode: str = "write", arg_sets: list | None = None,
                  method: str = "graph") -> Timing:
    """Median device time and spread of `fn(*args)` in milliseconds, plus its host time per call, by
    `method` ("graph", falling back to "stream"; see the module docstring). With `arg_sets` (see
    `input_copies`), the stream method's timed call i uses `arg_sets[i % len(arg_sets)]`.
    The same as `prepare_timing(...).measure()`."""
    return prepare_timing(fn, args, warmup=warmup, min_reps=min_reps, max_reps=max_reps, budget_ms=budget_ms,
                          flush=flush, flush_mode=flush_mode, arg_sets=arg_sets, method=method).measure()


def prepare_timing(fn, args, *, warmup: int, min_reps: int, max_reps: int, budget_ms: float,
                   flush: torch.Tensor, flush_mode: str = "write", arg_sets: list | None = None,
                   method: str = "graph", keep_outputs: bool = False) -> PreparedTiming:
    """Everything `time_callable` does before it times: warm-up calls, the host time per call, an estimate
    of the device time per call, and (graph method) the CUDA graph, captured and checked. None of it is a
    measurement that other work on the GPU could skew beyond sizing the graph (its calls follow the
    estimate only for calls of over a tenth of the budget), so it can run while other processes use the
    GPU; only `PreparedTiming.measure()` needs the GPU to itself.

    The timed calls compute on `arg_sets` (copies of `args` by default); warm-up and estimates on `args`.
    Given other values there, a callable that replays answers it gave before is caught by the caller's
    check of the timed calls' outputs: with `keep_outputs`, `measure()` leaves them in
    `PreparedTiming.outputs` (every captured call's, or the last call's on each input set)."""
    arg_sets = arg_sets or [args]
    TRACKER.reset("count")
    with torch.no_grad():
        for _ in range(warmup):
            fn(*args)
        _synchronize()
        streams = _side_streams()
        TRACKER.reset("off")  # the wrapper's bookkeeping must not be timed
        host_ms = _host_ms_per_call(fn, args)
        out = fn(*args)
        _join(streams)
        cap, fallback = None, ""
        if method == "graph":
            est = _device_ms_per_call(fn, args, streams, _spin_cycles_hint(), host_ms)
            # a graph's calls cost no launch each: as many as the budget allows (at least min_reps)
            calls = int(min(_MAX_GRAPH_CALLS, max(min_reps, budget_ms / est)))
            fallback = "the callable launches kernels on other streams" if streams else ""
            cap = None if fallback else _capture(fn, args, calls, _nbytes(_tensors(out)), flush, flush_mode,
                                                 final=arg_sets[0])
            if isinstance(cap, str):
                cap, fallback = None, cap
        del out  # not kept alive through the timing (its memory may be what a call reuses)
    return PreparedTiming(fn, args, arg_sets, streams, host_ms, cap, fallback,
                          dict(min_reps=min_reps, max_reps=max_reps, budget_ms=budget_ms, flush=flush,
                               flush_mode=flush_mode), keep_outputs)


class PreparedTiming:
    """A callable made ready to time by `prepare_timing`. `measure()` (once) runs the timed work alone: the
    replays of its graph, or (stream method, or a graph that failed its check) the calls one by one, and
    then lets go of the graph and its input copies."""

    def __init__(self, fn, args, arg_sets, streams, host_ms: float, cap: _Captured | None, fallback: str,
                 kw: dict, keep_outputs: bool = False):
        self.fn, self.args, self.arg_sets, self.streams, self.host_ms = fn, args, arg_sets, streams, host_ms
        self._cap, self.fallback, self._kw, self._keep = cap, fallback, kw, keep_outputs
        # outputs of the timed calls (keep_outputs), filled by measure()
        self.outputs: list = []

    def measure(self) -> Timing:
        cap, self._cap = self._cap, None
        kw = self._kw
        cycles_per_ms = spin_cycles_per_ms()
        with torch.no_grad():
            if cap is not None:
                times, by_events, timed, mhz, why = _replay_times(
                    cap, kw["budget_ms"], kw["min_reps"], kw["flush"], kw["flush_mode"], cycles_per_ms)
                if self._keep:
                    _synchronize()
                    self.outputs = list(cap.outs)
                return _summary(times, timed, self.host_ms, "graph_events" if why else "graph", why,
                                sm_mhz=mhz, replay_ms=statistics.median(by_events))
            last = {} if self._keep else None
            timing = _stream_times(self.fn, self.args, self.arg_sets, self.streams, self.host_ms,
                                   self.fallback, cycles_per_ms, last=last, **kw)
            self.outputs = [last[i] for i in sorted(last)] if last else []
            return timing


def min_time_ms(nbytes: int, peak_bandwidth_gbps: float) -> float:
    """Lower bound on runtime: the bytes a program must move at the device's peak bandwidth.

    >>> round(min_time_ms(3_350_000_000, 3350.0), 3)
    1.0
    """
    return nbytes / (peak_bandwidth_gbps * 1e9) * 1e3
