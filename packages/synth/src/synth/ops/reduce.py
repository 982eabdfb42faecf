"""Reductions over a dim (sum, mean, max, min, logsumexp, std, norm, argmax, argmin), softmax family, cumsum,
cumprod, normalize."""
from __future__ import annotations

from synth.ops.base import ALL_RANKS, Op, ShapeError, fmt, norm_dim, numel, register


def _dims(params, rank):
    dim = params["dim"]
    dims = dim if isinstance(dim, (list, tuple)) else [dim]
    return sorted({norm_dim(d, rank) for d in dims})


class Reduce(Op):
    """`template(x, dim, keepdim)`; `dim` is an int (synthesis) or a list of ints (imported graphs; all the
    dims without keepdim make a 0-d tensor)."""

    category = "reduction"

    def __init__(self, name: str, template: str, min_size: int = 1, terminal: bool = False) -> None:
        self.name, self.template, self.min_size, self.terminal = name, template, min_size, terminal

    def rank_options(self, r0):
        if r0 not in ALL_RANKS:
            return ()
        return (r0, r0 - 1) if r0 >= 2 else (r0,)

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"dim": rng.randrange(in_ranks[0]), "keepdim": out_rank == in_ranks[0]}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        dims = _dims(params, len(x))
        if any(x[d] < self.min_size for d in dims):
            raise ShapeError(f"{self.name} needs size >= {self.min_size} on dims {dims}, got {tuple(x)}")
        if params.get("keepdim", False):
            return tuple(1 if i in dims else s for i, s in enumerate(x))
        # every dim reduced: a 0-d result (torch.mean(x) of a traced loss); synthesis keeps rank >= 1
        return tuple(s for i, s in enumerate(x) if i not in dims)

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        d = norm_dim(params["dim"], len(x))
        kept = [v for i, v in enumerate(x) if i != d]
        if params["keepdim"]:
            ctx.p.fix(out[d], 1)
            out = [v for i, v in enumerate(out) if i != d]
        for a, b in zip(kept, out):
            ctx.p.equal(a, b)
        ctx.p.at_least(x[d], self.min_size)
        ctx.flops(1, [ctx.numel_in[0]])

    def flops(self, in_shapes, out_shape, params):
        return numel(in_shapes[0])

    def forward_expr(self, args, params, attr):
        dim = params["dim"]
        return self.template.format(x=args[0], dim=fmt(tuple(dim) if isinstance(dim, list) else dim),
                                    keepdim=params.get("keepdim", False))


class AlongDim(Op):
    """Same-shape ops along one dim: softmax, log_softmax, cumsum, cumprod, normalize."""

    category = "softmax"

    def __init__(self, name: str, template: str, category: str) -> None:
        self.name, self.template, self.category = name, template, category

    def rank_options(self, r0):
        return (r0,) if r0 in ALL_RANKS else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"dim": rng.randrange(in_ranks[0])}

    def infer(self, in_shapes, params):
        norm_dim(params["dim"], len(in_shapes[0]))
        return tuple(in_shapes[0])

    def constrain(self, ctx, params):
        for a, b in zip(ctx.ins[0], ctx.out):
            ctx.p.equal(a, b)
        ctx.flops(4, [ctx.numel_out])

    def flops(self, in_shapes, out_shape, params):
        return 4 * numel(out_shape)

    def forward_expr(self, args, params, attr):
        return self.template.format(x=args[0], dim=params["dim"])


REDUCTIONS = [
    Reduce("sum", "torch.sum({x}, dim={dim}, keepdim={keepdim})"),
    Reduce("mean", "torch.mean({x}, dim={dim}, keepdim={keepdim})"),
    Reduce("amax", "torch.amax({x}, dim={dim}, keepdim={keepdim})"),
    Reduce("amin", "torch.amin({x}, dim={dim}, keepdim={keepdim})"),
    Reduce("logsumexp", "torch.logsumexp({x}, dim={dim}, keepdim={keepdim})"),
    # std of one element is NaN: the reduced dim needs two
    Reduce("std", "torch.std({x}, dim={dim}, keepdim={keepdim})", min_size=2),
    Reduce("norm", "torch.linalg.vector_norm({x}, dim={dim}, keepdim={keepdim})"),
    # int64 indices of the first extreme value along one dim (`dim`: an int)
    Reduce("argmax", "torch.argmax({x}, dim={dim}, keepdim={keepdim})", terminal=True),
    Reduce("argmin", "torch.argmin({x}, dim={dim}, keepdim={keepdim})", terminal=True),
]

ALONG_DIM = [
    AlongDim("softmax", "torch.softmax({x}, dim={dim})", "softmax"),
    AlongDim("log_softmax", "torch.log_softmax({x}, dim={dim})", "softmax"),
    AlongDim("cumsum", "torch.cumsum({x}, dim={dim})", "reduction"),
    AlongDim("cumprod", "torch.cumprod({x}, dim={dim})", "reduction"),
    AlongDim("normalize", "F.normalize({x}, dim={dim})", "norm"),
]

for _op in REDUCTIONS + ALONG_DIM:
    register(_op)
