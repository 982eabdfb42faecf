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
