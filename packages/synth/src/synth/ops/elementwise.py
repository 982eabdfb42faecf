"""Pointwise operators: activations, scalar ops, binary ops with broadcasting, and triu / tril."""
from __future__ import annotations

import random
from typing import Sequence

from synth.ops.base import ALL_RANKS, Op, ShapeError, broadcast, fmt, register


class Unary(Op):
    """`template` is the forward expression with `{x}` for the input and `{param}` for each parameter;
    `choices` maps each parameter to the values synthesis draws from."""

    category = "activation"

    def __init__(self, name: str, template: str, category: str = "activation", positive: bool = False,
                 **choices) -> None:
        self.name, self.template, self.category, self.choices = name, template, category, choices
        self.positive_slots = frozenset({0}) if positive else frozenset()

    def rank_options(self, r0: int) -> Sequence[int]:
        return (r0,) if r0 in ALL_RANKS else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {k: rng.choice(v) for k, v in self.choices.items()}

    def forward_expr(self, args, params, attr):
        return self.template.format(x=args[0], **{k: fmt(params[k]) for k in self.choices})


ACTIVATIONS = [
    Unary("relu", "torch.relu({x})"),
    Unary("relu6", "F.relu6({x})"),
    Unary("leaky_relu", "F.leaky_relu({x}, negative_slope={negative_slope})",
          negative_slope=[0.01, 0.1, 0.2]),
    Unary("elu", "F.elu({x}, alpha={alpha})", alpha=[0.5, 1.0]),
    Unary("selu", "F.selu({x})"),
    Unary("celu", "F.celu({x}, alpha={alpha})", alpha=[0.5, 1.0, 2.0]),
    Unary("gelu", "F.gelu({x})"),
    Unary("gelu_tanh", "F.gelu({x}, approximate='tanh')"),
    Unary("silu", "F.silu({x})"),
    Unary("mish", "F.mish({x})"),
    Unary("hardswish", "F.hardswish({x})"),
    Unary("hardsigmoid", "F.hardsigmoid({x})"),
    Unary("hardtanh", "F.hardtanh({x}, min_val={min_val}, max_val={max_val})",
          min_val=[-1.0, -2.0], max_val=[1.0, 2.0]),
    Unary("sigmoid", "torch.sigmoid({x})"),
    Unary("tanh", "torch.tanh({x})"),
    Unary("softplus", "F.softplus({x}, beta={beta})", beta=[1.0, 2.0]),
    Unary("softsign", "F.softsign({x})"),
    Unary("logsigmoid", "F.logsigmoid({x})"),
    Unary("tanhshrink", "F.tanhshrink({x})"),
    Unary("hardshrink", "F.hardshrink({x}, lambd={lambd})", lambd=[0.5]),
    Unary("softshrink", "F.softshrink({x}, lambd={lambd})", lambd=[0.5]),
]

POINTWISE = [
    Unary("clamp", "torch.clamp({x}, min={min}, max={max})", "pointwise",
          min=[-1.0, -0.5, 0.0], max=[0.5, 1.0, 2.0]),
    Unary("scale", "{x} * {factor}", "pointwise", factor=[0.5, 2.0, 0.1, 1.5]),
    Unary("shift", "{x} + {value}", "pointwise", value=[1.0, -0.5, 0.1]),
    Unary("abs", "torch.abs({x})", "pointwise"),
    Unary("erf", "torch.erf({x})", "pointwise"),
    Unary("dropout", "F.dropout({x}, p={p}, training=False)", "pointwise", p=[0.1, 0.5]),
    Unary("sqrt", "torch.sqrt({x})", "pointwise", positive=True),
    Unary("log", "torch.log({x})", "pointwise", positive=True),
    # any float exponent when imported (x ** 0.5 is NaN below 0, as in torch); synthesis draws integer ones
    Unary("pow", "torch.pow({x}, {exponent})", "pointwise", exponent=[2.0, 3.0]),
]


class Binary(Op):
    """`a OP b` with `b` broadcast to `a`. Synthesis keeps rank(b) <= rank(a) and, per trailing-aligned
    dim, b's size either equals a's or is 1 (parameter `broadcast`: one bool per dim of b, True = 1).
    `infer` accepts any PyTorch-broadcastable pair, so imported graphs fit too."""

    arity = 2
    category = "binary"

    def __init__(self, name: str, template: str, positive_divisor: bool = False) -> None:
        self.name, self.template = name, template
        self.positive_slots = frozenset({1}) if positive_divisor else frozenset()

    def rank_options(self, r0):
        return (r0,) if r0 in ALL_RANKS else ()

    def side_ranks(self, r0, slot):
        return tuple(range(1, r0 + 1))

    def sample_params(self, rng: random.Random, in_ranks, out_rank, safe, fresh=()):
        # a new leaf may broadcast (bias-like shapes); a reused tensor keeps its sizes
        p_one = 0.3 if len(fresh) > 1 and fresh[1] else 0.0
        return {"broadcast": [rng.random() < p_one for _ in range(in_ranks[1])]}

    def infer(self, in_shapes, params):
        return broadcast(in_shapes[0], in_shapes[1], self.name)

    def constrain(self, ctx, params):
        a, b = ctx.ins
        mask = params.get("broadcast") or [False] * len(b)
        for da, o in zip(a, ctx.out):
            ctx.p.equal(da, o)
        for j, db in enumerate(b):
            if mask[j]:
                ctx.p.fix(db, 1)
            else:
                ctx.p.equal(db, a[len(a) - len(b) + j])
        ctx.flops(1, [ctx.numel_out])

    def forward_expr(self, args, params, attr):
        return self.template.format(a=args[0], b=args[1])


class Triangle(Op):
    """`torch.triu(x, diagonal)` / `torch.tril(x, diagonal)`: the upper / lower triangle of each matrix (the
    last two dims), the rest zero."""

    category = "pointwise"

    def __init__(self, name: str) -> None:
        self.name = name

    def rank_options(self, r0):
        return (r0,) if r0 in ALL_RANKS and r0 >= 2 else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"diagonal": rng.choice([0, 1, -1])}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        if len(x) < 2:
            raise ShapeError(f"{self.name} needs a matrix (rank >= 2), got shape {tuple(x)}")
        return tuple(x)

    def forward_expr(self, args, params, attr):
        return f"torch.{self.name}({args[0]}, diagonal={params.get('diagonal', 0)})"


BINARY = [
    Binary("add", "{a} + {b}"),
    Binary("sub", "{a} - {b}"),
    Binary("mul", "{a} * {b}"),
    Binary("maximum", "torch.maximum({a}, {b})"),
    Binary("minimum", "torch.minimum({a}, {b})"),
    Binary("div", "{a} / {b}", positive_divisor=True),
]

for _op in ACTIVATIONS + POINTWISE + BINARY + [Triangle("triu"), Triangle("tril")]:
    register(_op)
