"""Linear algebra: `nn.Linear`, `torch.matmul` (batched, same rank), `torch.mm`, `torch.bmm`."""
from __future__ import annotations

from synth.ops.base import Op, ShapeError, broadcast, expect_rank, numel, register


class Linear(Op):
    """`nn.Linear(in_features, out_features, bias)` on the last dim, ranks 2-4."""

    name, module, category = "linear", True, "matmul"
    ranks = frozenset(range(2, 5))

    def rank_options(self, r0):
        return (r0,) if r0 in self.ranks else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"bias": rng.random() < 0.75}

    def size_params(self, in_shapes, out_shape, params):
        return {"in_features": in_shapes[0][-1], "out_features": out_shape[-1]}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        if not x or x[-1] != params["in_features"]:
            raise ShapeError(f"linear({params['in_features']}, ...) got input {tuple(x)}")
        return tuple(x[:-1]) + (params["out_features"],)

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        for a, b in zip(x[:-1], out[:-1]):
            ctx.p.equal(a, b)
        ctx.flops(2, [ctx.numel_in[0], out[-1]])
        ctx.weights(1, [x[-1], out[-1]])

    def flops(self, in_shapes, out_shape, params):
        return 2 * numel(in_shapes[0]) * out_shape[-1]

    def weight_elements(self, in_shapes, out_shape, params):
        return in_shapes[0][-1] * out_shape[-1]

    def init_expr(self, params, size):
        bias = "" if params.get("bias", True) else ", bias=False"
        return f"nn.Linear({size(params['in_features'])}, {size(params['out_features'])}{bias})"

    def forward_expr(self, args, params, attr):
        return f"self.{attr}({args[0]})"


class MatMul(Op):
    """`[..., M, K] @ [..., K, N]`. Synthesis uses equal ranks in `ranks` and equal batch dims; `infer`
    of "matmul" also accepts broadcasting batch dims, as torch does."""

    arity, category = 2, "matmul"

    def __init__(self, name: str, template: str, ranks) -> None:
        self.name, self.template, self.ranks = name, template, frozenset(ranks)

    def rank_options(self, r0):
        return (r0,) if r0 in self.ranks else ()

    def side_ranks(self, r0, slot):
        return (r0,)

    def infer(self, in_shapes, params):
        a, b = tuple(in_shapes[0]), tuple(in_shapes[1])
        if self.name == "matmul" and len(a) >= 2 and len(b) >= 2 and a[-1] == b[-2]:
            # imported graphs: torch.matmul broadcasts batch dims between any ranks >= 2
            return broadcast(a[:-2], b[:-2], self.name) + (a[-2], b[-1])
        expect_rank(a, self.ranks, self.name)
        if len(a) != len(b) or a[:-2] != b[:-2] or a[-1] != b[-2]:
            raise ShapeError(f"{self.name}: shapes {a} and {b} do not multiply")
        return a[:-1] + (b[-1],)

    def constrain(self, ctx, params):
        a, b = ctx.ins
        out = ctx.out
        for x, y, o in zip(a[:-2], b[:-2], out[:-2]):
            ctx.p.equal(x, y)
            ctx.p.equal(x, o)
        ctx.p.equal(a[-2], out[-2])
        ctx.p.equal(a[-1], b[-2])
        ctx.p.equal(b[-1], out[-1])
        ctx.flops(2, [ctx.numel_out, a[-1]])

    def flops(self, in_shapes, out_shape, params):
        return 2 * numel(out_shape) * in_shapes[0][-1]

    def forward_expr(self, args, params, attr):
        return self.template.format(a=args[0], b=args[1])


for _op in [
    Linear(),
    MatMul("matmul", "torch.matmul({a}, {b})", range(2, 5)),
    MatMul("mm", "torch.mm({a}, {b})", (2,)),
    MatMul("bmm", "torch.bmm({a}, {b})", (3,)),
]:
    register(_op)
