"""A kernel that reads one element past the end of an input (an off-by-one load mask) reads NaN from the
input's guard band, so the verdict no longer depends on whatever the allocator placed there: without the
guard this candidate was accepted or rejected by chance."""
from verify import Task

ROW_SUM_TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return x.sum(dim=1)


def get_inputs():
    return [torch.randn(1, 100)]


def get_init_inputs():
    return []
'''

LOAD_PAST_END = '''```python
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def row_sum_kernel(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols <= n_cols, other=0.0)  # one element too many
    tl.store(out_ptr + row, tl.sum(x, axis=0))


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty(x.shape[0], device=x.device, dtype=x.dtype)
        row_sum_kernel[(x.shape[0],)](x, out, x.shape[1], BLOCK=triton.next_power_of_2(x.shape[1] + 1))
        return out
```'''


def test_a_load_past_the_end_of_an_input_reads_nan(verifier):
    v = verifier.verify(Task.from_code(ROW_SUM_TASK, id="row_sum_1x100"), LOAD_PAST_END)
    assert (v.stage, v.error_class) == ("correct", "nan_or_inf"), (v.stage, v.error_class, v.message)
    assert "read past the end of an input" in v.message
    fixed = LOAD_PAST_END.replace("mask=cols <= n_cols", "mask=cols < n_cols")
    assert verifier.verify(Task.from_code(ROW_SUM_TASK, id="row_sum_1x100"), fixed).accepted
