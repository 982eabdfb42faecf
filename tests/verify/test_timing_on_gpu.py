"""On a CUDA GPU: the graph timing method measures real work and refuses replays that skip it."""
import pytest

pytestmark = pytest.mark.gpu


def _timing(fn, args, method="graph"):
    import torch

    from verify.timing import time_callable

    flush = torch.empty(64 * 2**20 // 4, device="cuda")
    return time_callable(fn, args, warmup=2, min_reps=20, max_reps=200, budget_ms=20.0, flush=flush, method=method)


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
    the replay check finds outputs that do not follow the inputs, and the call is timed by the stream method."""
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
