"""Channel norms: batch norm (1d/2d/3d) and group norm as looped reduction kernels.

The reference builds `nn.BatchNorm{d}d(C)` / `nn.GroupNorm(G, C)` with default arguments and the verifier
runs the Model as constructed, in training mode. So batch norm normalises with the batch statistics of
each channel (mean and biased variance over the batch and all positions) and updates its running
estimates (unbiased variance, `momentum`, `num_batches_tracked`) as nn.BatchNorm does; in eval mode the
same kernel normalises with the running estimates instead. Group norm always uses the statistics of each
(sample, group) over the group's channels and positions. Both apply the per-channel affine map.
Instance norm (per (sample, channel) statistics, no affine by default) is a row kernel (`rows.py`).

The input is a contiguous (N, C, inner) tensor; reductions walk it BLOCK_R (BLOCK_N) elements at a time:
one pass for the mean, one for the variance around it, one to normalise and store. A consuming pointwise
region of the same shape runs in that last pass (the epilogue), so batch norm -> celu is one kernel.
When the rows are few and long (a batch norm of 3 channels over 10^6 elements each would be 1 program),
the split form cuts each row into blocks: one kernel writes every block's mean and M2, a second combines
them per row (Chan et al.), normalises its block and runs the epilogue: (rows x blocks) programs each.
"""
from __future__ import annotations

import math
import re

from synth.teacher import tiling
from synth.teacher.epilogue import index_args, index_call, region_body, signature

BATCH_NORMS = frozenset({f"batch_norm{d}d" for d in (1, 2, 3)})
CHANNEL_NORM_OPS = BATCH_NORMS | {"group_norm"}

BATCH_NORM_BODY = '''\
    # batch norm of x viewed as (n_batch, n_channels, n_inner), BLOCK_C channels per program: training
    # mode uses each channel's batch mean and biased variance and updates the running estimates
    # (unbiased variance); eval mode uses the running estimates
    chans = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)[:, None]
    chan_mask = chans < n_channels
    n_red = n_batch * n_inner
    if TRAINING:
        total = tl.zeros((BLOCK_C, BLOCK_R), dtype=tl.float32)
        for r0 in range(0, n_red, BLOCK_R):
            r = r0 + tl.arange(0, BLOCK_R)[None, :]
            mask = chan_mask & (r < n_red)
            offsets = ((r // n_inner) * n_channels + chans) * n_inner + r % n_inner
            total += tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        mean = tl.sum(total, axis=1, keep_dims=True) / n_red
        total = tl.zeros((BLOCK_C, BLOCK_R), dtype=tl.float32)
        for r0 in range(0, n_red, BLOCK_R):
            r = r0 + tl.arange(0, BLOCK_R)[None, :]
            mask = chan_mask & (r < n_red)
            offsets = ((r // n_inner) * n_channels + chans) * n_inner + r % n_inner
            x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
            d = tl.where(mask, x - mean, 0.0)
            total += d * d
        var = tl.sum(total, axis=1, keep_dims=True) / n_red
        running_mean = tl.load(mean_ptr + chans, mask=chan_mask, other=0.0)
        running_var = tl.load(var_ptr + chans, mask=chan_mask, other=0.0)
        tl.store(mean_ptr + chans, (1.0 - momentum) * running_mean + momentum * mean, mask=chan_mask)
        unbiased = var * n_red / (n_red - 1)
        tl.store(var_ptr + chans, (1.0 - momentum) * running_var + momentum * unbiased, mask=chan_mask)
        if tl.program_id(0) == 0:
            tl.store(count_ptr, tl.load(count_ptr) + 1)
    else:
        mean = tl.load(mean_ptr + chans, mask=chan_mask, other=0.0).to(tl.float32)
        var = tl.load(var_ptr + chans, mask=chan_mask, other=1.0).to(tl.float32)
    inv_std = 1.0 / tl.sqrt(var + eps)
    w = tl.load(w_ptr + chans, mask=chan_mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + chans, mask=chan_mask, other=0.0).to(tl.float32)
    for r0 in range(0, n_red, BLOCK_R):
        r = r0 + tl.arange(0, BLOCK_R)[None, :]
        mask = chan_mask & (r < n_red)
        offsets = ((r // n_inner) * n_channels + chans) * n_inner + r % n_inner
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        y = (x - mean) * inv_std * w + b
{epilogue}'''

