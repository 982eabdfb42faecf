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


def test_spans_skip_a_flush_before_each_group():
    """Two groups of two one-kernel calls, each group behind a flush of one activity; counts that do not
    split into the groups are refused."""
    ivs = [(0, 90), (100, 300), (400, 600), (1000, 1090), (1100, 1300), (1400, 1600)]
    assert call_spans_ms(ivs, 4, lead=1, groups=2) == [0.0002] * 4
    assert call_spans_ms(ivs, 4, lead=1, groups=3) is None and call_spans_ms(ivs, 3, lead=1, groups=2) is None
    assert call_spans_ms(ivs, 4, lead=2, groups=2) is None  # one activity per group left for two calls
