"""On a CUDA GPU: the calls that are timed are checked too. A candidate honest for its first N forward calls
(every trial) and lazy afterwards (a stale copy through a Triton copy kernel) must be rejected, whatever N,
and never read as accepted with a zero speed reward; an honest one is accepted and timed, in a fresh
confined process per candidate."""

import pytest

from verify import Verifier, VerifyConfig
from verify.fixtures import fixture_candidate, fixture_task

pytestmark = pytest.mark.gpu

LAZY_AFTER_N = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def gelu_scale_kernel(x_ptr, out_ptr, n_elements, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask)
    y = 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))
    tl.store(out_ptr + offs, y * scale, mask=mask)


@triton.jit
def copy_kernel(src_ptr, out_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    tl.store(out_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.calls = 0
        self.stale = None

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        n = x.numel()
        self.calls += 1
        if self.calls > N_HONEST and self.stale is not None and self.stale.shape == x.shape:
            copy_kernel[(triton.cdiv(n, 8192),)](self.stale, out, n, BLOCK=8192)
            return out
        gelu_scale_kernel[(triton.cdiv(n, 8192),)](x, out, n, self.scale, BLOCK=8192)
        self.stale = out
        return out
"""


@pytest.fixture(scope="module")
def gpu_verifier():
    with Verifier(VerifyConfig(timeout_s=120), workers=2, cache=False) as v:
        yield v


@pytest.mark.parametrize("n_honest", [6, 8, 24])
def test_honest_then_lazy_is_rejected(gpu_verifier, n_honest):
    """The trials (5 + a shape variant) and the no-op run pass; the timed calls return a stale answer.
    (Graph timing replays captured kernels without calling forward again: a candidate honest for more
    Python calls than the verifier makes, 64 say, is never lazy, and was accepted on an H200, rightly.)"""
    v = gpu_verifier.verify(fixture_task("gelu_scale"), LAZY_AFTER_N.replace("N_HONEST", str(n_honest)))
    assert v.stage == "timed" and v.error_class in ("timed_output_wrong", "implausible_speed"), v.summary()
    assert not v.accepted and not v.timed, (
        "a fooled timing must be a rejection, not an acceptance without speed"
    )


def test_honest_candidate_accepted_and_timed_in_a_confined_worker(gpu_verifier):
    v = gpu_verifier.verify(fixture_task("gelu_scale"), fixture_candidate("gelu_scale"))
    assert v.accepted and v.timed and v.speedup_eager > 0, v.summary()
    assert gpu_verifier.confinement in ("landlock", "none")


# An honest kernel that inflates its speedup: at import it wraps the timing's `measure` so that the first
# call of each timing (eager PyTorch's) reports five times its real median (range kept consistent, minimum
# left alone so the wall-clock check still holds). It reaches verify.timing through sys.modules and
# patches with setattr, which pass the static checks; verify.timing is no watched module, so nothing in the
# candidate's own process notices.
INFLATED_BASELINE = fixture_candidate("gelu_scale") + '''

import dataclasses as _dc
import sys as _sys

_timing = _sys.modules["verify.timing"]
_measure = _timing.PreparedTiming.measure
_seen = []


def _inflated(self):
    result = _measure(self)
    _seen.append(1)
    if len(_seen) % 2 == 1:  # eager is measured first, then the candidate
        slow = result.median_ms * 5
        result = _dc.replace(result, median_ms=slow, max_ms=max(result.max_ms, slow))
    return result


setattr(_timing.PreparedTiming, "measure", _inflated)
'''


def test_eager_baseline_slowed_in_the_candidates_process_is_rejected(gpu_verifier):
    """The judge holds the eager time the candidate's worker reports to the reference worker's own
    (verify/reference_timing.py): five times slower there is a fooled timing, a rejection."""
    v = gpu_verifier.verify(fixture_task("gelu_scale"), INFLATED_BASELINE)
    assert not v.accepted and v.stage == "timed" and v.error_class == "timing_inconsistent", v.summary()
    assert "reference worker" in v.message


# The same patch aimed at the candidate's own timing (the second measure of each round), kept above the
# memory-bandwidth bound (gelu_scale runs near it: 5 %). The candidate's time is measured in its own
# process; the judge bounds it by the bandwidth, checks the timed outputs and that the claims fit its wall
# clock (an upper bound only), so a process that under-reports its own time is not caught yet: the open gap
# of issue 23, stated in benchmarks/verify/RESULTS.md. The fix is timing the candidate's kernels from a
# process it cannot touch.
DEFLATED_CANDIDATE = INFLATED_BASELINE.replace("len(_seen) % 2 == 1", "len(_seen) % 2 == 0").replace(
    "result.median_ms * 5", "result.median_ms / 1.05").replace(
    "max_ms=max(result.max_ms, slow)", "min_ms=min(result.min_ms, slow)")


@pytest.mark.xfail(strict=True, reason="the candidate's own time is still measured in its process (issue 23)")
def test_candidate_time_under_reported_in_its_own_process_is_rejected(gpu_verifier):
    v = gpu_verifier.verify(fixture_task("gelu_scale"), DEFLATED_CANDIDATE)
    assert not v.accepted, v.summary()
