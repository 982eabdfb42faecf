"""Assembled by search for fixtures/swish_residual: [0:2] kernel | [2:3] torch."""


import torch
import torch.nn as nn
import triton
import triton.language as tl

batch_size = 64


dim = 1024


def _share(module, tensors):
    """Point `module`'s parameters and buffers (dotted names) at tensors the model already owns."""
    for name, tensor in tensors.items():
        owner, _, leaf = name.rpartition(".")
        sub = module.get_submodule(owner) if owner else module
        if isinstance(tensor, nn.Parameter):
            setattr(sub, leaf, tensor)
        else:
            sub.register_buffer(leaf, tensor)


# fragment 0: operators [0, 2) (sigmoid, mul)
@triton.jit
def swish_kernel_f0(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x / (1.0 + tl.exp(-x)), mask=mask)

class _Fragment0(nn.Module):

    def __init__(self):
        super().__init__()

    def forward(self, x0):
        x0 = x0.contiguous()
        out = torch.empty_like(x0)
        n = x0.numel()
        BLOCK = 65536
        swish_kernel_f0[triton.cdiv(n, BLOCK),](x0, out, n, BLOCK=BLOCK)
        return out


class ModelNew(nn.Module):

    def __init__(self):
        super().__init__()
        self.fragment0 = _Fragment0(*[])

    def forward(self, x, residual):
        t3 = self.fragment0(x)
        t4 = t3 + residual
        return t4
