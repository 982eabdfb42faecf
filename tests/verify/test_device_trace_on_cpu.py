"""The device trace refuses to start inside another profiler (torch would nest the two sessions)."""
import pytest
import torch

from verify.device_trace import DeviceTrace, call_spans_ms


def test_refuses_to_nest_in_another_profiler():
    with torch.autograd.profiler.profile(use_kineto=True):
        with pytest.raises(RuntimeError, match="another profiler is running"):
            DeviceTrace().__enter__()
    assert not torch.autograd._profiler_enabled()


def test_spans_follow_the_calls():
    """Two kernels per call, a lead activity (the spin) skipped; a count that does not split is refused."""
    ivs = [(0, 100)] + [(1000 * c + o, 1000 * c + o + 200) for c in range(1, 4) for o in (0, 300)]
    assert call_spans_ms(ivs, 3, lead=1) == [0.0005] * 3
    assert call_spans_ms(ivs, 4, lead=1) is None and call_spans_ms([], 1) is None
