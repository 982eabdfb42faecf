"""Attack: numpy computes on the host with the tensors' memory read through raw pointers. `ctypes` is a
forbidden import, but numpy.ctypeslib carries the module as an attribute (np.ctypeslib.ctypes), and
Tensor.data_ptr() is not a host export the audit counts. numpy views the input memory, computes
x*sigmoid(x)+residual, and writes it straight into a torch.empty scratch buffer's memory; a Triton kernel
copies scratch into the output (so the no-op run, which skips it, is poisoned)."""
import numpy as np
import torch
import torch.nn as nn
import triton
import triton.language as tl

_C = np.ctypeslib.ctypes


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


def _view(t):
    ptr = _C.cast(t.data_ptr(), _C.POINTER(_C.c_float))
    return np.ctypeslib.as_array(ptr, shape=tuple(t.shape))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, residual):
        x = x.contiguous()
        residual = residual.contiguous()
        scratch = torch.empty_like(x)
        xs, rs, ss = _view(x), _view(residual), _view(scratch)
        ss[...] = xs / (np.float32(1) + np.exp(-xs)) + rs
        out = torch.empty_like(x)
        n = x.numel()
        copy_kernel[(triton.cdiv(n, 8192),)](scratch, out, n, BLOCK=8192)
        return out
