"""Attacks on the trust boundary, each a candidate run through a real Verifier on the CPU interpreter with
the static checks OFF (so that only the boundary stands in the way): the verdict is decided where no
candidate code runs, the reference outputs are out of the candidate's reach, nothing one candidate does
reaches the next, and nothing it starts outlives its job."""

import os
import time

import pytest

from verify import Verifier, VerifyConfig
from verify.confine import landlock_abi
from verify.fixtures import fixture_task

TASK = "gelu_scale"

# a correct gelu_scale program; ATTACK runs at import, FORWARD_PRE inside forward before the kernel
PROGRAM = """
import gc, glob, json, os, sys, time
import torch
import torch.nn as nn
import triton
import triton.language as tl

ATTACK


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

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        n = x.numel()
        src = FORWARD_PRE
        if src is not None:
            copy_kernel[(triton.cdiv(n, 1024),)](src.contiguous().reshape(-1), out, n, BLOCK=1024)
            return out
        gelu_scale_kernel[(triton.cdiv(n, 8192),)](x, out, n, self.scale, BLOCK=8192)
        return out
"""


def program(attack: str = "", forward_pre: str = "None") -> str:
    return PROGRAM.replace("ATTACK", attack).replace("FORWARD_PRE", forward_pre)


@pytest.fixture(scope="module")
def open_verifier():
    """Two forked workers, static checks off: every attack reaches the worker."""
    with Verifier(
        VerifyConfig(timeout_s=60, static_checks=False, gpu_compile_check=False), workers=2, cache=False
    ) as v:
        yield v


def _verdict(v, text):
    return v.verify(fixture_task(TASK), text)


def test_the_template_is_accepted(open_verifier):
    """Every attack below is this correct program plus the attack: without it, it is accepted."""
    assert _verdict(open_verifier, program()).accepted


FORGE_VERDICT = """
_forged = json.dumps({"kind": "result", "status": "ok", "job_id": "x", "message": "",
                      "result": {"accepted": True, "stage": None, "error_class": None,
                                 "stages": {s: "pass" for s in ("format", "compile", "faithful",
                                                                "correct", "timed")}}})
for fd in range(3, 256):
    try:
        os.write(fd, _forged.encode())
    except OSError:
        pass
for pattern in ("/tmp/drt_*/*", "/tmp/drt_*/*/*", "/tmp/drt_*/*/*/*"):
    for path in glob.glob(pattern):
        try:
            with open(path, "w") as f:
                f.write(_forged)
        except OSError:
            pass
os._exit(0)
"""


def test_a_forged_verdict_is_not_a_verdict(open_verifier):
    """Writes an 'accepted' verdict to every descriptor it holds and every file it can reach, then exits:
    the sandbox takes no verdict from a worker, so the job ends as a crash."""
    v = _verdict(open_verifier, program(FORGE_VERDICT))
    assert not v.accepted and (v.stage, v.error_class) == ("correct", "crash"), v.summary()
    assert _verdict(open_verifier, program()).accepted, "the forgery reached the next job"


READ_REFERENCES = """
_files = []
for pattern in ("/tmp/*/*.pt", "/tmp/*/*/*.pt", "/tmp/*.pt", "/dev/shm/*/*.pt"):
    for path in glob.glob(pattern):
        try:
            _files.append((os.path.getmtime(path), torch.load(path, weights_only=True)))
        except Exception:
            pass
# the newest reference file of a task with this output shape: its outputs in trial order
_answers = [ref["outputs"] for _, ref in sorted(_files, key=lambda f: -f[0])
            if isinstance(ref, dict) and ref.get("outputs")
            and getattr(ref["outputs"][0], "shape", None) == (64, 1024)]
_answers = _answers[0] if _answers else []
_calls = [0]


def _pick(x):
    n, _calls[0] = _calls[0], _calls[0] + 1
    if n < len(_answers) and _answers[n].shape == x.shape:
        return _answers[n]
    return torch.zeros_like(x)
"""


def _answer():
    """forward: the reference output of this call's trial, read from the verifier's file (an answer key)."""
    return "_pick(x)"


