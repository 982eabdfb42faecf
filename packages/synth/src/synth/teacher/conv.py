"""Convolutions (1d/2d/3d and transposed): the convolution itself stays in PyTorch, the rest is Triton.

The glue calls `F.conv{d}d` / `F.conv_transpose{d}d` with the module's weight and no bias (an aten
convolution, which the verifier allows outside kernels); the bias add and the pointwise region that
consumes the conv output run as one Triton epilogue kernel over the conv's output shape. A conv without
bias and without a pointwise consumer launches nothing of its own: its consumer reads the PyTorch result,
and a returned one is copied by a Triton kernel like any other tensor not made by a kernel.
"""
from __future__ import annotations

CONV_OPS = frozenset({f"conv{d}d" for d in (1, 2, 3)} | {f"conv_transpose{d}d" for d in (1, 2, 3)})


def conv_call(op: str, x: str, m: str) -> str:
    """The PyTorch convolution of `op` on glue tensor `x` with module `m`'s weight and no bias."""
    d = op[-2]
    if op.startswith("conv_transpose"):
        return (f"F.conv_transpose{d}d({x}, {m}.weight, None, {m}.stride, {m}.padding, {m}.output_padding, "
                f"{m}.groups, {m}.dilation)")
    return f"F.conv{d}d({x}, {m}.weight, None, {m}.stride, {m}.padding, {m}.dilation, {m}.groups)"


def bias_view(op: str, m: str) -> str:
    """Module `m`'s bias as a (1, C, 1, ...) view that broadcasts over the conv output."""
    d = int(op[-2])
    return f"{m}.bias.view(1, -1{', 1' * d})"
