"""Normalisation modules: layer, RMS, batch (1d/2d/3d), group and instance (1d/2d/3d) norms.

Layer and RMS norm take `features` as an int (the last dim, what synthesis draws) or, from a traced Model,
a tuple of the trailing dims they normalise over (`nn.LayerNorm((C, H, W))`).

Models run in training mode by default, so batch norm needs more than one value per channel (batch >= 2)
and instance norm more than one spatial element (last dim >= 2).
"""
from __future__ import annotations

from synth.ops.base import Op, ShapeError, expect_rank, numel, register


class Norm(Op):
    """Shape-preserving `nn.Module` norm over the features in `axis` (-1: last dim, 1: channels)."""

    module = True
    category = "norm"

    def __init__(self, name: str, cls: str, ranks, axis: int, min_batch: int = 1, min_last: int = 1) -> None:
        self.name, self.cls, self.ranks, self.axis = name, cls, frozenset(ranks), axis
        self.min_batch, self.min_last = min_batch, min_last

    def rank_options(self, r0):
        return (r0,) if r0 in self.ranks else ()

    def size_params(self, in_shapes, out_shape, params):
        return {"features": in_shapes[0][self.axis]}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        expect_rank(x, self.ranks, self.name)
        features = params.get("features")
        if isinstance(features, (list, tuple)):  # layer / RMS norm over the trailing len(features) dims
            if self.axis != -1 or tuple(x[-len(features):]) != tuple(features) or len(features) > len(x):
                raise ShapeError(f"{self.name}({tuple(features)}) got input {tuple(x)}")
        elif features is not None and x[self.axis] != features:
            raise ShapeError(f"{self.name}({params['features']}) got features {x[self.axis]} in {tuple(x)}")
        if x[0] < self.min_batch or x[-1] < self.min_last:
            raise ShapeError(
                f"{self.name} needs batch >= {self.min_batch}, last dim >= {self.min_last}: {tuple(x)}")
        return tuple(x)

    def constrain(self, ctx, params):
        x = ctx.ins[0]
        for a, b in zip(x, ctx.out):
            ctx.p.equal(a, b)
        ctx.p.at_least(x[0], self.min_batch)
        ctx.p.at_least(x[-1], self.min_last)
        ctx.flops(5, [ctx.numel_out])
        # weight and bias (weight_elements): counted against the element cap like every other weight
        features = params.get("features")
        ctx.weights(2, list(x[-len(features):]) if isinstance(features, (list, tuple)) else [x[self.axis]])

    def flops(self, in_shapes, out_shape, params):
        return 5 * numel(out_shape)

    def weight_elements(self, in_shapes, out_shape, params):
        return 2 * numel(normalized_shape(params, in_shapes[0], self.axis))

    def init_expr(self, params, size):
        features = params["features"]
        if isinstance(features, (list, tuple)):
            return f"nn.{self.cls}(({', '.join(size(f) for f in features)},))"
        return f"nn.{self.cls}({size(features)})"

    def forward_expr(self, args, params, attr):
        return f"self.{attr}({args[0]})"


def normalized_shape(params: dict, x, axis: int) -> tuple[int, ...]:
    """The sizes a norm normalises over: `features` as a tuple (a layer norm over several trailing dims), or
    the one dim `axis` of input shape `x`."""
    features = params.get("features")
    return tuple(features) if isinstance(features, (list, tuple)) else (x[axis],)


class GroupNorm(Norm):
    """`nn.GroupNorm(groups, C)`: channels (dim 1) divisible by `groups`."""

    def __init__(self) -> None:
        super().__init__("group_norm", "GroupNorm", range(2, 6), axis=1)

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"groups": rng.choice([1, 2, 4, 8])}

    def infer(self, in_shapes, params):
        shape = super().infer(in_shapes, params)
        if shape[1] % params["groups"]:
            raise ShapeError(f"group_norm: {shape[1]} channels not divisible by {params['groups']} groups")
        return shape

    def constrain(self, ctx, params):
        super().constrain(ctx, params)
        g = params["groups"]
        if g > 1:
            per_group = ctx.aux(1, ctx.p.hi[ctx.ins[0][1]])
            ctx.p.linear({ctx.ins[0][1]: 1, per_group: -g})

    def init_expr(self, params, size):
        return f"nn.GroupNorm({params['groups']}, {size(params['features'])})"


NORMS = [
    Norm("layer_norm", "LayerNorm", range(1, 6), axis=-1),
    Norm("rms_norm", "RMSNorm", range(1, 6), axis=-1),
    Norm("batch_norm1d", "BatchNorm1d", (2, 3), axis=1, min_batch=2),
    Norm("batch_norm2d", "BatchNorm2d", (4,), axis=1, min_batch=2),
    Norm("batch_norm3d", "BatchNorm3d", (5,), axis=1, min_batch=2),
    GroupNorm(),
    Norm("instance_norm1d", "InstanceNorm1d", (3,), axis=1, min_last=2),
    Norm("instance_norm2d", "InstanceNorm2d", (4,), axis=1, min_last=2),
    Norm("instance_norm3d", "InstanceNorm3d", (5,), axis=1, min_last=2),
]

for _op in NORMS:
    register(_op)
