"""The graph method (the default): `n` calls captured in one CUDA graph, its replays timed.

`n` calls (_GRAPH_CALLS; fewer when a call takes over a tenth of the budget) are captured in groups: each
group is an L2 flush (as the stream method's) and then one call on each of `copies` copies of the inputs
(same values, other addresses), so every call finds its inputs out of L2 (module parameters are not copied:
they may stay in L2 after a group's first call, for eager, compiled and candidate alike). The graph is
replayed with a pair of events around each replay (`Timing.replay_ms`: (replay time - its flushes' time) /
`n`, median over _EVENT_REPLAYS replays), then replays of about the budget's calls (at most _TRACED_CALLS)
run under a device trace (verify/device_trace.py): a call's time is its span on the GPU's clock, from its
first kernel's start to its last kernel's end. Median and spread are over _SPAN_GROUPS groups of
consecutive calls (each the mean of its calls). Without a trace (another profiler running, no CUPTI), or
with spans that miss much of the replays' time (`spans_miss_work`), the events' times are used (method
"graph_events").

A graph replays device work only, so it is checked before it is trusted: the input copies get other values
(each tensor rolled by one element), the graph is replayed, and every captured call's output must match a
direct call on those values. Work done on the host at capture time (a numpy offload, a cached result, a
branch taken only while capturing) fails that check; so does a capture that raises (a host sync, a side
stream). Then the stream method times the callable, and `Timing.fallback` says why.
"""
from __future__ import annotations

import statistics

import torch

from verify.compare import flatten
from verify.device_trace import DeviceTrace, call_spans_ms
from verify.timing.flush import (
    _CHUNK_TRIES,
    _MAX_AHEAD_MS,
    _clock,
    _Event,
    _spin,
    _synchronize,
    cpu_behind_ms,
    flush_l2,
    flush_ms,
)

# graph method: replays timed by events (Timing.replay_ms, and the check that spans hold the work)
_EVENT_REPLAYS = 4
_MIN_REPLAYS = 10  # graph method: a graph holds at most this fraction (1/_MIN_REPLAYS) of the calls to time
_MAX_GRAPH_CALLS = 20_000
_TRACED_CALLS = 512  # graph method: calls whose device spans are recorded (the trace's cost grows with them)
_LAUNCH_ALLOWANCE_MS = 0.002  # graph method: how much more than a call's device span its replay time may be
_CHECK_CHUNK_BYTES = 2**28  # graph method: float64 bytes of captured outputs compared at a time
# ... in this many groups of consecutive calls: the median and IQR are over the groups' means
_SPAN_GROUPS = 16
_GRAPH_CALLS = 16  # graph method: calls in the graph (fewer for calls of over a tenth of the budget)
_MAX_COPY_BYTES = 2**30  # graph method: input copies (one per call of a group) hold at most this many bytes
_MAX_GRAPH_OUT_BYTES = 2**30  # graph method: outputs the captured calls keep alive, at most
_flush_acts: dict[tuple, int] = {}


def _tensors(out) -> list:
    """The tensors in a (possibly nested) output, in order."""
    return [t for t in flatten(out) if isinstance(t, torch.Tensor)]