GROUP_NORM_BODY = '''\
    # group norm: row (n, g) holds the channels of group g of sample n times their n_inner positions;
    # normalise by the row's mean and biased variance, then scale and shift per channel. BLOCK_M rows
    # per program, walked BLOCK_N columns at a time
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]
    row_mask = rows < n_rows
    total = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for c0 in range(0, n_cols, BLOCK_N):
        cols = c0 + tl.arange(0, BLOCK_N)[None, :]
        mask = row_mask & (cols < n_cols)
        total += tl.load(x_ptr + rows * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(total, axis=1, keep_dims=True) / n_cols
    total = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for c0 in range(0, n_cols, BLOCK_N):
        cols = c0 + tl.arange(0, BLOCK_N)[None, :]
        mask = row_mask & (cols < n_cols)
        x = tl.load(x_ptr + rows * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        d = tl.where(mask, x - mean, 0.0)
        total += d * d
    inv_std = 1.0 / tl.sqrt(tl.sum(total, axis=1, keep_dims=True) / n_cols + eps)
    group_channels = n_cols // n_inner
    for c0 in range(0, n_cols, BLOCK_N):
        cols = c0 + tl.arange(0, BLOCK_N)[None, :]
        mask = row_mask & (cols < n_cols)
        x = tl.load(x_ptr + rows * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        chans = (rows % n_groups) * group_channels + cols // n_inner
        w = tl.load(w_ptr + chans, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(b_ptr + chans, mask=mask, other=0.0).to(tl.float32)
        y = (x - mean) * inv_std * w + b
        offsets = rows * n_cols + cols
{epilogue}'''


# a norm whose rows (group norm: a group of a sample; batch norm: a channel) would occupy fewer programs than
# this (about two waves on a 132-SM H100/H200) and need more than one block each is split along its rows
# instead: one program per (row, block)
SPLIT_BELOW_PROGRAMS = 264
# at most this many blocks per row in the split form (the normalising kernel combines them in one tile)
MAX_SPLITS = 1024

GROUP_NORM_STATS_KERNEL = '''@triton.jit
def {name}(x_ptr, mean_ptr, m2_ptr, n_cols, n_splits, BLOCK_N: tl.constexpr):
    # group norm, split form, pass 1: program (row, block) writes the mean of its BLOCK_N columns of the row
    # and their sum of squared deviations around that mean; the normalising kernel combines the blocks
    row = tl.program_id(0)
    block = tl.program_id(1)
    cols = block * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=0) / tl.minimum(n_cols - block * BLOCK_N, BLOCK_N)
    d = tl.where(mask, x - mean, 0.0)
    tl.store(mean_ptr + row * n_splits + block, mean)
    tl.store(m2_ptr + row * n_splits + block, tl.sum(d * d, axis=0))'''

GROUP_NORM_SPLIT_BODY = '''\
    # group norm, split form, pass 2: program (row, block) combines the row's block statistics (Chan et al.:
    # M2 = sum of the blocks' M2 + n_b * (mean_b - mean)^2), then normalises its block and applies the
    # per-channel affine map
    row = tl.program_id(0)
    block = tl.program_id(1)
{combine}
    inv_std = 1.0 / tl.sqrt(var + eps)
    cols = block * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    chans = (row % n_groups) * (n_cols // n_inner) + cols // n_inner
    w = tl.load(w_ptr + chans, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + chans, mask=mask, other=0.0).to(tl.float32)
    y = (x - mean) * inv_std * w + b
    offsets = row * n_cols + cols
{epilogue}'''


BATCH_NORM_STATS_KERNEL = '''@triton.jit
def {name}(x_ptr, mean_ptr, m2_ptr, n_red, n_channels, n_inner, n_splits, BLOCK_R: tl.constexpr):
    # batch norm, split form, pass 1: program (channel, block) writes the mean of BLOCK_R of the channel's
    # n_batch * n_inner elements and their sum of squared deviations around that mean
    chan = tl.program_id(0)
    block = tl.program_id(1)
    r = block * BLOCK_R + tl.arange(0, BLOCK_R)
    mask = r < n_red
    offsets = ((r // n_inner) * n_channels + chan) * n_inner + r % n_inner
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=0) / tl.minimum(n_red - block * BLOCK_R, BLOCK_R)
    d = tl.where(mask, x - mean, 0.0)
    tl.store(mean_ptr + chan * n_splits + block, mean)
    tl.store(m2_ptr + chan * n_splits + block, tl.sum(d * d, axis=0))'''

