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


SCALE_TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return x * 2.0


def get_inputs():
    return [torch.randn(1000)]


def get_init_inputs():
    return []
'''

LOAD_AND_STORE_PAST_END = '''```python
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def scale_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs <= n  # one element too many, read and written
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2.0, mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        scale_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
        return out
```'''


def test_a_nan_read_past_an_input_and_stored_past_an_output_is_still_caught(verifier):
    """The element read from the input's NaN tail is NaN; stored past the end of the output it must not
    look like the output's (NaN-valued) guard band: guards carry a NaN payload of their own."""
    v = verifier.verify(Task.from_code(SCALE_TASK, id="scale_1000"), LOAD_AND_STORE_PAST_END)
    assert (v.stage, v.error_class) == ("correct", "out_of_bounds_write"), (v.stage, v.error_class, v.message)


INT_TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, idx):
        return idx * 3 + 1


def get_inputs():
    return [torch.randint(0, 1000, (4096,))]


def get_init_inputs():
    return []
'''

INT_CANDIDATE = '''```python
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def affine_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 3 + 1, mask=mask)


class ModelNew(nn.Module):
    def forward(self, idx):
        out = torch.empty_like(idx)
        affine_kernel[(triton.cdiv(idx.numel(), 1024),)](idx, out, idx.numel(), BLOCK=1024)
        return out
```'''


def test_a_task_whose_inputs_are_all_integers_is_a_task(verifier):
    """No float tensor among the inputs is not "only zero-valued float tensors": the task runs."""
    v = verifier.verify(Task.from_code(INT_TASK, id="int_affine"), INT_CANDIDATE)
    assert v.accepted, (v.stage, v.error_class, v.message)