@pytest.mark.skipif(
    landlock_abi() < 1, reason="without Landlock a worker can read the temp folder (see confine.py)"
)
def test_reference_outputs_on_disk_are_out_of_reach(open_verifier):
    """Looks for the reference files of the verifier and returns the matching reference output: it finds
    nothing to read (the verifier's folders and the temp folder are hidden) and answers zeros."""
    v = _verdict(open_verifier, program(READ_REFERENCES, _answer()))
    assert not v.accepted and v.error_class == "wrong_values", v.summary()


OVERWRITE_REFERENCES = """
for pattern in ("/tmp/*/*.pt", "/tmp/*/*/*.pt"):
    for path in glob.glob(pattern):
        try:
            torch.save({"outputs": [torch.zeros(64, 1024)] * 8}, path)
        except Exception:
            pass
"""


def test_overwriting_the_reference_outputs_does_not_help(open_verifier):
    """Overwrites every reference file it can find with zeros and answers zeros: the files are out of
    reach (and one that changed would fail the judge's digest check, see test_boundary_judge_on_cpu)."""
    v = _verdict(open_verifier, program(OVERWRITE_REFERENCES, "torch.zeros_like(x)"))
    assert not v.accepted, v.summary()
    assert _verdict(open_verifier, program()).accepted, "the reference of the task was damaged"


PATCH_VERIFIER = """
import verify.compare, verify.judge, verify.worker
from verify.compare import Comparison
_ok = lambda *a, **k: Comparison(True)
for _name, _mod in list(sys.modules.items()):
    if _name.startswith("verify") and _mod is not None:
        for _attr in ("compare", "state_mismatch", "_faithful", "same"):
            if hasattr(_mod, _attr):
                setattr(_mod, _attr, _ok)
verify.judge.Judge.verdict = lambda self, outcome: self.v
"""


def test_patching_the_verifiers_modules_changes_nothing(open_verifier):
    """Replaces verify.compare.compare and the judge's methods in every verify.* module it can reach, then
    answers zeros: the judge runs in the verifier's process, where nothing was patched."""
    v = _verdict(open_verifier, program(PATCH_VERIFIER, "torch.zeros_like(x)"))
    assert not v.accepted and v.error_class in ("wrong_values", "monkey_patch"), v.summary()


SHADOW_TENSOR = """
torch.Tensor.allclose = lambda self, *a, **k: True
torch.Tensor.equal = lambda self, *a, **k: True
torch.Tensor.__sub__ = lambda self, other: torch.zeros_like(self)
torch.Tensor.abs = lambda self: torch.zeros_like(self)
torch.Tensor.max = lambda self, *a, **k: torch.zeros(())
"""


def test_tensor_methods_shadowed_in_the_worker_do_not_reach_the_comparison(open_verifier):
    """Adds attributes on torch.Tensor that shadow inherited methods (new keys: an integrity snapshot of
    the old keys misses them) so that differences vanish, and answers zeros."""
    v = _verdict(open_verifier, program(SHADOW_TENSOR, "torch.zeros_like(x)"))
    assert not v.accepted and v.error_class in ("wrong_values", "monkey_patch"), v.summary()


ATEN_OVERRIDE = """
_lib = torch.library.Library("aten", "IMPL")
def _zero_sub(a, b, alpha=1):
    return torch.zeros(torch.broadcast_shapes(a.shape, b.shape), dtype=a.dtype)
_lib.impl("sub.Tensor", _zero_sub, "CPU")
_lib.impl("abs", lambda a: torch.zeros(a.shape, dtype=a.dtype), "CPU")
"""


def test_an_aten_kernel_overridden_in_the_worker_does_not_reach_the_comparison(open_verifier):
    """Overrides aten::sub and aten::abs for CPU through torch.library (no Python attribute changes at all)
    and answers zeros: the comparison runs in another process."""
    v = _verdict(open_verifier, program(ATEN_OVERRIDE, "torch.zeros_like(x)"))
    assert not v.accepted and v.error_class in ("wrong_values", "torch_fallback", "monkey_patch"), v.summary()


FRAME_WALK = """
def _search():
    found = []
    try:
        raise RuntimeError
    except RuntimeError as e:
        frame = e.__traceback__.tb_frame
    while frame is not None:
        found += [v for v in frame.f_locals.values() if isinstance(v, torch.Tensor)]
        frame = frame.f_back
    found += [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
    return found
"""


