"""On a CUDA GPU: the same suite compiled for real and timed (eager baseline in the same process)."""
import pytest

pytestmark = pytest.mark.gpu


def test_correct_candidates_accepted_and_timed(suite_verdicts):
    for task, v in suite_verdicts["good"]:
        assert v.accepted, f"{task.id}: {v.stage}/{v.error_class}: {v.message}"
        assert v.backend == "triton-gpu" and v.timed, f"{task.id}: {v.stage}/{v.error_class}: {v.message}"
        assert v.candidate.median_ms > 0 and v.eager.median_ms > 0 and v.speedup_eager > 0
        assert v.candidate.runs >= 20
        # every fixture (and its eager model) captures into a CUDA graph whose replay passes the input check
        assert (v.candidate.method, v.eager.method) == ("graph", "graph"), (task.id, v.candidate, v.eager)


def test_adversarial_rejected_on_gpu(suite_verdicts):
    wrong = [(c["name"], v.stage, v.error_class, v.message) for c, v in suite_verdicts["bad"]
             if (v.stage, v.error_class) != (c["stage"], c["error_class"])]
    assert not wrong, wrong


HOST_OFFLOAD = '''
import numpy as np
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def scale_bias_kernel(x_ptr, bias_ptr, out_ptr, n_elements, dim, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask)
    b = tl.load(bias_ptr + offs % dim, mask=mask)
    tl.store(out_ptr + offs, x * scale + b, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, dim, scale):
        super().__init__()
        self.scale = scale
        self.bias = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        relu = torch.from_numpy(np.maximum(x.detach().cpu().numpy(), np.float32(0))).to(x.device)
        out = torch.empty_like(x)
        n = x.numel()
        scale_bias_kernel[(triton.cdiv(n, 1024),)](relu, self.bias, out, n, x.shape[-1], self.scale,
                                                   BLOCK=1024)
        return out
'''


def test_work_moved_to_the_host_is_rejected(verifier):
    """Half the program in numpy is compute outside the kernels (issue 23: numpy followed by a Triton kernel
    was an audit blind spot), whatever its timing would show."""
    from verify.fixtures import fixture_task

    v = verifier.verify(fixture_task("relu_scale_bias"), HOST_OFFLOAD)
    assert (v.stage, v.error_class) == ("faithful", "torch_fallback"), v.summary()


def test_a_host_round_trip_is_timed_call_by_call(verifier):
    """An honest kernel whose output makes a round trip through host memory (free data movement, no
    compute): a graph cannot capture the device-to-host copy, so candidate and eager are both timed call by
    call, and the copy's time counts."""
    from verify.fixtures import fixture_candidate, fixture_task

    honest = fixture_candidate("relu_scale_bias")
    text = honest.replace("        return out", "        return out.cpu().to(x.device)")
    v = verifier.verify(fixture_task("relu_scale_bias"), text)
    assert v.accepted and v.timed, v.summary()
    assert (v.candidate.method, v.eager.method) == ("stream", "stream"), (v.candidate, v.eager)
    assert "CUDA graph capture failed" in v.candidate.fallback, v.candidate
    assert any("not from a CUDA graph" in f for f in v.timing_flags), v.timing_flags
