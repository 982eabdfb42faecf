"""GPU timing that a candidate cannot fool: same process, same inputs, L2 flushed, streams joined.

Two methods. "graph" (the default) captures the calls in a CUDA graph and times its replays; "stream"
launches and times call by call. Both measure device time only.

Graph: `n` calls (_GRAPH_CALLS; fewer when a call takes over a tenth of the budget) are captured in one
CUDA graph in groups: each group is an L2 flush (as the stream method's) and then one call on each of
`copies` copies of the inputs (same values, other addresses), so every call finds its inputs out of L2
(module parameters are not copied: they may stay in L2 after a group's first call, for eager, compiled and
candidate alike). Before, the graph held enough copies that the bytes read between two uses of one copy
exceeded the flush buffer's size, up to 256 copies for small inputs: their number followed the calls the
budget allowed, hence the call's measured time, which held its host launch and varied between processes;
so did the share of inputs still in L2 (a 3 us batch norm took 2.9-3.4 us), and capturing 256 calls cost
tens of ms of host time per callable (benchmarks/verify/RESULTS.md). The graph is replayed with a pair of
events around each replay (`Timing.replay_ms`: (replay time - its flushes' time) / `n`, median over
_EVENT_REPLAYS replays), then replays of about the budget's calls (at most _TRACED_CALLS; counted from
the event-timed replays) run under a device trace (verify/device_trace.py): a call's time is its span on
the GPU's clock, from its first kernel's start to its last kernel's end (its own kernels and the gaps
between them; not the launch of its first kernel). Median and spread are over _SPAN_GROUPS groups of
consecutive calls (each the mean of its calls). Why: per-launch event timing of the same 2-5 us kernel
differed by 3-10 % between processes (host launch path); events around graph replays by up to 16 %, in two
modes (e.g. 2.17 or 2.53 us per call for a 2.2 us kernel, set by where a capture's memory landed), while
the kernel's device span stayed within 1 % (benchmarks/verify/RESULTS.md). Without a
trace (another profiler running, no CUPTI), or with spans that miss much of the replays' time
(`spans_miss_work`), the events' times are used (method "graph_events").
A graph replays device work only, so it is checked before it is trusted: the input copies get other
values (each tensor rolled by one element), the graph is replayed, and every captured call's output must
match a direct call on those values. Work done on the host at capture time (a numpy offload, a cached
result, a branch taken only while capturing) fails that check; so does a capture that raises (a host
sync, a side stream). Then the stream method times the callable, and `Timing.fallback` says why.

Preparing and measuring are split (`prepare_timing`, then `PreparedTiming.measure()`; `time_callable` does
both), so that a verifier holds the GPU exclusively only while it measures: warm-up, the host and device
time estimates and the graph's capture and check run while other processes use the GPU; the replays (or
the stream method's calls) run with the GPU held. Holding it for everything made the exclusive hold the
throughput limit of a pool of workers on one GPU (benchmarks/verify/RESULTS.md).

Stream: each timed call: write (or read: `l2_flush`) the flush buffer to evict L2, record a start event, call,
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

from verify.compare import flatten
from verify.device_trace import DeviceTrace, call_spans_ms
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
_EVENT_REPLAYS = 4  # graph method: replays timed by events (Timing.replay_ms, and the check that spans hold the work)
_MIN_REPLAYS = 10  # graph method: a graph holds at most this fraction (1/_MIN_REPLAYS) of the calls to time
_MAX_GRAPH_CALLS = 20_000
_TRACED_CALLS = 512  # graph method: calls whose device spans are recorded (the trace's cost grows with them)
_LAUNCH_ALLOWANCE_MS = 0.002  # graph method: how much more than a call's device span its replay time may be
_CHECK_CHUNK_BYTES = 2**28  # graph method: float64 bytes of captured outputs compared at a time
_SPAN_GROUPS = 16  # ... in this many groups of consecutive calls: the median and IQR are over the groups' means
_GRAPH_CALLS = 16  # graph method: calls in the graph (fewer for calls of over a tenth of the budget)
_MAX_COPY_BYTES = 2**30  # graph method: input copies (one per call of a group) hold at most this many bytes
_MAX_GRAPH_OUT_BYTES = 2**30  # graph method: outputs the captured calls keep alive, at most
_cycles_per_ms: dict[int, float] = {}
_flush_ms: dict[tuple, float] = {}
_flush_acts: dict[tuple, int] = {}


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
        return "a replay of the captured calls does not compute from its inputs (host work or a branch at capture)"
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
    # the calls the budget allows, from these replays (the GPU held), not from the estimate that sized the graph
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
    return (f"device spans ({span_ms * 1e3:.2f} us per call) miss much of the replays' time ({replay_ms * 1e3:.2f} "
            "us per call): work outside the kernels")


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
                times, by_events, timed, mhz, why = _replay_times(cap, kw["budget_ms"], kw["min_reps"], kw["flush"],
                                                                  kw["flush_mode"], cycles_per_ms)
                if self._keep:
                    _synchronize()
                    self.outputs = list(cap.outs)
                return _summary(times, timed, self.host_ms, "graph_events" if why else "graph", why, sm_mhz=mhz,
                                replay_ms=statistics.median(by_events))
            last = {} if self._keep else None
            timing = _stream_times(self.fn, self.args, self.arg_sets, self.streams, self.host_ms,
                                   self.fallback, cycles_per_ms, last=last, **kw)
            self.outputs = [last[i] for i in sorted(last)] if last else []
            return timing


def _spin_cycles_hint() -> float:
    """Spin cycles per ms for `prepare_timing`'s estimate: the measured value once `measure()` has run in this
    process (measured there, with the GPU held), else 2 GHz (a spin that runs longer than asked for when the
    clock is lower only queues the call further ahead)."""
    return _cycles_per_ms.get(torch.cuda.current_device(), 2.0e6)


def _stream_times(fn, args, arg_sets, streams, host_ms: float, fallback: str, cycles_per_ms: float, *,
                  min_reps: int, max_reps: int, budget_ms: float, flush: torch.Tensor, flush_mode: str,
                  last: dict | None = None) -> Timing:
    """The stream method (see the module docstring), with the GPU held: calls timed in chunks behind a spin."""
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
                  runs=calls, host_ms=host_ms, method=method, fallback=fallback, sm_mhz=sm_mhz, replay_ms=replay_ms)


def min_time_ms(nbytes: int, peak_bandwidth_gbps: float) -> float:
    """Lower bound on runtime: the bytes a program must move at the device's peak bandwidth.

    >>> round(min_time_ms(3_350_000_000, 3350.0), 3)
    1.0
    """
    return nbytes / (peak_bandwidth_gbps * 1e9) * 1e3
