"""Pooling (max/avg with a fixed window, adaptive average; 1d/2d/3d) as windowed-reduction kernels.

The input is made a contiguous (planes = N * C, *spatial) tensor. Each program takes BLOCK_O output
elements (tile rows) and walks their windows BLOCK_W positions at a time along the tile columns: window
position w is split into per-dim offsets k0, k1... and the input index of dim d is `o_d * stride - pad +
k_d * dilation` (fixed windows) or `start_d + k_d` (adaptive windows), masked where it leaves the input
or the window.

Semantics follow PyTorch's defaults: max pooling pads with -inf (a window always holds one real value,
since padding is at most half the kernel), average pooling counts the zero padding in its divisor
(`count_include_pad=True`, so it divides by the kernel volume); adaptive window i of a dim of size L into
O outputs is [floor(i * L / O), ceil((i + 1) * L / O)), averaged over its own size.
"""
from __future__ import annotations

import math

from synth.teacher import tiling
from synth.teacher.epilogue import index_args, index_call, region_body, signature

POOL_OPS = frozenset({f"{kind}_pool{d}d" for kind in ("max", "avg", "adaptive_avg") for d in (1, 2, 3)})
# elements per [BLOCK_O, BLOCK_W] tile, and the largest BLOCK_W (longer windows are walked in chunks)


