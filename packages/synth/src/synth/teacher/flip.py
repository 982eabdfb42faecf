"""flip: the elements of some dims in reverse order (`torch.flip(x, dims)`), written by one kernel.

torch has no negative strides, so a flip is a copy. One kernel over the output's elements (row-major): each
flat position is split into per-dim indices with the input's sizes, a flipped dim's index i becomes
size - 1 - i, and the element is loaded through the input's own strides (any layout, no `.contiguous()`
copy first). The consuming pointwise region of the flip's shape runs on the loaded values in the same
kernel (its epilogue), as for triu / tril.
"""
from __future__ import annotations

from synth.teacher import tiling
from synth.teacher.epilogue import index_args, index_call, region_body, signature

FLIP_OPS = frozenset({"flip"})


def flip_dims(dims, rank: int) -> list[int]:
    """The flipped dims, non-negative and sorted."""
    return sorted({d % rank for d in dims})


def flip_kernel(name: str, dims: list[int], rank: int, n_inputs: int = 0, strided: list[int] = (),
                lines: list[str] = (), outputs: list[str] = ("y",)) -> str:
    """Source of the `@triton.jit` kernel `name` flipping dims `dims` of a rank-`rank` input: the values `y`
    go through the pointwise epilogue `lines` (inputs in0.., see `epilogue.region_body`) and values `outputs`
    are stored to out0, out1... in the output's row-major order. Without an epilogue the values keep the
    input's dtype (an int64 index tensor is flipped exactly)."""
    flipped = flip_dims(dims, rank)
    args = ["x_ptr"] + [f"in{i}_ptr" for i in range(n_inputs)] + [f"out{j}_ptr" for j in range(len(outputs))]
    args += ["n_elements"] + [f"xsize{d}" for d in range(rank)] + [f"xstride{d}" for d in range(rank)]
    args += index_args(list(strided), rank)
    src = ["@triton.jit", *signature(name, args, ["BLOCK"]),
           f"    # torch.flip over dims {flipped}: index i of a flipped dim reads the input at size - 1 - i",
           "    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
           "    mask = offsets < n_elements",
           "    at = offsets"]
    terms = []
    for d in range(rank - 1, -1, -1):
        src.append(f"    j{d} = at % xsize{d}" if d else "    j0 = at")
        if d:
            src.append(f"    at = at // xsize{d}")
        index = f"(xsize{d} - 1 - j{d})" if d in flipped else f"j{d}"
        terms.append(f"{index} * xstride{d}")
    load = f"tl.load(x_ptr + {' + '.join(reversed(terms))}, mask=mask)"
    src.append(f"    y = {load}.to(tl.float32)" if lines else f"    y = {load}")
    if lines:
        src.append("    # pointwise epilogue on the flipped values")
    src += [f"    {line}" for line in region_body(n_inputs, list(strided), rank, list(lines), list(outputs))]
    return "\n".join(src)


def flip_glue(name: str, dims: list[int], x: str, outs: list[str], operands: list[str] = (),
              strided: list[int] = (), epilogue: list[str] = ()) -> list[str]:
    """Glue computing `outs` (the flip, or the values its fused pointwise `epilogue` stores) from glue tensor
    `x` (any strides) and the epilogue's glue tensors `operands` with kernel `name`."""
    lines = [f"# torch.flip({x}, dims={list(dims)}) in one pass, read through the input's strides"
             + (f"; epilogue fused: {' -> '.join(epilogue)}" if epilogue else ""),
             f"shape = {x}.shape"]
    lines += [f"{out} = torch.empty(shape, device={x}.device, dtype={x}.dtype)" for out in outs]
    lines += [f"n_elements = {outs[0]}.numel()",
              f"BLOCK = min(triton.next_power_of_2(n_elements), {tiling.current().pointwise_block})"]
    call = [x, *operands, *outs, "n_elements", f"*{x}.shape", f"*{x}.stride()"]
    call += index_call(list(operands), list(strided))
    lines.append(f"{name}[(triton.cdiv(n_elements, BLOCK),)]({', '.join(call)}, BLOCK=BLOCK)")
    return lines
