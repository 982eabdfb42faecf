"""On a CUDA GPU: the graph timing method measures real work and refuses replays that skip it."""
import pytest

pytestmark = pytest.mark.gpu


def _timing(fn, args, method="graph"):
    import torch

    from verify.timing import time_callable

    flush = torch.empty(64 * 2**20 // 4, device="cuda")
    return time_callable(fn, args, warmup=2, min_reps=20, max_reps=200, budget_ms=20.0, flush=flush,
                         method=method)


def test_graph_and_stream_agree_on_a_long_kernel():
    """A ~1 ms matmul: launch overheads are negligible there, so both methods must see the same work."""
    import torch

    a, b = torch.randn(4096, 4096, device="cuda"), torch.randn(4096, 4096, device="cuda")
    g, s = _timing(torch.mm, [a, b]), _timing(torch.mm, [a, b], method="stream")
    assert (g.method, s.method) == ("graph", "stream") and not g.fallback, (g, s)
    assert g.runs >= 20 and g.iqr_ms < 0.05 * g.median_ms, g
    assert abs(g.median_ms / s.median_ms - 1) < 0.1, (g, s)


def test_graph_refuses_a_capture_that_skips_the_work():
    """A callable that, while being captured, only copies its last result (the graph holds no real work):
    the replay check finds outputs that do not follow the inputs, and the call is timed by the stream
    method."""
    import torch

    last = {}

    def lazy(x):
        if torch.cuda.is_current_stream_capturing() and "out" in last:
            return last["out"] + 0  # a kernel, on the stale result
        last["out"] = torch.tanh(x) * 2
        return last["out"]

    t = _timing(lazy, [torch.randn(1 << 20, device="cuda")])
    assert t.method == "stream" and "does not compute from its inputs" in t.fallback, t


def test_graph_refuses_a_host_sync():
    """A host read (`.item()`) cannot be captured: timed call by call, with the reason."""
    import torch

    t = _timing(lambda x: x * x.sum().item(), [torch.randn(1 << 16, device="cuda")])
    assert t.method == "stream" and "capture failed" in t.fallback, t
    # the failed capture left nothing behind: the device's random generator works, and the next graph too
    x = torch.randn(1 << 16, device="cuda")
    assert _timing(torch.tanh, [x]).method == "graph"


def test_graph_time_is_the_device_span_of_each_call():
    """Three kernels per call: timed by their device span (CUPTI), with the events around the replays, which
    also hold each call's launch, beside it; the SM clock is read from the spin kernel."""
    import torch

    t = _timing(lambda x: (x * 2).sin().exp(), [torch.randn(1 << 20, device="cuda")])
    assert t.method == "graph" and not t.fallback, t
    assert 0 < t.median_ms <= 1.05 * t.replay_ms and t.iqr_ms < 0.1 * t.median_ms, t
    assert 300 < t.sm_mhz < 5000, t


def test_graph_without_a_device_trace_is_timed_by_events():
    """While another profiler runs, no trace can be made: the replays are timed by events, and the method
    says so."""
    import torch

    x = torch.randn(1 << 20, device="cuda")
    with torch.autograd.profiler.profile(use_device="cuda", use_kineto=True):
        t = _timing(torch.tanh, [x])
    assert t.method == "graph_events" and "no device trace" in t.fallback, t
    assert t.median_ms == t.replay_ms > 0, t


def test_prepared_graph_is_measured_later_alone():
    """prepare_timing captures and checks the graph; other GPU work may run before measure(), which times the
    replays alone: the same result as timing in one go, and the graph is let go after it."""
    import torch

    from verify.timing import prepare_timing

    flush = torch.empty(64 * 2**20 // 4, device="cuda")
    kw = dict(warmup=2, min_reps=20, max_reps=200, budget_ms=20.0, flush=flush)
    x = torch.randn(1 << 22, device="cuda")
    ready = prepare_timing(torch.tanh, [x], **kw)
    a = torch.randn(4096, 4096, device="cuda")
    for _ in range(20):  # queued work of another kind between capture and measurement
        a = torch.mm(a, a).clamp_(-1, 1)
    later = ready.measure()
    now = _timing(torch.tanh, [x])
    assert later.method == now.method == "graph" and not later.fallback, (later, now)
    assert abs(later.median_ms / now.median_ms - 1) < 0.05, (later, now)
    assert ready._cap is None
