"""triu / tril: the upper or lower triangle of each matrix (the last two dims), the rest set to zero.

One kernel over the contiguous input's elements: element (..., row, col) is kept when `col - row >=
diagonal` (triu) or `col - row <= diagonal` (tril), as torch.triu / torch.tril do, and the consuming
pointwise region runs on the result in the same kernel (its epilogue).
"""
from __future__ import annotations

from synth.teacher import tiling
from synth.teacher.epilogue import index_args, index_call, region_body, signature

TRIANGLE_OPS = frozenset({"triu", "tril"})


def triangle_kernel(name: str, op: str, diagonal: int, n_inputs: int = 0, strided: list[int] = (),
                    rank: int = 0, lines: list[str] = (), outputs: list[str] = ("y",)) -> str:
    """Source of the `@triton.jit` kernel `name` for `op` ("triu" or "tril") with `diagonal`; the kept values
    `y` go through the pointwise epilogue `lines` (inputs in0.., see `epilogue.region_body`) and values
    `outputs` are stored to out0, out1... in the input's row-major order."""
    keep = ">=" if op == "triu" else "<="
    args = ["x_ptr"] + [f"in{i}_ptr" for i in range(n_inputs)] + [f"out{j}_ptr" for j in range(len(outputs))]
    args += ["n_elements", "n_rows", "n_cols"] + index_args(list(strided), rank)
    src = ["@triton.jit", *signature(name, args, ["BLOCK"]),
           f"    # {'upper' if op == 'triu' else 'lower'} triangle of each (n_rows, n_cols) matrix: element "
           f"(row, col) kept where col - row {keep} {diagonal}, else 0",
           "    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
           "    mask = offsets < n_elements",
           "    x = tl.load(x_ptr + offsets, mask=mask).to(tl.float32)",
           "    col = offsets % n_cols",
           "    row = (offsets // n_cols) % n_rows",
           f"    y = tl.where(col - row {keep} {diagonal}, x, 0.0)"]
    if lines:
        src.append("    # pointwise epilogue on the triangle")
    src += [f"    {line}" for line in region_body(n_inputs, list(strided), rank, list(lines), list(outputs))]
    return "\n".join(src)


def triangle_glue(name: str, op: str, x: str, outs: list[str], operands: list[str] = (),
                  strided: list[int] = (), epilogue: list[str] = ()) -> list[str]:
    """Glue computing `outs` (the triangle, or the values its fused pointwise `epilogue` stores) from glue
    tensor `x` and the epilogue's glue tensors `operands` with kernel `name`."""
    lines = [f"# {op} of each matrix (the last two dims) in one pass"
             + (f"; epilogue fused: {' -> '.join(epilogue)}" if epilogue else ""),
             f"xc = {x}.contiguous()",
             "shape = xc.shape"]
    lines += [f"{out} = torch.empty(shape, device=xc.device, dtype=xc.dtype)" for out in outs]
    lines += ["n_elements = xc.numel()",
              f"BLOCK = min(triton.next_power_of_2(n_elements), {tiling.current().pointwise_block})"]
    call = ["xc", *operands, *outs, "n_elements", "xc.shape[-2]", "xc.shape[-1]"]
    call += index_call(list(operands), list(strided))
    lines.append(f"{name}[(triton.cdiv(n_elements, BLOCK),)]({', '.join(call)}, BLOCK=BLOCK)")
    return lines
