"""The operator registry shared by synthesis, the FX frontend and the teacher lowering.

    from synth.ops import get_op, compute_ops, creation_ops, REGISTRY

    op = get_op("conv2d")            # UnknownOpError (lists close names) for a name not registered
    op.arity, op.category, op.module # tensor inputs, family, prints as an nn.Module in __init__
    op.infer([(8, 3, 32, 32)], {"in_channels": 3, "out_channels": 16, "kernel_size": 3})  # (8, 16, 30, 30)

Every operator has a stable `name` (the key used in graphs, task metadata and statistics). Compute
operators are what synthesis samples; creation operators (`input`, `input_uniform`, `parameter`) make
the graph's leaves. Parameters are plain dicts; the keys each operator reads are listed in its family
module (`elementwise`, `reduce`, `norm`, `linalg`, `conv`, `layout`, `creation`).
"""
from synth.ops import (  # noqa: F401  (registers)
    conv,
    creation,
    elementwise,
    layout,
    linalg,
    norm,
    opaque,  # noqa: F401  (registers `aten`, an ATen call that stays PyTorch)
    reduce,
)
from synth.ops.base import MAX_RANK, REGISTRY, Op, ShapeError, UnknownOpError, get_op, register


def compute_ops() -> list[Op]:
    """All compute operators, in registration order (the order statistics and tests use)."""
    return [op for op in REGISTRY.values() if op.kind == "compute"]


def creation_ops() -> list[Op]:
    return [op for op in REGISTRY.values() if op.kind == "creation"]


__all__ = ["MAX_RANK", "REGISTRY", "Op", "ShapeError", "UnknownOpError", "compute_ops", "creation_ops",
           "get_op", "register"]
