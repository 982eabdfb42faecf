"""The replayed check with compiled Triton on a CUDA device: a forward recorded on the GPU (tensors, grid,
autotuned block size) replays to the right answer on new inputs, its kernels compiled from their vetted
source; and the verifier accepts an honest candidate end to end."""

import pytest
import torch

from tests.verify.test_replay_on_cpu import HONEST, KERNELS, _record
from verify import Verifier, VerifyConfig
from verify.fixtures import fixture_task
from verify.replay import build_kernels, replay

pytestmark = pytest.mark.gpu


def test_recording_replays_on_the_gpu(tmp_path):
    rec, out = _record(tmp_path, [torch.randn(8, 16, device="cuda")], device="cuda")
    assert rec["error"] is None, rec["error"]
    x = torch.randn(8, 16, device="cuda")
    got = replay(rec, build_kernels(KERNELS, str(tmp_path)), [x], "cuda")
    torch.testing.assert_close(got, (torch.exp(x) * 2.0)[:, :4].cpu())


def test_verifier_accepts_honest_candidate_on_the_gpu():
    with Verifier(VerifyConfig(timeout_s=120, timing=False), workers=1, cache=False) as v:
        verdict = v.verify(fixture_task("exp_scale"), HONEST)
    assert verdict.accepted, verdict.summary()
