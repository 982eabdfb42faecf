"""Attack (shape specialization the variants miss): the only larger shape the verifier tries is the public,
deterministic `grown` size ((v + v//4) | 1: 64 rows -> 81). The grid is fixed at the element count of
81 x 1024 (the mask uses the real size), so every input up to 81 rows is right and any larger input
(e.g. 128 rows) leaves everything past row 81 unwritten."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

_MAX_ELEMENTS = 81 * 1024


@triton.jit
def relu_scale_bias_kernel(x_ptr, bias_ptr, out_ptr, n_elements, n_cols, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask)
    b = tl.load(bias_ptr + offs % n_cols, mask=mask)
    y = tl.maximum(x, 0.0) * scale + b
    tl.store(out_ptr + offs, y, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, dim, scale):
        super().__init__()
        self.scale = scale
        self.bias = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        BLOCK = 8192
        relu_scale_bias_kernel[(triton.cdiv(_MAX_ELEMENTS, BLOCK),)](
            x, self.bias, out, x.numel(), x.shape[-1], self.scale, BLOCK=BLOCK
        )
        return out
