"""`torch.cat` / `torch.stack` of two tensors read by the consuming pointwise kernel from its two inputs, so
the concatenated tensor is never written (one kernel where PyTorch runs a cat kernel and the operator).

The result of either is, in row-major order, `outer` blocks of `width` slices of `inner` elements: the first
`split` slices of a block come from the first input, the rest from the second (stack along dim d: inner =
numel of dims d.. of an input, split 1, width 2; cat along d: inner = numel of dims d+1..,
split = first input's size along d, width = the sum of both). Element `offsets` of the result is at
(outer, pos, inner) and is loaded from the one input that holds it.
"""
from __future__ import annotations

GATHER_OPS = frozenset({"cat", "stack"})


def gather_args(i: int) -> list[str]:
    """Kernel arguments of gathered operand `i`."""
    return [f"in{i}_a_ptr", f"in{i}_b_ptr", f"in{i}_inner", f"in{i}_split", f"in{i}_width"]


def gather_load(i: int, op: str) -> list[str]:
    """Kernel lines defining `in{i}` (fp32) on the tile `offsets` / `mask` from the two inputs."""
    return [f"# in{i}: torch.{op} of two tensors, read from whichever input holds each element",
            f"in{i}_at = offsets % in{i}_inner",
            f"in{i}_pos = (offsets // in{i}_inner) % in{i}_width",
            f"in{i}_outer = offsets // (in{i}_inner * in{i}_width)",
            f"in{i}_first = in{i}_pos < in{i}_split",
            f"in{i}_a = tl.load(in{i}_a_ptr + (in{i}_outer * in{i}_split + in{i}_pos) * in{i}_inner "
            f"+ in{i}_at, mask=mask & in{i}_first, other=0.0)",
            f"in{i}_b = tl.load(in{i}_b_ptr + (in{i}_outer * (in{i}_width - in{i}_split) + in{i}_pos "
            f"- in{i}_split) * in{i}_inner + in{i}_at, mask=mask & (in{i}_pos >= in{i}_split), other=0.0)",
            f"in{i} = tl.where(in{i}_first, in{i}_a, in{i}_b).to(tl.float32)"]


def gather_glue(var: str, op: str, dim: int, a: str, b: str) -> list[str]:
    """Glue lines defining `{var}a`, `{var}b` (contiguous inputs), `{var}_shape` (the result's shape) and
    `{var}_inner`, `{var}_split`, `{var}_width` for the kernel."""
    lines = [f"# torch.{op}([{a}, {b}], dim={dim}) is read by the kernel from both inputs (never written)",
             f"{var}a, {var}b = {a}.contiguous(), {b}.contiguous()"]
    if op == "stack":
        return lines + [f"{var}_shape = (*{var}a.shape[:{dim}], 2, *{var}a.shape[{dim}:])",
                        f"{var}_inner, {var}_split, {var}_width = {var}a.shape[{dim}:].numel(), 1, 2"]
    width = f"{var}a.shape[{dim}] + {var}b.shape[{dim}]"
    return lines + [f"{var}_shape = (*{var}a.shape[:{dim}], {width}, *{var}a.shape[{dim + 1}:])",
                    f"{var}_inner, {var}_split, {var}_width = "
                    f"{var}a.shape[{dim + 1}:].numel(), {var}a.shape[{dim}], {width}"]


def gather_call(var: str) -> list[str]:
    """Launch arguments matching `gather_args`."""
    return [f"{var}a", f"{var}b", f"{var}_inner", f"{var}_split", f"{var}_width"]