BATCH_NORM_SPLIT_BODY = '''\
    # batch norm, split form, pass 2: program (channel, block) normalises BLOCK_R of the channel's elements.
    # Training mode combines the channel's block statistics (Chan et al.: M2 = sum of the blocks' M2 +
    # n_b * (mean_b - mean)^2) and block 0 updates the running estimates (unbiased variance); eval mode
    # uses the running estimates
    chan = tl.program_id(0)
    block = tl.program_id(1)
    n_red = n_batch * n_inner
    if TRAINING:
{combine}
        if block == 0:
            running_mean = tl.load(mean_ptr + chan)
            running_var = tl.load(var_ptr + chan)
            tl.store(mean_ptr + chan, (1.0 - momentum) * running_mean + momentum * mean)
            tl.store(var_ptr + chan, (1.0 - momentum) * running_var + momentum * (var * n_red / (n_red - 1)))
            if chan == 0:
                tl.store(count_ptr, tl.load(count_ptr) + 1)
    else:
        mean = tl.load(mean_ptr + chan).to(tl.float32)
        var = tl.load(var_ptr + chan).to(tl.float32)
    inv_std = 1.0 / tl.sqrt(var + eps)
    w = tl.load(w_ptr + chan).to(tl.float32)
    b = tl.load(b_ptr + chan).to(tl.float32)
    r = block * BLOCK_R + tl.arange(0, BLOCK_R)
    mask = r < n_red
    offsets = ((r // n_inner) * n_channels + chan) * n_inner + r % n_inner
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    y = (x - mean) * inv_std * w + b
{epilogue}'''


# the split form's combine of one row's block statistics into its mean and biased variance `var`
COMBINE = (
    "s = tl.arange(0, BLOCK_S)",
    "s_mask = s < n_splits",
    "means = tl.load({mean_ptr} + {row} * n_splits + s, mask=s_mask, other=0.0)",
    "m2s = tl.load({m2_ptr} + {row} * n_splits + s, mask=s_mask, other=0.0)",
    "counts = tl.where(s_mask, tl.minimum({n} - s * {block}, {block}), 0).to(tl.float32)",
    "mean = tl.sum(counts * means, axis=0) / {n}",
    "dev = means - mean",
    "var = tl.sum(m2s + counts * dev * dev, axis=0) / {n}",
)


