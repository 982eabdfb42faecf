"""Channel norms: batch norm (1d/2d/3d) and group norm as looped reduction kernels.

The reference builds `nn.BatchNorm{d}d(C)` / `nn.GroupNorm(G, C)` with default arguments and the verifier
runs the Model as constructed, in training mode. So batch norm normalises with the batch statistics of
each channel (mean and biased variance over the batch and all positions) and updates its running
estimates (unbiased variance, `momentum`, `num_batches_tracked`) as nn.BatchNorm does; in eval mode the
same kernel normalises with the running estimates instead. Group norm always uses the statistics of each
(sample, group) over the group's channels and positions. Both apply the per-channel affine map.
Instance norm (per (sample, channel) statistics, no affine by default) is a row kernel (`rows.py`).

The input is a contiguous (N, C, inner) tensor; reductions walk it BLOCK_R (BLOCK_N) elements at a time:
one pass for the mean, one for the variance around it, one to normalise and store.
"""
from __future__ import annotations

from synth.teacher import tiling

BATCH_NORMS = frozenset({f"batch_norm{d}d" for d in (1, 2, 3)})
CHANNEL_NORM_OPS = BATCH_NORMS | {"group_norm"}

BATCH_NORM_KERNEL = '''@triton.jit
def {name}(x_ptr, w_ptr, b_ptr, mean_ptr, var_ptr, count_ptr, out_ptr, n_batch, n_channels, n_inner,
{pad}eps, momentum, TRAINING: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_R: tl.constexpr):
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
        tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=mask)'''

GROUP_NORM_KERNEL = '''@triton.jit
def {name}(x_ptr, w_ptr, b_ptr, out_ptr, n_rows, n_cols, n_groups, n_inner, eps,
{pad}BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
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
        tl.store(out_ptr + rows * n_cols + cols, y.to(out_ptr.dtype.element_ty), mask=mask)'''


def channel_norm_kernel(name: str, op: str) -> str:
    """Source of the `@triton.jit` kernel `name` for batch norm or group norm."""
    template = GROUP_NORM_KERNEL if op == "group_norm" else BATCH_NORM_KERNEL
    return template.format(name=name, pad=" " * (len(name) + 5))


def channel_norm_glue(name: str, op: str, x: str, module: str, out: str) -> list[str]:
    """Glue computing `out` = the norm `module` (operator `op`) of glue tensor `x` with kernel `name`."""
    m = "norm"
    shapes = [f"norm = {module}", f"xc = {x}.contiguous()",
              f"{out} = torch.empty_like(xc)",
              "n_batch, n_channels, n_inner = xc.shape[0], xc.shape[1], xc.shape[2:].numel()"]
    if op == "group_norm":
        call = ["xc", f"{m}.weight", f"{m}.bias", out, "n_rows", "n_cols", f"{m}.num_groups", "n_inner",
                f"{m}.eps", "BLOCK_M=BLOCK_M", "BLOCK_N=BLOCK_N"]
        return ["# group_norm: statistics per (sample, group), then the per-channel affine map", *shapes,
                f"n_rows, n_cols = n_batch * {m}.num_groups, n_channels // {m}.num_groups * n_inner",
                f"BLOCK_N = min(triton.next_power_of_2(n_cols), {tiling.current().max_block})",
                f"BLOCK_M = max(1, min(triton.next_power_of_2(n_rows), {tiling.current().row_tile} // BLOCK_N))",
                f"{name}[(triton.cdiv(n_rows, BLOCK_M),)]({', '.join(call)})"]
    call = ["xc", f"{m}.weight", f"{m}.bias", f"{m}.running_mean", f"{m}.running_var",
            f"{m}.num_batches_tracked", out, "n_batch", "n_channels", "n_inner", f"{m}.eps", "momentum",
            f"TRAINING={m}.training", "BLOCK_C=BLOCK_C", "BLOCK_R=BLOCK_R"]
    return [f"# {op}: per-channel batch statistics in training mode (running estimates updated too)",
            *shapes,
            "# momentum None means a cumulative average over the batches seen",
            f"momentum = {m}.momentum if {m}.momentum is not None else 1.0 / (int({m}.num_batches_tracked) + 1)",
            f"BLOCK_R = min(triton.next_power_of_2(n_batch * n_inner), {tiling.current().max_block})",
            f"BLOCK_C = max(1, min(triton.next_power_of_2(n_channels), {tiling.current().row_tile} // BLOCK_R))",
            f"{name}[(triton.cdiv(n_channels, BLOCK_C),)]({', '.join(call)})"]