def _per_dim(value, d: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * d


def _split(w: str, sizes: list[str]) -> list[str]:
    """Lines splitting flat window position `w` into offsets k0, k1... over window `sizes` (row-major)."""
    d = len(sizes)
    if d == 1:
        return [f"k0 = {w}"]
    # `wrest`, not the output split's `rest`: a name reassigned in a loop with another shape is a loop-carried
    # variable whose type changes, which the Triton compiler rejects (the interpreter does not notice)
    lines = [f"wrest = {w}"]
    for i in range(d - 1, 0, -1):
        lines += [f"k{i} = wrest % {sizes[i]}", f"wrest = wrest // {sizes[i]}"]
    return lines + ["k0 = wrest"]


def _flat(d: int) -> str:
    """Offset of input element (plane, i0, i1...) in the contiguous input."""
    expr = "plane"
    for i in range(d):
        expr = f"({expr} * in_size{i} + i{i})" if i < d - 1 else f"{expr} * in_size{i} + i{i}"
    return expr


def pool_kernel(name: str, op: str, params: dict, n_inputs: int = 0, strided: list[int] = (), rank: int = 0,
                lines: list[str] = (), outputs: list[str] = ("y",), prologue: list[str] = (),
                loaded: str = "x") -> str:
    """Source of the `@triton.jit` kernel `name` for pooling operator `op` with parameters `params`. Each
    loaded window `x` first goes through the pointwise `prologue` lines (their result `loaded`; padding and
    masked positions keep the fill value). The result `y` goes through the pointwise epilogue `lines`
    (inputs in0.., see `epilogue.region_body`; `rank` is the output's) and values `outputs` are stored to
    out0, out1... (the output is contiguous: element `outs`)."""
    d = int(op[-2])
    adaptive = op.startswith("adaptive")
    is_max = op.startswith("max")
    sizes = [f"in_size{i}" for i in range(d)] + [f"out_size{i}" for i in range(d)]
    args = ["x_ptr"] + [f"in{i}_ptr" for i in range(n_inputs)] + [f"out{j}_ptr" for j in range(len(outputs))]
    args += (["n_out"] + sizes + ([f"win{i}" for i in range(d)] if adaptive else [])
             + index_args(list(strided), rank))
    fill = '-float("inf")' if is_max else "0.0"
    if adaptive:
        comment = "mean over each adaptive window [o * in // out, ceil((o + 1) * in / out)) per dim"
        window, win_sizes = " * ".join(f"win{i}" for i in range(d)), [f"win{i}" for i in range(d)]
    else:
        k = _per_dim(params["kernel_size"], d)
        s = _per_dim(params.get("stride") or params["kernel_size"], d)
        p = _per_dim(params.get("padding", 0), d)
        dl = _per_dim(params.get("dilation", 1), d)
        shape = f"{k[0]} window" if d == 1 else "x".join(map(str, k)) + " window"
        what = "max" if is_max else "mean (zero padding counted in the divisor)"
        stride, pad, dil = (s[0], p[0], dl[0]) if d == 1 else (s, p, dl)
        comment = f"{what} over each {shape}, stride {stride}, padding {pad}"
        comment += f", dilation {dil}" if any(di != 1 for di in dl) else ""
        window, win_sizes = str(math.prod(k)), [str(ki) for ki in k]
    src = ["@triton.jit", *signature(name, args, ["BLOCK_O", "BLOCK_W"]),
           f"    # {comment}",
           "    # one output element per tile row, its window walked BLOCK_W positions at a time",
           "    outs = tl.program_id(0) * BLOCK_O + tl.arange(0, BLOCK_O)[:, None]"]
    rest = "outs"
    for i in range(d - 1, -1, -1):
        src.append(f"    o{i} = {rest} % out_size{i}")
        src.append(f"    {'rest' if i else 'plane'} = {rest} // out_size{i}")
        rest = "rest"
    if adaptive:
        for i in range(d):
            src.append(f"    start{i} = o{i} * in_size{i} // out_size{i}")
            src.append(f"    end{i} = ((o{i} + 1) * in_size{i} + out_size{i} - 1) // out_size{i}")
    init = "tl.full((BLOCK_O, BLOCK_W), float(\"-inf\"), tl.float32)" if is_max else \
        "tl.zeros((BLOCK_O, BLOCK_W), dtype=tl.float32)"
    src += [f"    acc = {init}",
            f"    for w0 in range(0, {window}, BLOCK_W):",
            "        w = w0 + tl.arange(0, BLOCK_W)[None, :]"]
    src += [f"        {line}" for line in _split("w", win_sizes)]
    valid = [f"(outs < n_out) & (w < {window})"]
    for i in range(d):
        if adaptive:
            src.append(f"        i{i} = start{i} + k{i}")
            valid.append(f"(i{i} < end{i})")
        else:
            dilated = f"k{i} * {dl[i]}" if dl[i] != 1 else f"k{i}"
            src.append(f"        i{i} = o{i} * {s[i]} - {p[i]} + {dilated}")
            valid.append(f"(i{i} >= 0) & (i{i} < in_size{i})")
    src.append(f"        valid = {' & '.join(valid)}")
    src.append(f"        x = tl.load(x_ptr + {_flat(d)}, mask=valid, other={fill}).to(tl.float32)")
    if prologue:
        src.append("        # pointwise prologue on the loaded window; padding keeps the fill value")
        src += [f"        {line}" for line in prologue]
        src.append(f"        x = tl.where(valid, {loaded}, {fill})")
    src.append("        acc = tl.maximum(acc, x)" if is_max else "        acc += x")
    if is_max:
        src.append("    y = tl.max(acc, axis=1, keep_dims=True)")
    elif adaptive:
        count = " * ".join(f"(end{i} - start{i})" for i in range(d))
        src.append(f"    y = tl.sum(acc, axis=1, keep_dims=True) / ({count})")
    else:
        src.append(f"    y = tl.sum(acc, axis=1, keep_dims=True) / {float(window)!r}")
    src += pooled_epilogue(n_inputs, strided, rank, lines, outputs, "outs", "outs < n_out")
    return "\n".join(src)


def pooled_epilogue(n_inputs: int, strided, rank: int, lines, outputs, index: str, mask: str) -> list[str]:
    """Kernel lines applying the fused pointwise epilogue to the pooled values `y` and storing `outputs`
    at element offsets `index` under `mask`."""
    head = ["    # pointwise epilogue on the pooled values"] if lines else []
    return head + [f"    {line}" for line in region_body(n_inputs, list(strided), rank, list(lines),
                                                          list(outputs), index, mask)]


def pool_glue(name: str, op: str, params: dict, x: str, outs: list[str], operands: list[str] = (),
              strided: list[int] = (), epilogue: list[str] = ()) -> list[str]:
    """Glue computing `outs` (the pooled tensor, or the values its fused pointwise `epilogue` stores) from
    glue tensor `x` and the epilogue's glue tensors `operands` with kernel `name`."""
    d = int(op[-2])
    lines = [f"# {op}: windowed reduction, one output element per tile row"
             + (f"; epilogue fused: {' -> '.join(epilogue)}" if epilogue else ""),
             f"xc = {x}.contiguous()"]
    if op.startswith("adaptive"):
        o = _per_dim(params["output_size"], d)
        lines.append(f"out_sizes = {tuple(o)!r}")
        lines.append("# an adaptive window spans at most ceil(in / out) + 1 positions per dim")
        lines.append("wins = [triton.cdiv(n, o) + 1 for n, o in zip(xc.shape[2:], out_sizes)]")
        lines.append("window = " + " * ".join(f"wins[{i}]" for i in range(d)))
        extra = ["*wins"]
    else:
        k = _per_dim(params["kernel_size"], d)
        s = _per_dim(params.get("stride") or params["kernel_size"], d)
        p = _per_dim(params.get("padding", 0), d)
        # the window's extent: dilation * (kernel - 1) + 1
        span = [dl * (ki - 1) + 1 for ki, dl in zip(k, _per_dim(params.get("dilation", 1), d))]
        sizes = [f"(xc.shape[{2 + i}] + {2 * p[i]} - {span[i]}) // {s[i]} + 1" for i in range(d)]
        lines.append("out_sizes = (" + ", ".join(sizes) + ("," if d == 1 else "") + ")")
        lines.append(f"window = {math.prod(k)}")
        extra = []
    lines.append("shape = (*xc.shape[:2], *out_sizes)")
    lines += [f"{out} = torch.empty(shape, device=xc.device, dtype=xc.dtype)" for out in outs]
    lines += [f"n_out = {outs[0]}.numel()",
              f"BLOCK_W = min(triton.next_power_of_2(window), {tiling.current().max_block})",
              f"BLOCK_O = max(1, min(triton.next_power_of_2(n_out), {tiling.current().row_tile} // BLOCK_W))"]
    call = ["xc", *operands, *outs, "n_out", "*xc.shape[2:]", "*out_sizes"] + extra
    call += index_call(list(operands), list(strided))
    lines.append(f"{name}[(triton.cdiv(n_out, BLOCK_O),)]({', '.join(call)}, "
                 "BLOCK_O=BLOCK_O, BLOCK_W=BLOCK_W)")
    return lines