def split_norm(op: str, shape: tuple[int, ...], groups: int = 1) -> bool:
    """A batch or group norm of an input of `shape` takes the split form under the current tiling: each of
    its rows (a group of a sample; a channel) needs more than one block and the one-kernel form would run
    too few programs to fill the GPU."""
    if op == "group_norm":
        n_rows, n_cols = shape[0] * groups, shape[1] // groups * math.prod(shape[2:])
    else:
        n_rows, n_cols = shape[1], shape[0] * math.prod(shape[2:])
    t = tiling.current()
    if n_cols <= t.max_block:
        return False
    rows_per_program = max(1, t.row_tile // t.max_block)
    return -(-n_rows // rows_per_program) < SPLIT_BELOW_PROGRAMS


def channel_norm_kernel(name: str, op: str, n_inputs: int = 0, strided: list[int] = (), rank: int = 0,
                        lines: list[str] = (), outputs: list[str] = ("y",), split: bool = False) -> str:
    """Source of the `@triton.jit` kernel `name` for batch norm or group norm (`split`: the normalising
    kernel of the split form, after `norm_stats_kernel`). The normalised value `y` goes
    through the pointwise epilogue `lines` (inputs in0.., see `epilogue.region_body`; `rank` is the output's)
    and values `outputs` are stored to out0, out1... at the element's offset in the contiguous output."""
    group = op == "group_norm"
    args = ["x_ptr", "w_ptr", "b_ptr"] + ([] if group else ["mean_ptr", "var_ptr", "count_ptr"])
    args += (["mean_ptr", "m2_ptr"] if group else ["part_mean_ptr", "part_m2_ptr"]) if split else []
    args += [f"in{i}_ptr" for i in range(n_inputs)] + [f"out{j}_ptr" for j in range(len(outputs))]
    if group:
        args += ["n_cols", "n_splits"] if split else ["n_rows", "n_cols"]
        args += ["n_groups", "n_inner", "eps"]
    else:
        args += ["n_batch", "n_channels", "n_inner"] + (["n_splits"] if split else []) + ["eps", "momentum"]
    args += index_args(list(strided), rank)
    if group:
        consts = ["BLOCK_N", "BLOCK_S"] if split else ["BLOCK_M", "BLOCK_N"]
        template = GROUP_NORM_SPLIT_BODY if split else GROUP_NORM_BODY
    else:
        consts = ["TRAINING", "BLOCK_R", "BLOCK_S"] if split else ["TRAINING", "BLOCK_C", "BLOCK_R"]
        template = BATCH_NORM_SPLIT_BODY if split else BATCH_NORM_BODY
    epilogue = ["# pointwise epilogue on the normalised values"] if lines else []
    epilogue += region_body(n_inputs, list(strided), rank, list(lines), list(outputs))
    indent = 4 if split else 8
    names = (dict(mean_ptr="mean_ptr", m2_ptr="m2_ptr", row="row", n="n_cols", block="BLOCK_N") if group else
             dict(mean_ptr="part_mean_ptr", m2_ptr="part_m2_ptr", row="chan", n="n_red", block="BLOCK_R"))
    combine = "\n".join(" " * (4 if group else 8) + line.format(**names) for line in COMBINE)
    body = template.format(epilogue="\n".join(" " * indent + line for line in epilogue), combine=combine)
    return "\n".join(["@triton.jit", *signature(name, args, consts)]) + "\n" + body


def norm_stats_kernel(name: str, op: str) -> str:
    """Source of pass 1 of a batch or group norm's split form (block means and M2)."""
    return (GROUP_NORM_STATS_KERNEL if op == "group_norm" else BATCH_NORM_STATS_KERNEL).format(name=name)


def channel_norm_glue(name: str, op: str, x: str, module: str, outs: list[str], operands: list[str] = (),
                      strided: list[int] = (), epilogue: list[str] = (),
                      stats: str | None = None) -> list[str]:
    """Glue computing `outs` (the norm `module`, operator `op`, of glue tensor `x`, or the values its fused
    pointwise `epilogue` stores) with kernel `name`; `operands` are the epilogue's glue tensors. With
    `stats`, the split form: kernel `stats` writes block statistics (batch norm: in training mode only),
    then `name` normalises."""
    m = "norm"
    fused = f"; epilogue fused: {' -> '.join(epilogue)}" if epilogue else ""
    shapes = [f"norm = {module}", f"xc = {x}.contiguous()",
              *[f"{out} = torch.empty_like(xc)" for out in outs],
              *(["shape = xc.shape"] if strided else []),
              "n_batch, n_channels, n_inner = xc.shape[0], xc.shape[1], xc.shape[2:].numel()"]
    tensors = [*operands, *outs]
    index = index_call(list(operands), list(strided))
    if op == "group_norm" and stats is not None:
        call = ["xc", f"{m}.weight", f"{m}.bias", "means", "m2s", *tensors, "n_cols", "n_splits",
                f"{m}.num_groups", "n_inner", f"{m}.eps", *index, "BLOCK_N=BLOCK_N",
                "BLOCK_S=triton.next_power_of_2(n_splits)"]
        return [f"# group_norm, split form: few long rows (sample, group), each cut into blocks of BLOCK_N "
                f"that separate programs reduce, then normalise{fused}", *shapes,
                f"n_rows, n_cols = n_batch * {m}.num_groups, n_channels // {m}.num_groups * n_inner",
                f"BLOCK_N = max(min(triton.next_power_of_2(n_cols), {tiling.current().max_block}), "
                f"triton.next_power_of_2(triton.cdiv(n_cols, {MAX_SPLITS})))",
                "n_splits = triton.cdiv(n_cols, BLOCK_N)",
                "means = torch.empty((n_rows, n_splits), device=xc.device, dtype=torch.float32)",
                "m2s = torch.empty_like(means)",
                f"{stats}[(n_rows, n_splits)](xc, means, m2s, n_cols, n_splits, BLOCK_N=BLOCK_N)",
                f"{name}[(n_rows, n_splits)]({', '.join(call)})"]
    if op == "group_norm":
        call = ["xc", f"{m}.weight", f"{m}.bias", *tensors, "n_rows", "n_cols", f"{m}.num_groups", "n_inner",
                f"{m}.eps", *index, "BLOCK_M=BLOCK_M", "BLOCK_N=BLOCK_N"]
        return [f"# group_norm: statistics per (sample, group), then the per-channel affine map{fused}",
                *shapes,
                f"n_rows, n_cols = n_batch * {m}.num_groups, n_channels // {m}.num_groups * n_inner",
                f"BLOCK_N = min(triton.next_power_of_2(n_cols), {tiling.current().max_block})",
                f"BLOCK_M = max(1, min(triton.next_power_of_2(n_rows), "
                f"{tiling.current().row_tile} // BLOCK_N))",
                f"{name}[(triton.cdiv(n_rows, BLOCK_M),)]({', '.join(call)})"]
    buffers = [f"{m}.running_mean", f"{m}.running_var", f"{m}.num_batches_tracked"]
    head = [f"# {op}: per-channel batch statistics in training mode (running estimates updated too){fused}",
            *shapes,
            "# momentum None means a cumulative average over the batches seen",
            f"momentum = {m}.momentum if {m}.momentum is not None "
            f"else 1.0 / (int({m}.num_batches_tracked) + 1)"]
    if stats is not None:
        call = ["xc", f"{m}.weight", f"{m}.bias", *buffers, "means", "m2s", *tensors, "n_batch", "n_channels",
                "n_inner", "n_splits", f"{m}.eps", "momentum", *index, f"TRAINING={m}.training",
                "BLOCK_R=BLOCK_R", "BLOCK_S=triton.next_power_of_2(n_splits)"]
        return [*head,
                "# split form: few channels, each cut into blocks of BLOCK_R elements that separate "
                "programs reduce",
                "n_red = n_batch * n_inner",
                f"BLOCK_R = max(min(triton.next_power_of_2(n_red), {tiling.current().max_block}), "
                f"triton.next_power_of_2(triton.cdiv(n_red, {MAX_SPLITS})))",
                "n_splits = triton.cdiv(n_red, BLOCK_R)",
                "means = torch.empty((n_channels, n_splits), device=xc.device, dtype=torch.float32)",
                "m2s = torch.empty_like(means)",
                f"if {m}.training:",
                f"    {stats}[(n_channels, n_splits)](xc, means, m2s, n_red, n_channels, n_inner, n_splits, "
                "BLOCK_R=BLOCK_R)",
                f"{name}[(n_channels, n_splits)]({', '.join(call)})"]
    call = ["xc", f"{m}.weight", f"{m}.bias", *buffers, *tensors, "n_batch", "n_channels", "n_inner",
            f"{m}.eps", "momentum", *index, f"TRAINING={m}.training", "BLOCK_C=BLOCK_C", "BLOCK_R=BLOCK_R"]
    return [*head,
            f"BLOCK_R = min(triton.next_power_of_2(n_batch * n_inner), {tiling.current().max_block})",
            f"BLOCK_C = max(1, min(triton.next_power_of_2(n_channels), "
            f"{tiling.current().row_tile} // BLOCK_R))",
            f"{name}[(triton.cdiv(n_channels, BLOCK_C),)]({', '.join(call)})"]


_LOAD = re.compile(r"^(\s*)(x = |total \+= )tl\.load\(x_ptr \+ (.+), "
                   r"mask=(\w+), other=0\.0\)\.to\(tl\.float32\)$")


def with_prologue(kernel: str, prologue: list[str], loaded: str) -> str:
    """`kernel` (any channel-norm kernel source) with the pointwise `prologue` lines applied wherever it loads
    the input tile `x`: their result `loaded` replaces `x`, masked lanes stay 0, so a producing pointwise
    region (sigmoid -> group_norm) runs inside the norm's kernels instead of writing its own tensor."""
    out = []
    for line in kernel.splitlines():
        m = _LOAD.match(line)
        if not m:
            out.append(line)
            continue
        pad, target, where, mask = m.groups()
        out.append(f"{pad}x = tl.load(x_ptr + {where}, mask={mask}, other=0.0).to(tl.float32)")
        out.append(f"{pad}# pointwise prologue on the loaded tile (masked lanes stay 0)")
        out += [f"{pad}{p}" for p in prologue]
        out.append(f"{pad}{target}tl.where({mask}, {loaded}, 0.0)")
    if len(out) == len(kernel.splitlines()):
        raise ValueError("with_prologue: no load of the input tile x found in the kernel (template changed?)")
    return "\n".join(out)
