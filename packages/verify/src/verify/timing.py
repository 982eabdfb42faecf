"""GPU timing that a candidate cannot fool: same process, same inputs, L2 flushed, streams joined.

Two methods. "graph" (the default) captures the calls in a CUDA graph and times its replays; "stream"
launches and times call by call. Both measure device time only.

Graph: `n` calls are captured in one CUDA graph, call i on the i-th of enough copies of the inputs (same
values, other addresses) that the bytes read between two uses of one copy exceed the L2 flush buffer's
size, so every call finds its inputs out of L2 as after a flush (module parameters are not copied: they
may stay in L2, for eager, compiled and candidate alike). One pair of events brackets each replay; a
call's time is the replay's time / `n`; median and spread are over replays. Launching from a graph
takes the host's per-launch path out of the measurement: on an H200, per-launch event timing of the
same 2-5 us kernel differed by 3-10 % between processes (a fixed offset per process, even for a kernel
that touches no memory), graph replays by under 1.2 % (benchmarks/verify/RESULTS.md). A graph replays
device work only, so it is checked before it is trusted: the input copies get other values (each
tensor rolled by one element), the graph is replayed, and every captured call's output must match a
direct call on those values. Work done on the host at capture time (a numpy offload, a cached result,
a branch taken only while capturing) fails that check; so does a capture that raises (a host sync, a
side stream). Then the stream method times the callable, and `Timing.fallback` says why.

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
_MIN_REPLAYS = 10  # graph method: replays timed (the median is over these), at least
_MAX_REPLAYS = 64
_MAX_GRAPH_CALLS = 20_000
_MAX_COPIES = 256  # graph method: input copies, at most
_MAX_GRAPH_OUT_BYTES = 2**30  # graph method: outputs the captured calls keep alive, at most
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


def _tensors(out) -> list:
    """The tensors in a (possibly nested) output, in order."""
    return [t for t in flatten(out) if isinstance(t, torch.Tensor)]


def outputs_agree(got, want, tol: float = 1e-2) -> bool:
    """Whether two outputs hold the same tensors: shapes and dtypes equal, values within `tol` (relative
    to the largest magnitude; NaN where NaN). Loose on purpose: it tells a replayed graph that computes
    from its inputs from one that replays stale work, not rounding from rounding.

    >>> a = torch.tensor([1.0, 2.0, float("nan")])
    >>> outputs_agree((a, a), (a + 1e-4, a)), outputs_agree(a, a.flip(0)), outputs_agree(a, a[:2])
    (True, False, False)
    """
    got, want = _tensors(got), _tensors(want)
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if g.shape != w.shape or g.dtype != w.dtype:
            return False
        if w.numel() and not torch.allclose(g.double(), w.double(), rtol=tol, equal_nan=True,
                                            atol=tol * (1.0 + float(w.double().nan_to_num().abs().max()))):
            return False
    return True


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _roll(sets: list, shift: int) -> None:
    for args in sets:
        for a in args:
            if isinstance(a, torch.Tensor) and a.numel() > 1:
                a.copy_(a.reshape(-1).roll(shift).reshape(a.shape))


def _graph_times(fn, args, calls: int, out_bytes: int, cold_bytes: int, cycles_per_ms: float):
    """Per-call device times (ms), one per replay of a CUDA graph of calls, and the calls per replay; or
    the reason the graph cannot be trusted (a string). About `calls` calls are timed in all (at least
    _MIN_REPLAYS replays). See the module docstring."""
    size = _nbytes(a for a in args if isinstance(a, torch.Tensor))
    copies = max(1, min(_MAX_COPIES, -(-cold_bytes // max(size, 1))))
    n = max(1, min(max(_CHUNK, copies), calls // _MIN_REPLAYS, _MAX_GRAPH_OUT_BYTES // max(out_bytes, 1)))
    copies = min(copies, n)
    sets = [[a.clone() if isinstance(a, torch.Tensor) else a for a in args] for _ in range(copies)]
    graph, current = torch.cuda.CUDAGraph(), torch.cuda.current_stream()
    try:
        side = torch.cuda.Stream()
        side.wait_stream(current)
        with torch.cuda.stream(side):
            fn(*sets[0])
        current.wait_stream(side)
        with torch.cuda.graph(graph):
            outs = [fn(*sets[i % copies]) for i in range(n)]
        _roll(sets, 1)
        graph.replay()
        want = fn(*sets[0])
        _synchronize()
    except Exception as e:  # noqa: BLE001 - any failure means: time call by call
        try:
            _synchronize()
        except Exception:  # noqa: BLE001
            pass
        return f"CUDA graph capture failed ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    if not all(outputs_agree(o, want) for o in outs):
        return "a replay of the captured calls does not compute from its inputs (host work or a branch at capture)"
    _roll(sets, -1)
    replays = min(_MAX_REPLAYS, max(_MIN_REPLAYS, calls // n))
    starts = [_Event(enable_timing=True) for _ in range(replays)]
    ends = [_Event(enable_timing=True) for _ in range(replays)]
    ahead_ms = 1.0
    for _ in range(_CHUNK_TRIES):
        mark, enqueued = _Event(enable_timing=True), []
        graph.replay()  # warm
        _synchronize()
        t0 = _clock()
        mark.record()
        _spin(int(ahead_ms * cycles_per_ms))
        for a, b in zip(starts, ends):
            a.record()
            graph.replay()
            b.record()
            enqueued.append((_clock() - t0) * 1e3)
        _synchronize()
        if cpu_behind_ms(enqueued, [mark.elapsed_time(a) for a in starts]) <= 0.0:
            break
        ahead_ms = min(_MAX_AHEAD_MS, 4.0 * ahead_ms)
    del graph, outs
    return [a.elapsed_time(b) / n for a, b in zip(starts, ends)], n


def time_callable(fn, args, *, warmup: int, min_reps: int, max_reps: int, budget_ms: float,
                  flush: torch.Tensor, flush_mode: str = "write", arg_sets: list | None = None,
                  method: str = "graph") -> Timing:
    """Median device time and spread of `fn(*args)` in milliseconds, plus its host time per call, by
    `method` ("graph", falling back to "stream"; see the module docstring). With `arg_sets` (see
    `input_copies`), the stream method's timed call i uses `arg_sets[i % len(arg_sets)]`."""
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
        out = fn(*args)
        _join(streams)
        probe_end.record()
        _synchronize()
        est = max(probe_start.elapsed_time(probe_end), 1e-3)
        reps = int(min(max_reps, max(min_reps, budget_ms / est)))
        fallback = ""
        if method == "graph":
            # a graph's calls cost no launch each: as many as the budget allows (at least min_reps)
            calls = int(min(_MAX_GRAPH_CALLS, max(min_reps, budget_ms / est)))
            graphed = (_graph_times(fn, args, calls, _nbytes(_tensors(out)), flush.numel() * flush.element_size(),
                                    cycles_per_ms) if not streams else "the callable launches kernels on other streams")
            if not isinstance(graphed, str):
                times, n = graphed
                return _summary(times, len(times) * n, host_ms, "graph")
            fallback = graphed
        del out  # not kept alive through the timing (its memory may be what a call reuses)
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
    return _summary(times, len(times), host_ms, "stream", fallback)


def _summary(times: list, calls: int, host_ms: float, method: str, fallback: str = "") -> Timing:
    times = sorted(times)
    q = statistics.quantiles(times, n=4) if len(times) >= 4 else [times[0], times[len(times) // 2], times[-1]]
    return Timing(median_ms=statistics.median(times), iqr_ms=q[2] - q[0], min_ms=times[0], max_ms=times[-1],
                  runs=calls, host_ms=host_ms, method=method, fallback=fallback)


def min_time_ms(nbytes: int, peak_bandwidth_gbps: float) -> float:
    """Lower bound on runtime: the bytes a program must move at the device's peak bandwidth.

    >>> round(min_time_ms(3_350_000_000, 3350.0), 3)
    1.0
    """
    return nbytes / (peak_bandwidth_gbps * 1e9) * 1e3
