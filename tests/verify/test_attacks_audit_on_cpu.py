"""The torch audit against the ways a forward can compute with torch unseen: another thread, the dispatch
modes switched off, a grid callable, a raised tracker counter, a torch.library op named like a free op or a
kernel swapped in behind a free op's name, data read out to numpy; and its guard bands on every allocation.
Each attack runs under the real TorchAudit (and the real launch tracker), as the worker runs a forward."""
import sys
import threading

import pytest
import torch
import triton
import triton.language as tl

from verify import launches
from verify.audit import TorchAudit, foreign_tensors, replaced_kernels
from verify.config import FREE_TORCH_OPS, VerifyConfig

launches.install()
ALLOWED = set(VerifyConfig().allowed_torch_ops)


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=offs < n), mask=offs < n)


def copy(src: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(src)
    copy_kernel[(triton.cdiv(src.numel(), 256),)](src, out, src.numel(), BLOCK=256)
    return out


def audited(forward, *args):
    """(banned ops, audit) of one forward run as the worker runs it."""
    audit = TorchAudit()
    launches.TRACKER.reset("count")
    try:
        with torch.no_grad(), audit:
            forward(*args)
    finally:
        launches.TRACKER.mode = "off"
    return audit.compute_ops(set(FREE_TORCH_OPS), ALLOWED)[1], audit


X = torch.randn(64, 32)


def test_an_honest_forward_is_clean():
    banned, audit = audited(lambda x: copy(x.contiguous().view(64, 32).to(torch.float32)), X)
    assert banned == [] and audit.overruns() == 0


def test_compute_in_another_thread_is_seen():
    def forward(x):
        box = []
        worker = threading.Thread(target=lambda: box.append(torch.tanh(x)))
        worker.start()
        worker.join()
        return copy(box[0])

    assert "tanh" in audited(forward, X)[0]


def test_compute_in_a_thread_started_before_the_forward_is_seen():
    go, done, box = threading.Event(), threading.Event(), []

    def serve():
        go.wait()
        box.append(torch.sigmoid(X))
        done.set()

    threading.Thread(target=serve, daemon=True).start()

    def forward(x):
        go.set()
        done.wait()
        return copy(box[0])

    assert "sigmoid" in audited(forward, X)[0]


def test_compute_with_the_dispatch_modes_switched_off_is_seen():
    def forward(x):
        with sys.modules["torch._C"]._DisableTorchDispatch():
            y = torch.exp(x)
        return copy(y)

    assert "exp" in audited(forward, X)[0]


def test_compute_in_a_grid_callable_is_seen():
    def forward(x):
        scratch, out = torch.empty_like(x), torch.empty_like(x)

        def grid(meta):
            scratch.copy_(torch.sin(x))
            return (triton.cdiv(x.numel(), meta["BLOCK"]),)

        copy_kernel[grid](scratch, out, x.numel(), BLOCK=256)
        return out

    assert "sin" in audited(forward, X)[0]


def test_raising_the_tracker_counter_hides_nothing():
    def forward(x):
        launches.TRACKER.in_kernel = 1  # the counter the audit once trusted; now just an attribute
        y = torch.cos(x)
        return copy(y)

    assert "cos" in audited(forward, X)[0]


def test_a_custom_op_named_like_a_free_op_is_compute():
    lib = torch.library.Library("drt_test_audit", "DEF")
    lib.define("clone(Tensor x) -> Tensor")
    lib.impl("clone", lambda x: torch.relu(x), "CompositeExplicitAutograd")
    banned, _ = audited(lambda x: copy(torch.ops.drt_test_audit.clone(x)), X)
    assert "drt_test_audit::clone" in banned


def test_a_kernel_swapped_in_behind_a_free_op_is_reported():
    assert replaced_kernels() == []
    lib = torch.library.Library("aten", "IMPL")
    lib.impl("alias", lambda x: torch.from_numpy(x.numpy() * 2), "CPU")
    try:
        banned, _ = audited(lambda x: copy(torch.ops.aten.alias(x)), X)
        assert any(op.startswith("alias (its kernel replaced") for op in banned), banned
    finally:
        del lib  # the registration goes with its Library object
    assert replaced_kernels() == []


@pytest.mark.parametrize("export", [lambda x: x.numpy(), lambda x: x.tolist(), lambda x: x.__array__()])
def test_data_read_out_to_the_host_is_compute(export):
    def forward(x):
        export(x)
        return copy(x)

    assert any(op.startswith("Tensor.") for op in audited(forward, X)[0])


@pytest.mark.parametrize("alloc", [torch.zeros_like, torch.ones_like, lambda x: torch.full_like(x, 2.0),
                                   torch.clone, torch.empty_like])
def test_every_allocation_has_a_guard_band(alloc):
    @triton.jit
    def store_one_too_many(out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        tl.store(out_ptr + offs, 1.0, mask=offs <= n)

    def forward(x):
        out = alloc(x)
        store_one_too_many[(1,)](out, out.numel(), BLOCK=4096)
        return out

    _, audit = audited(forward, torch.randn(1000))
    assert audit.overruns() == 1


def test_filled_allocations_keep_their_values():
    def forward(x):
        kept.extend([torch.zeros_like(x), torch.full((3,), 7.0), x.clone()])
        return copy(x)

    kept = []
    audited(forward, X)
    assert kept[0].eq(0).all() and kept[1].eq(7).all() and torch.equal(kept[2], X)


def test_a_stopped_recording_is_tampering():
    def forward(x):
        sys.modules["torch.autograd.profiler"]._disable_profiler()
        return copy(torch.relu(x))

    banned, _ = audited(forward, X)
    assert any("recording" in op for op in banned), banned


def test_foreign_tensor_types_include_parameter_subclasses():
    class Lazy(torch.nn.Parameter):
        pass

    module = torch.nn.Linear(2, 2)
    assert foreign_tensors([torch.zeros(1), torch.nn.Parameter(torch.zeros(1))], module) == []
    assert foreign_tensors(Lazy(torch.zeros(1))) == ["output: Lazy"]
    module.weight = Lazy(torch.zeros(2, 2))
    assert foreign_tensors(torch.zeros(1), module) == ["weight: Lazy"]


def test_a_thread_started_in_forward_is_reported_even_without_torch_ops():
    def forward(x):
        worker = threading.Thread(target=lambda: x.numpy().sum())  # numpy only: no op to record
        worker.start()
        worker.join()
        return copy(x)

    banned, _ = audited(forward, X)
    assert "a thread started during forward" in banned


def test_a_parked_thread_of_the_candidate_is_reported():
    release = threading.Event()
    parked = threading.Thread(target=lambda: release.wait(), daemon=True)  # a frame of this (untrusted) file
    parked.start()
    try:
        banned, _ = audited(lambda x: copy(x), X)
    finally:
        release.set()
        parked.join()
    assert any(op.startswith("a thread running") for op in banned), banned
    assert audited(lambda x: copy(x), X)[0] == []  # gone with its thread


def test_code_torch_compile_generated_is_compute():
    compiled = torch.compile(lambda x: torch.relu(x) * 2)
    compiled(X)

    def forward(x):  # in a thread of its own the compiled code runs as generated C++: no aten op recorded
        box = []
        worker = threading.Thread(target=lambda: box.append(compiled(x)))
        worker.start()
        worker.join()
        return copy(box[0])

    assert "torch.compile" in audited(forward, X)[0]


def test_many_scalar_reads_are_host_compute_a_few_are_glue():
    def forward(x, reads):
        for i in range(reads):
            x[0, i % 32].item()
        return copy(x)

    assert audited(forward, X, 8)[0] == []
    assert any(op.startswith("Tensor.item (over") for op in audited(forward, X, 200)[0])


def test_a_kernel_that_records_only_free_children_still_computes():
    """On CPU a mul by a Python scalar records the scalar's conversion (`to`, `_to_copy`) as its children;
    on CUDA most ops record their output allocation: a real kernel is compute whatever its children are
    (once judged by its children, every op of this forward went unseen on a GPU)."""
    def forward(x):
        with sys.modules["torch._C"]._DisableTorchDispatch():
            y = x * 2.0
        return copy(y)

    assert "mul" in audited(forward, X)[0]
