"""Row kernels: reductions, softmax-like ops and norms (layer, RMS, instance) over the last dim.

BLOCK_M rows per program.

The caller makes the reduced dims the trailing ones and the input a contiguous (n_rows, n_cols) matrix;
each kernel loads a [BLOCK_M, BLOCK_N] tile (the whole row: BLOCK_N is the next power of two of n_cols),
reduces along axis 1 and writes either one value per row (`reduces`) or a whole row, optionally through
a fused pointwise epilogue.
"""
from __future__ import annotations

from dataclasses import dataclass

from synth.teacher.epilogue import index_args, region_body, signature


@dataclass(frozen=True)
class RowOp:
    """`fill`: value of masked lanes; `body`: lines computing `y` from the fp32 tile `x` (and `mask`);
    `reduces`: one output per row; `affine`: weight (and bias) of a norm module; `eps`: the kernel takes
    the module's eps; `comment`: kernel comment; `out_dtype`: see below."""

    fill: str
    body: tuple[str, ...]
    reduces: bool
    comment: str
    affine: tuple[str, ...] = ()
    eps: bool = False
    # dtype of the output when not the input's (argmax / argmin: int64 indices); such an output takes no
    # pointwise epilogue
    out_dtype: str = ""


_MAX = "m = tl.max(x, axis=1, keep_dims=True)"
_MEAN = "mean = tl.sum(x, axis=1, keep_dims=True) / n_cols"
_CENTRED = "d = tl.where(mask, x - mean, 0.0)"
_LSE = "lse = m + tl.log(tl.sum(tl.exp(x - m), axis=1, keep_dims=True))"
_SUMSQ = "ss = tl.sum(x * x, axis=1, keep_dims=True)"
_VAR = "var = tl.sum(d * d, axis=1, keep_dims=True)"

ROW_OPS: dict[str, RowOp] = {
    "sum": RowOp("0.0", ("y = tl.sum(x, axis=1, keep_dims=True)",), True, "row sums"),
    "mean": RowOp("0.0", ("y = tl.sum(x, axis=1, keep_dims=True) / n_cols",), True, "row means"),
    "amax": RowOp('-float("inf")', ("y = tl.max(x, axis=1, keep_dims=True)",), True, "row maxima"),
    "amin": RowOp('float("inf")', ("y = tl.min(x, axis=1, keep_dims=True)",), True, "row minima"),
    "logsumexp": RowOp('-float("inf")', (_MAX, _LSE, "y = lse"),
                       True, "row logsumexp, shifted by the row max for stability"),
    "std": RowOp("0.0", (_MEAN, _CENTRED, _VAR, "y = tl.sqrt(var / (n_cols - 1))"),
                 True, "row standard deviations (unbiased, two passes over the tile in registers)"),
    "norm": RowOp("0.0", (_SUMSQ, "y = tl.sqrt(ss)"), True, "row L2 norms"),
    # tl.argmax / tl.argmin break ties to the left: the first extreme value, as torch documents
    "argmax": RowOp('-float("inf")', ("y = tl.argmax(x, axis=1, keep_dims=True)",), True,
                    "index of each row's first maximum", out_dtype="torch.int64"),
    "argmin": RowOp('float("inf")', ("y = tl.argmin(x, axis=1, keep_dims=True)",), True,
                    "index of each row's first minimum", out_dtype="torch.int64"),
    "softmax": RowOp('-float("inf")', (_MAX, "e = tl.exp(x - m)",
                                       "y = e / tl.sum(e, axis=1, keep_dims=True)"),
                     False, "row softmax, shifted by the row max for stability"),
    "log_softmax": RowOp('-float("inf")', (_MAX, _LSE, "y = x - lse"),
                         False, "row log-softmax: x - max - log(sum(exp(x - max)))"),
    "normalize": RowOp("0.0", (_SUMSQ, "y = x / tl.maximum(tl.sqrt(ss), 1e-12)"),
                       False, "rows divided by their L2 norm (at least 1e-12)"),
    "cumsum": RowOp("0.0", ("y = tl.cumsum(x, axis=1)",), False, "running sums along each row"),
    "cumprod": RowOp("1.0", ("y = tl.cumprod(x, axis=1)",), False, "running products along each row"),
    "layer_norm": RowOp("0.0", (_MEAN, _CENTRED, _VAR, "y = d / tl.sqrt(var / n_cols + eps) * w + b"), False,
                        "layer norm of each row: (x - mean) / sqrt(var + eps) * weight + bias", ("w", "b"),
                        True),
    "rms_norm": RowOp("0.0", (_SUMSQ, "y = x / tl.sqrt(ss / n_cols + eps) * w"),
                      False, "RMS norm of each row: x / sqrt(mean(x^2) + eps) * weight", ("w",), True),
}
# instance norm (default: no affine, no running estimates): one row per (sample, channel) over its positions
_INSTANCE_NORM = RowOp("0.0", (_MEAN, _CENTRED, _VAR, "y = d / tl.sqrt(var / n_cols + eps)"), False,
                       "instance norm of each (sample, channel) row over its positions: "
                       "(x - mean) / sqrt(var + eps)",
                       eps=True)
