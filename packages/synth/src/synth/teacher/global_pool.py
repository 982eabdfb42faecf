"""Global average pooling (adaptive average pooling to size 1 in every dim) as a plane reduction.

Each output is the mean of one contiguous (sample, channel) plane: few outputs, each reducing many
inputs. The windowed kernel of `pool.py` would split every window position into per-dim offsets and give
each output one tile row; here the input is a (planes, plane_len) matrix read in wide contiguous blocks.
The mean kernel takes BLOCK_P planes per program (many per program for small planes) and walks them
BLOCK_L columns at a time, then runs the pointwise epilogue on the means. With too few planes to fill
the GPU, a partial-sum kernel first splits each plane into chunks over a 2-d grid and writes one fp32
sum per chunk (no atomics, so the result is deterministic); the mean kernel then reduces those sums.
"""
from __future__ import annotations

from synth.teacher import tiling
from synth.teacher.epilogue import index_args, index_call, signature
from synth.teacher.pool import pooled_epilogue

# programs that fill an H100's 132 SMs a few times over: planes are split into chunks until there are
# about this many (never into chunks shorter than one block)
SPLIT_PROGRAMS = 512


def is_global(op: str, params: dict) -> bool:
    """Pooling `op` with `params` averages whole planes (adaptive, output size 1 in every dim)."""
    size = params.get("output_size") if op.startswith("adaptive") else None
    return size is not None and all(s == 1 for s in (size if isinstance(size, (list, tuple)) else [size]))


def partial_kernel(name: str) -> str:
    """Source of the `@triton.jit` kernel `name` writing the fp32 sum of each chunk of each plane."""
    return "\n".join([
        "@triton.jit",
        *signature(name, ["x_ptr", "part_ptr", "plane_len", "chunk", "n_chunks"], ["BLOCK"]),
        "    # program (plane, c) sums inputs [c * chunk, (c + 1) * chunk) of its plane; chunk is a "
        "multiple of",
        "    # BLOCK, so only the plane's end needs a mask",
        "    plane = tl.program_id(0)",
        "    c = tl.program_id(1)",
        "    start = c * chunk",
        "    acc = tl.zeros((BLOCK,), dtype=tl.float32)",
        "    for k in range(0, chunk, BLOCK):",
        "        idx = start + k + tl.arange(0, BLOCK)",
        "        acc += tl.load(x_ptr + plane * plane_len + idx, mask=idx < plane_len, "
        "other=0.0).to(tl.float32)",
        "    tl.store(part_ptr + plane * n_chunks + c, tl.sum(acc, axis=0))",
    ])


def mean_kernel(name: str, n_inputs: int = 0, strided: list[int] = (), rank: int = 0, lines: list[str] = (),
                outputs: list[str] = ("y",)) -> str:
    """Source of the `@triton.jit` kernel `name`: `y`, the sum of each row of a (n_planes, row_len)
    matrix divided by `count`, goes through the pointwise epilogue `lines` (see `epilogue.region_body`)
    and values `outputs` are stored to out0, out1... at the plane's index."""
    args = ["x_ptr"] + [f"in{i}_ptr" for i in range(n_inputs)] + [f"out{j}_ptr" for j in range(len(outputs))]
    args += ["n_planes", "row_len", "count"] + index_args(list(strided), rank)
    src = ["@triton.jit", *signature(name, args, ["BLOCK_P", "BLOCK_L"]),
           "    # mean of each (sample, channel) plane of `count` inputs; its row of `row_len` values "
           "(the inputs,",
           "    # or partial sums of them) is walked BLOCK_L at a time, BLOCK_P planes per program",
           "    planes = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]",
           "    cols = tl.arange(0, BLOCK_L)[None, :]",
           "    acc = tl.zeros((BLOCK_P, BLOCK_L), dtype=tl.float32)",
           "    for k in range(0, row_len, BLOCK_L):",
           "        idx = k + cols",
           "        mask = (planes < n_planes) & (idx < row_len)",
           "        acc += tl.load(x_ptr + planes * row_len + idx, mask=mask, other=0.0).to(tl.float32)",
           "    y = tl.sum(acc, axis=1, keep_dims=True) / count"]
    src += pooled_epilogue(n_inputs, strided, rank, lines, outputs, "planes", "planes < n_planes")
    return "\n".join(src)


def global_pool_glue(name: str, partial: str, op: str, x: str, outs: list[str], operands: list[str] = (),
                     strided: list[int] = (), epilogue: list[str] = ()) -> list[str]:
    """Glue computing `outs` (the pooled tensor, or the values its fused pointwise `epilogue` stores) from
    glue tensor `x` and the epilogue's glue tensors `operands`, with mean kernel `name` and, where planes
    are split, partial-sum kernel `partial`."""
    d = int(op[-2])
    tile = tiling.current().row_tile
    lines = [f"# {op} to size 1: a mean over each (sample, channel) plane"
             + (f"; epilogue fused: {' -> '.join(epilogue)}" if epilogue else ""),
             f"xc = {x}.contiguous()",
             f"shape = (*xc.shape[:2]{', 1' * d})"]
    lines += [f"{out} = torch.empty(shape, device=xc.device, dtype=xc.dtype)" for out in outs]
    lines += ["n_planes = xc.shape[0] * xc.shape[1]",
              "plane_len = xc.shape[2:].numel()",
              f"BLOCK_L = min(triton.next_power_of_2(plane_len), {tile})",
              f"# few planes: split each into chunks of whole blocks, to about {SPLIT_PROGRAMS} programs "
              "in all",
              f"n_chunks = min(triton.cdiv(plane_len, BLOCK_L), triton.cdiv({SPLIT_PROGRAMS}, n_planes))",
              "rows, row_len = xc, plane_len",
              "if n_chunks > 1:",
              "    chunk = triton.cdiv(triton.cdiv(plane_len, n_chunks), BLOCK_L) * BLOCK_L",
              "    n_chunks = triton.cdiv(plane_len, chunk)",
              "    rows = torch.empty((n_planes, n_chunks), device=xc.device, dtype=torch.float32)",
              f"    {partial}[(n_planes, n_chunks)](xc, rows, plane_len, chunk, n_chunks, BLOCK=BLOCK_L)",
              "    row_len = n_chunks",
              "    BLOCK_L = triton.next_power_of_2(n_chunks)",
              f"BLOCK_P = max(1, min(triton.next_power_of_2(n_planes), {tile} // BLOCK_L))"]
    call = ["rows", *operands, *outs, "n_planes", "row_len", "plane_len"]
    call += index_call(list(operands), list(strided))
    grid = "(triton.cdiv(n_planes, BLOCK_P),)"
    lines.append(f"{name}[{grid}]({', '.join(call)}, BLOCK_P=BLOCK_P, BLOCK_L=BLOCK_L)")
    return lines
