"""Attack (tolerance): a float32 softmax computed in float16 (inputs, exp's argument and result, sum, division all rounded to fp16), ~2000x
the float32 error (max relative error ~3e-3 on 81x1024 randn rows, measured). The tolerance is
atol=1e-4 + rtol=1e-4*|ref| (+8x the reference's own tiny rounding error); softmax outputs are ~1e-3, so the
absolute term swamps any relative precision requirement, and the precision downgrade passes."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def softmax_fp16_kernel(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=-float("inf")).to(tl.float16)
    row_max = tl.max(x, axis=0)
    num = tl.exp((x - row_max).to(tl.float16).to(tl.float32)).to(tl.float16)  # exp needs fp32: fp16 in, fp16 out
    den = tl.sum(num, axis=0).to(tl.float16)
    y = (num / den).to(tl.float16)
    tl.store(out_ptr + row * n_cols + cols, y.to(tl.float32), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        n_rows, n_cols = x.shape
        out = torch.empty_like(x)
        BLOCK = triton.next_power_of_2(n_cols)
        softmax_fp16_kernel[(n_rows,)](x, out, n_cols, BLOCK=BLOCK, num_warps=4)
        return out