ROW_OPS.update({f"instance_norm{d}d": _INSTANCE_NORM for d in (1, 2, 3)})


def row_kernel(name: str, op: str, n_inputs: int = 0, strided: list[int] = (), rank: int = 0,
               lines: list[str] = (), outputs: list[str] = ("y",), prologue: list[str] = (),
               loaded: str = "x", inner: bool = False, n_others: int = 0, in_rank: int = 0) -> str:
    """Source of the `@triton.jit` row kernel `name` for row operator `op`. The loaded tile `x` first goes
    through the pointwise `prologue` lines (their result `loaded`; masked lanes get the operator's fill
    again). Its result `y` goes through the pointwise epilogue `lines` (reading inputs in0..; see
    `epilogue.region_body`, `rank` being the output's) and values `outputs` are stored to out0, out1... in
    the row-major order of the output. With `inner`, the input is the contiguous tensor itself, not a
    (rows, cols) matrix: the reduced dims are a block followed by `n_inner` elements, so row r starts at
    (r // n_inner) * n_cols * n_inner + r % n_inner and its columns are n_inner apart. The prologue may also
    read `n_others` tensors q0, q1... (broadcast to the input's shape, of rank `in_rank`), loaded at the
    tile's positions through their strides."""
    spec = ROW_OPS[op]
    args = ["x_ptr"] + [f"{a}_ptr" for a in spec.affine] + [f"in{i}_ptr" for i in range(n_inputs)]
    args += ([f"out{j}_ptr" for j in range(len(outputs))] + ["n_rows", "n_cols"]
             + (["n_inner"] if inner else []))
    if spec.eps:
        args.append("eps")
    args += index_args(list(strided), rank)
    if n_others:
        args += [f"q{j}_ptr" for j in range(n_others)] + [f"psize{d}" for d in range(in_rank)]
        args += [f"q{j}_stride{d}" for j in range(n_others) for d in range(in_rank)]
    src = [
        "@triton.jit",
        *signature(name, args, ["BLOCK_M", "BLOCK_N"]),
        f"    # {spec.comment}; BLOCK_M rows per program",
        "    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]",
        "    cols = tl.arange(0, BLOCK_N)[None, :]",
        "    row_mask = rows < n_rows",
        "    mask = row_mask & (cols < n_cols)",
    ]
    where = "rows * n_cols + cols"
    if inner:
        src.append("    where = (rows // n_inner) * (n_cols * n_inner) + rows % n_inner + cols * n_inner")
        where = "where"
    src.append(f"    x = tl.load(x_ptr + {where}, mask=mask, other={spec.fill}).to(tl.float32)")
    if n_others:
        src.append(
            "    # the prologue's other inputs at the tile's positions (the input's row-major offsets)")
        src.append(f"    prest = {where}")
        for d in range(in_rank - 1, 0, -1):
            src += [f"    pidx{d} = prest % psize{d}", f"    prest = prest // psize{d}"]
        src.append("    pidx0 = prest")
        for j in range(n_others):
            at = " + ".join(f"pidx{d} * q{j}_stride{d}" for d in range(in_rank))
            src.append(f"    q{j} = tl.load(q{j}_ptr + {at}, mask=mask, other=0.0).to(tl.float32)")
    if prologue:
        src.append("    # pointwise prologue on the loaded tile; masked lanes keep the fill value")
        src += [f"    {line}" for line in prologue]
        src.append(f"    x = tl.where(mask, {loaded}, {spec.fill})")
    for a in spec.affine:
        src.append(f"    {a} = tl.load({a}_ptr + cols, mask=cols < n_cols, other=0.0).to(tl.float32)")
    src += [f"    {line}" for line in spec.body]
    if lines:
        src.append("    # pointwise epilogue on the row results")
    offsets, mask = ("rows", "row_mask") if spec.reduces else (where, "mask")
    src += [f"    {line}" for line in region_body(n_inputs, list(strided), rank, list(lines), list(outputs),
                                                   offsets, mask)]
    return "\n".join(src)
