"""verify.gpu_frontend: on a machine without a GPU, the programs' kernels go through Triton's front end for
sm_90 with their real launch arguments. Every fixture compiles; a kernel the interpreter runs but the GPU
compiler rejects is reported with the compiler's reason."""
from verify import extract_program
from verify.fixtures import fixture_candidate, fixture_names, fixture_task
from verify.gpu_frontend import front_end_reports

# runs correctly in the interpreter: `rest` changes shape inside the loop, which the GPU compiler rejects
LOOP_CARRIED_SHAPE_CHANGE = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def row_sum_kernel(x_ptr, out_ptr, n_rows, n_cols, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    rest = rows * n_cols
    acc = tl.zeros((BLOCK_R, BLOCK_C), dtype=tl.float32)
    for c0 in range(0, n_cols, BLOCK_C):
        rest = c0 + tl.arange(0, BLOCK_C)[None, :]
        acc += tl.load(x_ptr + rows * n_cols + rest, mask=(rows < n_rows) & (rest < n_cols), other=0.0)
    tl.store(out_ptr + rows, tl.sum(acc, axis=1, keep_dims=True), mask=rows < n_rows)


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty(x.shape[0], device=x.device, dtype=x.dtype)
        row_sum_kernel[(triton.cdiv(x.shape[0], 16),)](x, out, x.shape[0], x.shape[1], BLOCK_R=16, BLOCK_C=64)
        return out
'''

ROW_SUM_TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return x.sum(dim=1)


def get_inputs():
    return [torch.randn(64, 200)]


def get_init_inputs():
    return []
'''


def test_fixtures_compile_and_a_gpu_only_error_is_reported():
    names = fixture_names()
    pairs = [(fixture_task(n).code, extract_program(fixture_candidate(n))) for n in names]
    reports = front_end_reports([*pairs, (ROW_SUM_TASK, LOOP_CARRIED_SHAPE_CHANGE)])
    for name, report in zip(names, reports):
        assert (report["kernels"] >= 1 and not report["errors"]
                and report["forward_error"] is None), (name, report)
    bad = reports[-1]
    assert bad["kernels"] == 1 and len(bad["errors"]) == 1
    assert bad["errors"][0].startswith("row_sum_kernel:") and "Loop-carried variable rest" in bad["errors"][0]


def test_cpu_verifier_rejects_what_a_gpu_would_not_compile(verifier):
    """The interpreter alone accepts the program; the CPU verifier (gpu_compile_check, on by default)
    rejects it at the compile stage, as a GPU would."""
    from verify import Task, Verifier, VerifyConfig

    task, text = Task.from_code(ROW_SUM_TASK, id="row_sum"), f"```python\n{LOOP_CARRIED_SHAPE_CHANGE}\n```"
    v = verifier.verify(task, text)
    assert (v.stage, v.error_class) == ("compile", "triton_compile_error") and "Loop-carried" in v.message
    with Verifier(VerifyConfig(gpu_compile_check=False), workers=1, cache=False) as interpreter_only:
        assert interpreter_only.verify(task, text).accepted
