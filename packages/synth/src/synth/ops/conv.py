"""Convolutions (1d/2d/3d and transposed), max/avg pooling and adaptive average pooling.

Spatial sizes follow PyTorch: a conv or pool maps `L` to `floor((L + 2p - d(k-1) - 1) / s) + 1`, written
for the CSP as `L + 2p - d(k-1) - 1 = s(out - 1) + r` with a remainder `0 <= r < s`; a transposed conv
maps `L` to `(L - 1)s - 2p + d(k-1) + output_padding + 1`. Parameters may be ints or per-dim tuples.

Synthesis keeps channels at most MAX_CHANNELS: realistic, and clear of a torch CPU crash (double free in
ConvTranspose1d with 16384 input channels, kernel 3, stride 2, torch 2.13).
"""
from __future__ import annotations

import math

from synth.ops.base import Op, ShapeError, expect_rank, fmt, numel, register

MAX_CHANNELS = 4096


def _per_dim(value, d: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * d


def _window(params, d):
    k = _per_dim(params["kernel_size"], d)
    s = _per_dim(params.get("stride") or params["kernel_size"], d)
    p = _per_dim(params.get("padding", 0), d)
    dl = _per_dim(params.get("dilation", 1), d)
    return k, s, p, dl


def _sliding(ctx, x_sp, out_sp, k, s, p, dl):
    for L, o, ki, si, pi, di in zip(x_sp, out_sp, k, s, p, dl):
        const = 2 * pi - di * (ki - 1) - 1 + si
        if si == 1:
            ctx.p.linear({L: 1, o: -1}, const)
        else:
            rem = ctx.aux(0, si - 1)
            ctx.p.linear({L: 1, o: -si, rem: -1}, const)


class Conv(Op):
    """`nn.Conv{d}d` / `nn.ConvTranspose{d}d` on `[N, C, *spatial]` (batched, rank d + 2)."""

    module = True
    category = "conv"

    def __init__(self, d: int, transposed: bool) -> None:
        self.d, self.transposed = d, transposed
        self.name = f"conv_transpose{d}d" if transposed else f"conv{d}d"
        self.cls = f"ConvTranspose{d}d" if transposed else f"Conv{d}d"

    def rank_options(self, r0):
        return (r0,) if r0 == self.d + 2 else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        if self.transposed:
            k = rng.choice([1, 3] if safe else [2, 3, 4])
            s = 1 if safe else rng.choice([1, 2])
            p = (k - 1) // 2 if safe else rng.choice(sorted({0, (k - 1) // 2}))
            out_pad = 0 if safe else rng.choice(sorted({0, s - 1}))
            params = {"kernel_size": k, "stride": s, "padding": p, "output_padding": out_pad}
        else:
            k = rng.choice([1, 3] if safe or self.d == 3 else [1, 3, 5])
            s = 1 if safe else rng.choice([1, 2])
            p = k // 2 if safe else rng.choice(sorted({0, k // 2}))
            dl = 2 if not safe and k > 1 and rng.random() < 0.2 else 1
            params = {"kernel_size": k, "stride": s, "padding": p, "dilation": dl}
        params["groups"] = rng.choice([1, 1, 1, 2, 4])
        params["bias"] = rng.random() < 0.75
        return params

    def size_params(self, in_shapes, out_shape, params):
        return {"in_channels": in_shapes[0][1], "out_channels": out_shape[1]}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        expect_rank(x, (self.d + 2,), self.name)
        cin, cout, g = params["in_channels"], params["out_channels"], params.get("groups", 1)
        if x[1] != cin or cin % g or cout % g:
            raise ShapeError(f"{self.name}({cin}, {cout}, groups={g}) got input {tuple(x)}")
        k, s, p, dl = _window({**params, "stride": params.get("stride", 1)}, self.d)
        if self.transposed:
            op = _per_dim(params.get("output_padding", 0), self.d)
            sp = [(L - 1) * si - 2 * pi + di * (ki - 1) + oi + 1
                  for L, ki, si, pi, di, oi in zip(x[2:], k, s, p, dl, op)]
        else:
            sp = [(L + 2 * pi - di * (ki - 1) - 1) // si + 1 for L, ki, si, pi, di in zip(x[2:], k, s, p, dl)]
        if min(sp) < 1:
            raise ShapeError(f"{self.name}: input {tuple(x)} too small for kernel {k}")
        return (x[0], cout, *sp)

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        g, kk = params["groups"], params["kernel_size"] ** self.d
        ctx.p.equal(x[0], out[0])
        ctx.p.at_most(x[1], MAX_CHANNELS)
        ctx.p.at_most(out[1], MAX_CHANNELS)
        cin_g, cout_g = x[1], out[1]
        if g > 1:
            cin_g, cout_g = ctx.aux(1, ctx.p.hi[x[1]]), ctx.aux(1, ctx.p.hi[out[1]])
            ctx.p.linear({x[1]: 1, cin_g: -g})
            ctx.p.linear({out[1]: 1, cout_g: -g})
        k, s, p, dl = _window(params, self.d)
        if self.transposed:
            for L, o, si, pi, di, ki in zip(x[2:], out[2:], s, p, dl, k):
                ctx.p.linear({o: 1, L: -si}, si + 2 * pi - di * (ki - 1) - params["output_padding"] - 1)
            ctx.flops(2 * kk, [ctx.numel_in[0], cout_g])
        else:
            _sliding(ctx, x[2:], out[2:], k, s, p, dl)
            ctx.flops(2 * kk, [ctx.numel_out, cin_g])
        ctx.weights(kk, [x[1], cout_g])

    def flops(self, in_shapes, out_shape, params):
        kk = math.prod(_per_dim(params["kernel_size"], self.d))
        g = params.get("groups", 1)
        if self.transposed:
            return 2 * kk * numel(in_shapes[0]) * (out_shape[1] // g)
        return 2 * kk * numel(out_shape) * (in_shapes[0][1] // g)

    def weight_elements(self, in_shapes, out_shape, params):
        kk = math.prod(_per_dim(params["kernel_size"], self.d))
        return kk * in_shapes[0][1] * out_shape[1] // params.get("groups", 1)

    def init_expr(self, params, size):
        args = [size(params["in_channels"]), size(params["out_channels"]), fmt(params["kernel_size"])]
        for key, default in [("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1),
                             ("groups", 1), ("bias", True)]:
            if params.get(key, default) != default:
                args.append(f"{key}={fmt(params[key])}")
        return f"nn.{self.cls}({', '.join(args)})"

    def forward_expr(self, args, params, attr):
        return f"self.{attr}({args[0]})"


class Pool(Op):
    """`F.{max,avg}_pool{d}d(x, kernel_size, stride, padding)` on `[N, C, *spatial]`; max pooling also takes
    `dilation` (an int or per-dim tuple, default 1)."""

    category = "pool"

    def __init__(self, kind: str, d: int) -> None:
        self.pool, self.d, self.name = kind, d, f"{kind}_pool{d}d"
        # torch's avg_pool3d rejects inputs smaller than the kernel, whatever the padding
        self.input_covers_kernel = kind == "avg" and d == 3

    def rank_options(self, r0):
        return (r0,) if r0 == self.d + 2 else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        if safe:
            return {"kernel_size": 3, "stride": 1, "padding": 1}
        k = rng.choice([2, 3])
        return {"kernel_size": k, "stride": rng.choice(sorted({1, 2, k})), "padding": rng.randint(0, k // 2)}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        expect_rank(x, (self.d + 2,), self.name)
        k, s, p, dl = _window(params, self.d)
        if self.pool != "max" and any(di != 1 for di in dl):
            raise ShapeError(f"{self.name} has no dilation (got {params['dilation']})")
        if any(2 * pi > di * (ki - 1) + 1 for pi, ki, di in zip(p, k, dl)):
            raise ShapeError(f"{self.name}: padding {p} exceeds half the (dilated) kernel {k}")
        if self.input_covers_kernel and any(L < ki for L, ki in zip(x[2:], k)):
            raise ShapeError(f"{self.name}: input {tuple(x)} smaller than kernel {k}")
        sp = [(L + 2 * pi - di * (ki - 1) - 1) // si + 1 for L, ki, si, pi, di in zip(x[2:], k, s, p, dl)]
        if min(sp) < 1:
            raise ShapeError(f"{self.name}: input {tuple(x)} too small for kernel {k}")
        return (x[0], x[1], *sp)

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        ctx.p.equal(x[0], out[0])
        ctx.p.equal(x[1], out[1])
        _sliding(ctx, x[2:], out[2:], *_window(params, self.d))
        if self.input_covers_kernel:
            for L in x[2:]:
                ctx.p.at_least(L, params["kernel_size"])
        ctx.flops(params["kernel_size"] ** self.d, [ctx.numel_out])

    def flops(self, in_shapes, out_shape, params):
        return math.prod(_per_dim(params["kernel_size"], self.d)) * numel(out_shape)

    def forward_expr(self, args, params, attr):
        extra = "".join(f", {k}={fmt(params[k])}" for k in ("stride", "padding") if k in params)
        if params.get("dilation", 1) != 1:  # max pooling of a traced Model; synthesis draws none
            extra += f", dilation={fmt(params['dilation'])}"
        return f"F.{self.name}({args[0]}, kernel_size={fmt(params['kernel_size'])}{extra})"


class AdaptivePool(Op):
    """`F.adaptive_avg_pool{d}d(x, output_size)` on `[N, C, *spatial]`."""

    category = "pool"

    def __init__(self, d: int) -> None:
        self.d, self.name = d, f"adaptive_avg_pool{d}d"

    def rank_options(self, r0):
        return (r0,) if r0 == self.d + 2 else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"output_size": rng.choice([1, 2, 4, 7])}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        expect_rank(x, (self.d + 2,), self.name)
        return (x[0], x[1], *_per_dim(params["output_size"], self.d))

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        ctx.p.equal(x[0], out[0])
        ctx.p.equal(x[1], out[1])
        for o in out[2:]:
            ctx.p.fix(o, params["output_size"])
        ctx.flops(1, [ctx.numel_in[0]])

    def flops(self, in_shapes, out_shape, params):
        return numel(in_shapes[0])

    def forward_expr(self, args, params, attr):
        return f"F.{self.name}({args[0]}, {fmt(params['output_size'])})"


for _d in (1, 2, 3):
    register(Conv(_d, transposed=False))
for _d in (1, 2, 3):
    register(Conv(_d, transposed=True))
for _kind in ("max", "avg"):
    for _d in (1, 2, 3):
        register(Pool(_kind, _d))
for _d in (1, 2, 3):
    register(AdaptivePool(_d))
