"""The replayed check on CPU (verify/record.py, verify/replay.py): a forward recorded in one process and run
again on new inputs from the recording alone.

In-process: an honest forward recorded under the audit replays to the right answer on new inputs; a storage
that existed before the forward is snapshotted before an in-place op changes it; a recording naming a storage
it never described, holding no launch, or running torch compute cannot be replayed; kernels are vetted with
`ast` before their source is executed. End to end: the verifier accepts an honest candidate and rejects one
that computes on the host with numpy and copies the answer out with a Triton kernel (`replay_mismatch`).
"""

import io
import math

import pytest
import torch

from verify import Verifier, VerifyConfig, launches
from verify.audit import TorchAudit
from verify.fixtures import fixture_task
from verify.launches import TRACKER
from verify.record import Recorder
from verify.replay import ReplayError, build_kernels, kernel_source, replay

KERNELS = """
import math
import os
import torch
import triton
import triton.language as tl

SCALE = tl.constexpr(2.0)


@triton.autotune(configs=[triton.Config({"BLOCK": 64})], key=["n"])
@triton.jit
def scale_exp(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.exp(tl.load(x_ptr + offs, mask=mask)) * SCALE, mask=mask)


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.randn(8))

    def forward(self, x):
        y = x.view(-1)
        out = torch.empty_like(y)
        scale_exp[lambda meta: (triton.cdiv(y.numel(), meta["BLOCK"]),)](y, out, y.numel())
        return out.view(x.shape)[:, :4]
"""

HOST_NUMPY = """
import numpy as np
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


def _host(t):
    c = np.ctypeslib.ctypes
    return np.ctypeslib.as_array(c.cast(t.data_ptr(), c.POINTER(c.c_float)), shape=(t.numel(),))


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        scratch = torch.empty_like(x)
        _host(scratch)[...] = np.exp(_host(x) * np.float32(self.scale))
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 1024),)](scratch, out, x.numel(), BLOCK=1024)
        return out
"""

HONEST = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def exp_kernel(x_ptr, out_ptr, n, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.exp(tl.load(x_ptr + offs, mask=mask) * scale), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        exp_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), self.scale, BLOCK=1024)
        return out
"""


def _kernels_module(tmp_path, device="cpu"):
    from verify.inputs import load_module

    path = tmp_path / "cand.py"
    path.write_text(KERNELS)
    return load_module(path, f"_test_replay_candidate_{device}")


def _recorded(forward, model, inputs):
    """The recording of `forward(*inputs)`, through torch.save and a weights_only load, and its output."""
    launches.install()
    recorder = Recorder(inputs, model)
    audit = TorchAudit(poison_alloc=True)
    audit.recorder = TRACKER.recorder = recorder
    TRACKER.reset("count")
    try:
        with torch.no_grad(), audit:
            out = forward(*inputs)
    finally:
        TRACKER.mode = "off"
        audit.recorder = TRACKER.recorder = None
    buf = io.BytesIO()
    torch.save(recorder.finish(out), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True), out


def _record(tmp_path, inputs, device="cpu"):
    """The recording of one forward of KERNELS' ModelNew."""
    model = _kernels_module(tmp_path, device).ModelNew().to(device)
    return _recorded(model, model, inputs)


def test_honest_recording_replays_on_new_inputs(tmp_path):
    rec, out = _record(tmp_path, [torch.randn(8, 16)])
    assert rec["error"] is None, rec["error"]
    assert [s["kind"] for s in rec["steps"]].count("launch") == 1
    assert next(s for s in rec["steps"] if s["kind"] == "launch")["grid"] == [2]
    x = torch.randn(8, 16)
    kernels = build_kernels(KERNELS, str(tmp_path))
    got = replay(rec, kernels, [x], "cpu")
    torch.testing.assert_close(got, (torch.exp(x) * 2.0)[:, :4])
    assert not torch.allclose(got, out)


def test_unknown_storage_is_rejected(tmp_path):
    rec, _ = _record(tmp_path, [torch.randn(8, 16)])
    launch = next(s for s in rec["steps"] if s["kind"] == "launch")
    launch["args"][0]["tensor"]["ref"] = "const:99"
    with pytest.raises(ReplayError, match="unknown storage 'const:99'"):
        replay(rec, build_kernels(KERNELS, str(tmp_path)), [torch.randn(8, 16)], "cpu")


def test_storage_changed_in_place_is_snapshotted_before_the_change(tmp_path):
    kernels = _kernels_module(tmp_path)
    workspace = torch.ones(128)  # made before the forward, not a parameter: a constant of the recording

    def forward(x):
        workspace.mul_(3.0)
        out = torch.empty_like(x)
        kernels.scale_exp[(2,)](workspace, out, 128)
        return out

    rec, out = _recorded(forward, torch.nn.Module(), [torch.randn(128)])
    assert rec["error"] is None, rec["error"]
    got = replay(rec, build_kernels(KERNELS, str(tmp_path)), [torch.randn(128)], "cpu")
    torch.testing.assert_close(got, out)
    torch.testing.assert_close(got, torch.full((128,), 2.0 * math.exp(3.0)))


def test_recording_without_launch_or_with_torch_compute_is_rejected(tmp_path):
    rec, _ = _record(tmp_path, [torch.randn(8, 16)])
    kernels = build_kernels(KERNELS, str(tmp_path))
    no_launch = {**rec, "steps": [s for s in rec["steps"] if s["kind"] != "launch"]}
    with pytest.raises(ReplayError, match="no Triton launch"):
        replay(no_launch, kernels, [torch.randn(8, 16)], "cpu")
    exp = {"kind": "op", "name": "aten::exp.default", "args": [], "kwargs": {}, "outs": []}
    forged = {**rec, "steps": [exp, *rec["steps"]]}
    with pytest.raises(ReplayError, match="computes with torch outside the kernels"):
        replay(forged, kernels, [torch.randn(8, 16)], "cpu", allowed={"empty_like", "view", "slice"})


def test_kernel_source_keeps_only_kernels():
    source, names = kernel_source(KERNELS)
    assert names == ["scale_exp"]
    assert "SCALE = tl.constexpr(2.0)" in source and "autotune" not in source
    assert "import os" not in source and "import torch" not in source and "ModelNew" not in source


@pytest.mark.parametrize("body, why", [
    ("    import os\n", "a Import statement"),
    ("    m = tl.core\n", "tl.core is a module"),
    ("    f = triton.runtime.build.os.system\n", "reaches module triton.runtime"),
    ("    y = x.handle\n", "attribute 'handle'"),
    ("    y = x.__class__\n", "attribute '__class__'"),
    ("    y = open('/etc/passwd')\n", "uses 'open'"),
    ("    y = np.exp(x)\n", "uses 'np'"),
    ("    y = runtime.driver\n", "uses 'runtime'"),
])
def test_kernel_body_is_vetted_before_exec(body, why):
    head = "import numpy as np\nimport triton\nimport triton.language as tl\nfrom triton import runtime\n"
    program = f"{head}@triton.jit\ndef k(x):\n{body}"
    with pytest.raises(ReplayError, match=why):
        kernel_source(program)


def test_verifier_replays_honest_and_rejects_host_compute():
    task = fixture_task("exp_scale")
    with Verifier(VerifyConfig(timeout_s=120), workers=2, cache=False) as v:
        honest, host = v.verify_many([(task, HONEST), (task, HOST_NUMPY)])
    assert honest.accepted, honest.summary()
    assert (host.stage, host.error_class) == ("faithful", "replay_mismatch"), host.summary()