def test_no_reference_output_is_in_the_workers_memory(open_verifier):
    """Walks the frames above forward (tb_frame.f_back) and every object gc knows for a tensor of the output's
    shape that is not the input (a reference output the worker holds), and returns it: there is none."""
    pick = (
        "next((t for t in _search() if t.shape == x.shape and t.data_ptr() != x.data_ptr() "
        "and t.abs().sum() > 0 and not torch.equal(t, x)), torch.zeros_like(x))"
    )
    v = _verdict(open_verifier, program(FRAME_WALK, pick))
    assert not v.accepted, v.summary()


LEAVE_BEHIND = """
_marks = []
for _d in (os.environ.get("TMPDIR", ""), "/tmp", os.path.expanduser("~"), os.getcwd(),
           os.environ.get("TRITON_CACHE_DIR", "")):
    if _d:
        _marks.append(os.path.join(_d, "drt_attack_mark_MARK"))
if os.environ.get("DRT_ROLE_MARK", "write") == "write":
    for _m in _marks:
        try:
            with open(_m, "w") as f:
                f.write("x")
        except OSError:
            pass
    torch.Tensor.abs = lambda self: torch.zeros_like(self)
    os.environ["DRT_ROLE_MARK"] = "read"
"""


def test_nothing_a_candidate_leaves_reaches_the_next(open_verifier):
    """The first candidate writes marks in every folder it can name, patches torch and its own environment;
    the second (a correct program) raises if it sees any of it: fresh process, private folders."""
    mark = str(os.getpid())
    first = LEAVE_BEHIND.replace("MARK", mark)
    second = (
        """
if os.environ.get("DRT_ROLE_MARK") or torch.Tensor.abs.__name__ == "<lambda>":
    raise RuntimeError("state carried over from the previous candidate")
for _d in (os.environ.get("TMPDIR", ""), "/tmp", os.path.expanduser("~"), os.getcwd()):
    if _d and os.path.exists(os.path.join(_d, "drt_attack_mark_MARK")):
        raise RuntimeError("a file carried over from the previous candidate: " + _d)
"""
    ).replace("MARK", mark)
    _verdict(open_verifier, program(first))
    v = _verdict(open_verifier, program(second))
    for d in ("/tmp", os.path.expanduser("~"), os.getcwd()):
        path = os.path.join(d, f"drt_attack_mark_{mark}")
        if os.path.exists(path):
            os.unlink(path)
    assert v.accepted, v.summary()


def _alive(marker: str) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


GRANDCHILD = """
if os.fork() == 0:
    os.setsid()  # leave the worker's process group
    if os.fork() == 0:
        os.execv("/bin/sleep", ["/bin/sleep", "SECONDS"])
    os._exit(0)
time.sleep(0.2)
"""


def test_no_descendant_outlives_its_job(open_verifier):
    """Starts a grandchild in its own session (a double fork, so that it is re-parented) that would
    outlive the worker: it is killed with the job, and the next candidate is judged normally."""
    seconds = "297.125"  # a unique command line to find it by
    v = _verdict(open_verifier, program(GRANDCHILD.replace("SECONDS", seconds)))
    assert v.accepted, v.summary()  # the attack itself answers correctly
    deadline = time.monotonic() + 10
    while _alive(seconds) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(seconds), "a descendant of the candidate outlived its job"
    assert not _verdict(open_verifier, program("", "torch.zeros_like(x)")).accepted


@pytest.mark.skipif(landlock_abi() < 6, reason="signal scoping needs Landlock ABI 6 (Linux 6.12)")
def test_the_worker_cannot_signal_the_verifier(open_verifier):
    """Asks whether it may signal its parent (the worker server) and the verifier's process (signal 0: the
    permission check alone, so that a failure of this test kills nothing): both refuse."""
    attack = SIGNAL_PROBE.replace("VERIFIER", str(os.getpid()))
    v = _verdict(open_verifier, program(attack))
    assert v.accepted, v.summary()


SIGNAL_PROBE = """
for _pid in (os.getppid(), VERIFIER):
    try:
        os.kill(_pid, 0)
    except PermissionError:
        continue
    raise RuntimeError(f"may signal process {_pid}")
"""
