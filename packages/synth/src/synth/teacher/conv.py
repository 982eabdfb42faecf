"""Convolutions (1d/2d/3d and transposed): the convolution itself stays in PyTorch, the rest is Triton.

The glue calls `F.conv{d}d` / `F.conv_transpose{d}d` with the module's weight and no bias (an aten
convolution, which the verifier allows outside kernels); the bias add and the pointwise region that
consumes the conv output run as one Triton epilogue kernel over the conv's output shape. A conv without
a pointwise consumer that the program does not return launches nothing of its own: it keeps its bias in
the PyTorch call (cuDNN adds it in the same pass) and its consumer (another conv, a reduction) reads the
result. A returned conv without a pointwise consumer gets the bias epilogue (or, without bias, a copy).
"""
from __future__ import annotations

CONV_OPS = frozenset({f"conv{d}d" for d in (1, 2, 3)} | {f"conv_transpose{d}d" for d in (1, 2, 3)})


def conv_call(op: str, x: str, m: str, bias: bool = False) -> str:
    """The PyTorch convolution of `op` on glue tensor `x` with module `m`'s weight (and its bias if
    `bias`)."""
    d = op[-2]
    b = f"{m}.bias" if bias else "None"
    if op.startswith("conv_transpose"):
        return (f"F.conv_transpose{d}d({x}, {m}.weight, {b}, {m}.stride, {m}.padding, {m}.output_padding, "
                f"{m}.groups, {m}.dilation)")
    return f"F.conv{d}d({x}, {m}.weight, {b}, {m}.stride, {m}.padding, {m}.dilation, {m}.groups)"


def bias_view(op: str, m: str) -> str:
    """Module `m`'s bias as a (1, C, 1, ...) view that broadcasts over the conv output."""
    d = int(op[-2])
    return f"{m}.bias.view(1, -1{', 1' * d})"