def outputs_agree(outs: list, want, tol: float = 1e-2) -> bool:
    """Whether every output in `outs` holds the same tensors as `want`: shapes and dtypes equal, values
    within `tol` (relative to the largest magnitude of `want`'s tensor; NaN where NaN, equal infinities).
    Loose on purpose: it tells a replayed graph that computes from its inputs from one that replays stale
    work, not rounding from rounding. Compared in chunks on the device, with one host sync at the end.

    >>> a = torch.tensor([1.0, 2.0, float("nan")])
    >>> outputs_agree([(a + 1e-4, a), (a, a)], (a, a)), outputs_agree([a, a.flip(0)], a)
    (True, False)
    >>> outputs_agree([a[:2]], a)
    False
    """
    want = _tensors(want)
    got = [_tensors(o) for o in outs]
    for g in got:
        if len(g) != len(want) or any(x.shape != w.shape or x.dtype != w.dtype for x, w in zip(g, want)):
            return False
    checks = []
    for j, w in enumerate(want):
        if not w.numel():
            continue
        w = w.double()
        atol = tol * (1.0 + w.nan_to_num().abs().max())
        step = max(1, _CHECK_CHUNK_BYTES // (8 * w.numel()))
        for i in range(0, len(got), step):
            g = torch.stack([x[j] for x in got[i:i + step]]).double()
            ok = ((g - w).abs() <= atol + tol * w.abs()) | (g == w) | (g.isnan() & w.isnan())
            checks.append(ok.all())
    return bool(torch.stack(checks).all()) if checks else True


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def fill_copies(sets: list, args, shift: int = 0) -> None:
    """Every copy in `sets` (lists like `args`) gets `args`' tensor values, each rolled by `shift` elements:
    one roll per argument and one multi-tensor copy for all copies (a roll per copy cost about 18 ms of
    host time for 256 copies).

    >>> a = [torch.arange(4.0), 2]; sets = [[torch.zeros(4), 2] for _ in range(3)]
    >>> fill_copies(sets, a, 1); sets[2][0].tolist()
    [3.0, 0.0, 1.0, 2.0]
    """
    src = [a.reshape(-1).roll(shift).reshape(a.shape) if shift and a.numel() > 1 else a
           for a in args if isinstance(a, torch.Tensor)]
    dst = [c for copy in sets for c in copy if isinstance(c, torch.Tensor)]
    if dst:
        torch._foreach_copy_(dst, src * len(sets))


class _Captured:
    """A checked CUDA graph of `n` calls in `groups` groups (see _capture) and what it keeps alive."""

    def __init__(self, graph, sets: list, outs: list, n: int, groups: int):
        self.graph, self.sets, self.outs, self.n, self.groups = graph, sets, outs, n, groups


def _capture(fn, args, calls: int, out_bytes: int, flush: torch.Tensor, flush_mode: str,
             final=None) -> _Captured | str:
    """A CUDA graph of up to `calls` / _MIN_REPLAYS calls of `fn` in groups behind an L2 flush (see the module
    docstring), checked by one replay on other input values; or why it cannot be trusted (a string). The
    input copies then hold `final`'s values (default `args`'), which the timed replays compute on."""
    size = _nbytes(a for a in args if isinstance(a, torch.Tensor))
    most = max(1, min(_GRAPH_CALLS, calls // _MIN_REPLAYS, _MAX_GRAPH_OUT_BYTES // max(out_bytes, 1)))
    copies = max(1, min(most, _MAX_COPY_BYTES // max(size, 1)))
    groups = max(1, most // copies)
    sets = [[a.clone() if isinstance(a, torch.Tensor) else a for a in args] for _ in range(copies)]
    graph, current, ended, outs = torch.cuda.CUDAGraph(), torch.cuda.current_stream(), False, []
    try:
        side = torch.cuda.Stream()
        side.wait_stream(current)
        with torch.cuda.stream(side):
            fn(*sets[0])
        current.wait_stream(side)
        with torch.cuda.graph(graph):
            for g in range(groups):
                flush_l2(flush, flush_mode, g)
                outs += [fn(*copy) for copy in sets]
        ended = True
        fill_copies(sets, args, 1)
        graph.replay()
        want = fn(*sets[0])
        _synchronize()
    except Exception as e:  # noqa: BLE001 - any failure means: time call by call
        try:
            _synchronize()
        except Exception:  # noqa: BLE001
            pass
        if not ended:
            _abandon_capture(graph)
        return f"CUDA graph capture failed ({_first_line(e)})"
    if not outputs_agree(outs, want):
        return ("a replay of the captured calls does not compute from its inputs "
                "(host work or a branch at capture)")
    fill_copies(sets, args if final is None else final)
    return _Captured(graph, sets, outs, groups * copies, groups)


def _replay_times(cap: _Captured, budget_ms: float, min_reps: int, flush: torch.Tensor, flush_mode: str,
                  cycles_per_ms: float):
    """Times of the calls in a captured graph (see the module docstring). Returns (per-call device spans
    in ms, the means of _SPAN_GROUPS groups of about the budget's calls, at most _TRACED_CALLS; per-call
    times from events, one per replay; the calls timed; SM clock in MHz; why the spans are missing, ""
    when they are not, and the events' times come first)."""
    graph, n, groups = cap.graph, cap.n, cap.groups
    replays = _EVENT_REPLAYS
    starts = [_Event(enable_timing=True) for _ in range(replays)]
    ends = [_Event(enable_timing=True) for _ in range(replays)]
    ahead_ms = 1.0
    for _ in range(_CHUNK_TRIES):
        mark, enqueued = _Event(enable_timing=True), []
        graph.replay()  # warm
        _synchronize()
        t0 = _clock()
        mark.record()
        cycles = int(ahead_ms * cycles_per_ms)
        _spin(cycles)
        for a, b in zip(starts, ends):
            a.record()
            graph.replay()
            b.record()
            enqueued.append((_clock() - t0) * 1e3)
        _synchronize()
        if cpu_behind_ms(enqueued, [mark.elapsed_time(a) for a in starts]) <= 0.0:
            break
        ahead_ms = min(_MAX_AHEAD_MS, 4.0 * ahead_ms)
    mhz = cycles / max(mark.elapsed_time(starts[0]), 1e-6) / 1e3  # the SM clock while the spin ran
    flushing = groups * flush_ms(flush, flush_mode)
    by_events = [max(a.elapsed_time(b) - flushing, 1e-6) / n for a, b in zip(starts, ends)]
    # the calls the budget allows, from these replays (the GPU held), not from the estimate that sized
    # the graph
    calls = min(_MAX_GRAPH_CALLS, max(min_reps, budget_ms / max(statistics.median(by_events), 1e-3)))
    traced = max(1, int(min(calls, _TRACED_CALLS)) // n)
    try:
        lead = _flush_activities(flush, flush_mode)
        with DeviceTrace() as trace:
            for _ in range(traced):
                graph.replay()
            _synchronize()
        spans = call_spans_ms(trace.intervals_ns(), traced * n, lead=lead, groups=traced * groups)
        why = "" if spans else "the device trace does not split into calls"
    except Exception as e:  # noqa: BLE001 - no device timestamps (another profiler, no CUPTI): the events alone
        spans, why = None, f"no device trace ({_first_line(e)})"
    if spans:
        group = -(-len(spans) // _SPAN_GROUPS)
        spans = [statistics.fmean(spans[i:i + group]) for i in range(0, len(spans), group)]
        why = spans_miss_work(statistics.median(spans), statistics.median(by_events))
    if why:
        return by_events, by_events, replays * n, mhz, why
    return spans, by_events, traced * n, mhz, ""


def _flush_activities(flush: torch.Tensor, mode: str) -> int:
    """Device activities (kernels, fills) one L2 flush runs, from a trace of one (once per process, buffer
    size and mode): the trace of a graph's replays skips that many before each group of calls."""
    key = (torch.cuda.current_device(), flush.numel(), mode)
    if key not in _flush_acts:
        _synchronize()
        with DeviceTrace() as trace:
            flush_l2(flush, mode, 1)
            _synchronize()
        _flush_acts[key] = len(trace.intervals_ns())
    return _flush_acts[key]


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"


def _abandon_capture(graph) -> None:
    """Undo what a capture that did not end cleanly leaves behind (torch skips it when the capture fails):
    the device's random generator stays in capture mode, so that its next use outside a capture raises,
    and the allocator keeps sending the capture stream's allocations to the graph's memory pool."""
    dev = torch.cuda.current_device()
    gen = torch.cuda.default_generators[dev]
    try:
        gen.graphsafe_set_state(gen.clone_state())  # a copy of the state, not in capture mode
    except Exception:  # noqa: BLE001 - best effort: the stream method still times the callable
        pass
    try:
        torch._C._cuda_endAllocateToPool(dev, graph.pool())
        torch._C._cuda_releasePool(dev, graph.pool())
    except Exception:  # noqa: BLE001
        pass


def spans_miss_work(span_ms: float, replay_ms: float) -> str:
    """Why a call's device span cannot stand for its time ("" when it can): the events around the replays
    hold the spans plus one launch per call, so they may exceed them by a little (_LAUNCH_ALLOWANCE_MS +
    10 %), not by work done outside the kernels (a host node, a wait).

    >>> spans_miss_work(0.0022, 0.0027), spans_miss_work(0.010, 0.050)[:37]
    ('', 'device spans (10.00 us per call) miss')
    """
    if replay_ms - span_ms <= _LAUNCH_ALLOWANCE_MS + 0.1 * span_ms:
        return ""
    return (f"device spans ({span_ms * 1e3:.2f} us per call) miss much of the replays' time "
            f"({replay_ms * 1e3:.2f} us per call): work outside the kernels")
