"""Layout operators: flatten, unflatten, transpose, permute, unsqueeze, squeeze, reshape, narrow, expand,
flip, cat, stack."""
from __future__ import annotations

import math

from synth.ops.base import ALL_RANKS, MAX_RANK, Op, ShapeError, fmt, norm_dim, register


class Flatten(Op):
    """`torch.flatten(x, start_dim)`: dims from `start_dim` to the end become one."""

    name, category = "flatten", "layout"

    def rank_options(self, r0):
        return tuple(range(1, r0)) if r0 in ALL_RANKS else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"start_dim": out_rank - 1}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        s = norm_dim(params["start_dim"], len(x))
        return tuple(x[:s]) + (math.prod(x[s:]),)

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        s = params["start_dim"]
        for a, b in zip(x[:s], out[:s]):
            ctx.p.equal(a, b)
        ctx.p.product(out[s], x[s:])

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        return f"torch.flatten({args[0]}, {params['start_dim']})"


class Unflatten(Op):
    """`x.unflatten(dim, (a, b))`: dim `dim` of size a*b becomes two dims."""

    name, category = "unflatten", "layout"

    def rank_options(self, r0):
        return (r0 + 1,) if r0 in ALL_RANKS and r0 < MAX_RANK else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"dim": rng.randrange(in_ranks[0])}

    def size_params(self, in_shapes, out_shape, params):
        d = params["dim"]
        return {"sizes": [out_shape[d], out_shape[d + 1]]}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        d = norm_dim(params["dim"], len(x))
        a, b = params["sizes"]
        if a * b != x[d]:
            raise ShapeError(f"unflatten: {x[d]} is not {a} * {b}")
        return tuple(x[:d]) + (a, b) + tuple(x[d + 1:])

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        d = params["dim"]
        for a, b in zip(x[:d], out[:d]):
            ctx.p.equal(a, b)
        for a, b in zip(x[d + 1:], out[d + 2:]):
            ctx.p.equal(a, b)
        ctx.p.product(x[d], [out[d], out[d + 1]])

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        return f"{args[0]}.unflatten({params['dim']}, {fmt(tuple(params['sizes']))})"


class Permute(Op):
    """`x.transpose(d0, d1)` (name "transpose", params dim0/dim1) or `x.permute(*dims)` (name "permute")."""

    category = "layout"

    def __init__(self, name: str) -> None:
        self.name = name

    def rank_options(self, r0):
        return (r0,) if r0 in ALL_RANKS and r0 >= 2 else ()

    def _perm(self, params, rank):
        if self.name == "transpose":
            a, b = norm_dim(params["dim0"], rank), norm_dim(params["dim1"], rank)
            perm = list(range(rank))
            perm[a], perm[b] = perm[b], perm[a]
            return perm
        perm = [norm_dim(d, rank) for d in params["dims"]]
        if sorted(perm) != list(range(rank)):
            raise ShapeError(f"permute dims {params['dims']} are not a permutation of rank {rank}")
        return perm

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        r = in_ranks[0]
        if self.name == "transpose":
            a, b = sorted(rng.sample(range(r), 2))
            return {"dim0": a, "dim1": b}
        perm = list(range(r))
        while perm == sorted(perm):
            rng.shuffle(perm)
        return {"dims": perm}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        return tuple(x[i] for i in self._perm(params, len(x)))

    def constrain(self, ctx, params):
        x = ctx.ins[0]
        for o, i in zip(ctx.out, self._perm(params, len(x))):
            ctx.p.equal(o, x[i])

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        if self.name == "transpose":
            return f"{args[0]}.transpose({params['dim0']}, {params['dim1']})"
        return f"{args[0]}.permute({', '.join(map(str, params['dims']))})"


class Unsqueeze(Op):
    name, category = "unsqueeze", "layout"

    def rank_options(self, r0):
        return (r0 + 1,) if r0 in ALL_RANKS and r0 < MAX_RANK else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"dim": rng.randrange(in_ranks[0] + 1)}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        d = norm_dim(params["dim"], len(x) + 1)
        return tuple(x[:d]) + (1,) + tuple(x[d:])

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        d = params["dim"]
        ctx.p.fix(out[d], 1)
        for a, b in zip(x, out[:d] + out[d + 1:]):
            ctx.p.equal(a, b)

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        return f"{args[0]}.unsqueeze({params['dim']})"


class Squeeze(Op):
    """`x.squeeze(dim)`: drops dim `dim` of size 1 (synthesis fixes it to 1; an imported dim of another size
    is kept, as torch does)."""

    name, category = "squeeze", "layout"

    def rank_options(self, r0):
        return (r0 - 1,) if r0 in ALL_RANKS and r0 >= 2 else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"dim": rng.randrange(in_ranks[0])}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        d = norm_dim(params["dim"], len(x))
        return tuple(x) if x[d] != 1 else tuple(x[:d]) + tuple(x[d + 1:])

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        d = params["dim"]
        ctx.p.fix(x[d], 1)
        for a, b in zip(x[:d] + x[d + 1:], out):
            ctx.p.equal(a, b)

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        return f"{args[0]}.squeeze({params['dim']})"


def _cuts(rng, fine: int, groups: int) -> list[int]:
    """Sizes of `groups` consecutive non-empty groups of `fine` dims, at random."""
    cuts = sorted(rng.sample(range(1, fine), groups - 1))
    return [b - a for a, b in zip([0] + cuts, cuts + [fine])]


def _grouped(ctx, dims: list[int], fine: list[int], sizes: list[int]) -> None:
    """dims[i] = product of the i-th group of the `fine` dims (`sizes` long each)."""
    start = 0
    for d, k in zip(dims, sizes):
        if k == 1:
            ctx.p.equal(d, fine[start])
        else:
            ctx.p.product(d, fine[start:start + k])
        start += k


class Reshape(Op):
    """`torch.reshape(x, sizes)` (`sizes`: a tuple of ints, no -1), any rank to any rank.

    Synthesis draws it as a regrouping: `fine` dims whose consecutive groups multiply to the input's dims
    (`in_groups`: group sizes) and, grouped another way (`out_groups`), to the output's; the solved output
    shape is `sizes`. Both sides are products of the same factors, which the solvers handle as they do
    flatten and unflatten."""

    name, category = "reshape", "layout"

    def rank_options(self, r0):
        return tuple(ALL_RANKS) if r0 in ALL_RANKS else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        r = in_ranks[0]
        # same rank: one more fine dim, so the reshape moves a factor instead of keeping the shape
        fine = max(r, out_rank) + (r == out_rank)
        return {"fine": fine, "in_groups": _cuts(rng, fine, r), "out_groups": _cuts(rng, fine, out_rank)}

    def size_params(self, in_shapes, out_shape, params):
        return {"sizes": list(out_shape)}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        shape = tuple(int(s) for s in params["sizes"])
        if any(s < 1 for s in shape) or math.prod(shape) != math.prod(x):
            raise ShapeError(f"reshape {tuple(x)} -> {shape}: element counts differ (or a size is not >= 1)")
        return shape

    def constrain(self, ctx, params):
        hi = max(ctx.p.hi[ctx.p.find(d)] for d in ctx.ins[0])
        fine = [ctx.aux(1, hi) for _ in range(params["fine"])]
        _grouped(ctx, ctx.ins[0], fine, params["in_groups"])
        _grouped(ctx, ctx.out, fine, params["out_groups"])

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        return f"torch.reshape({args[0]}, {fmt(tuple(params['sizes']))})"


class Narrow(Op):
    """`torch.narrow(x, dim, start, length)`: `length` elements of dim `dim` from `start` (a view)."""

    name, category = "narrow", "layout"

    def rank_options(self, r0):
        return (r0,) if r0 in ALL_RANKS else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"dim": rng.randrange(in_ranks[0]), "start": rng.choice([0, 1])}

    def size_params(self, in_shapes, out_shape, params):
        return {"length": out_shape[norm_dim(params["dim"], len(out_shape))]}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        d = norm_dim(params["dim"], len(x))
        start, length = params["start"], params["length"]
        if start < 0 or length < 1 or start + length > x[d]:
            raise ShapeError(f"narrow of dim {d} (size {x[d]}) at {start}, length {length}: out of range")
        return tuple(length if i == d else s for i, s in enumerate(x))

    def constrain(self, ctx, params):
        x, out = ctx.ins[0], ctx.out
        d = params["dim"]
        for i, (a, b) in enumerate(zip(x, out)):
            if i == d:
                ctx.p.linear({b: 1, a: -1}, params["start"], "<=")
            else:
                ctx.p.equal(a, b)

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        return f"torch.narrow({args[0]}, {params['dim']}, {params['start']}, {params['length']})"


class Expand(Op):
    """`x.expand(*sizes)`: size-1 dims repeated (a stride-0 view), same rank. Synthesis draws which dims
    are broadcast (`broadcast`: one bool per dim; those are fixed to 1 in the input)."""

    name, category = "expand", "layout"

    def rank_options(self, r0):
        return (r0,) if r0 in ALL_RANKS else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        r = in_ranks[0]
        mask = [False] * r
        mask[rng.randrange(r)] = True
        return {"broadcast": mask}

    def size_params(self, in_shapes, out_shape, params):
        return {"sizes": list(out_shape)}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        shape = tuple(int(s) for s in params["sizes"])
        lead = len(shape) - len(x)
        if lead < 0 or any(a != 1 and a != b for a, b in zip(x, shape[lead:])):
            raise ShapeError(f"expand {tuple(x)} -> {shape}: only size-1 dims (or new leading dims) expand")
        return shape

    def constrain(self, ctx, params):
        for a, b, one in zip(ctx.ins[0], ctx.out, params["broadcast"]):
            if one:
                ctx.p.fix(a, 1)
            else:
                ctx.p.equal(a, b)

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        return f"{args[0]}.expand({', '.join(str(int(s)) for s in params['sizes'])})"


class Flip(Op):
    """`torch.flip(x, dims)`: the elements of each dim in `dims` (a list of ints) in reverse order; same
    shape. Unlike the views above it is a copy (torch has no negative strides), so the teacher writes it as
    a kernel."""

    name, category = "flip", "layout"

    def rank_options(self, r0):
        return (r0,) if r0 in ALL_RANKS else ()

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"dims": [rng.randrange(in_ranks[0])]}

    def infer(self, in_shapes, params):
        (x,) = in_shapes
        dims = [norm_dim(d, len(x)) for d in params["dims"]]
        if not dims or len(set(dims)) != len(dims):
            raise ShapeError(f"flip dims {params['dims']} are empty or repeat a dim")
        return tuple(x)

    def constrain(self, ctx, params):
        for a, b in zip(ctx.ins[0], ctx.out):
            ctx.p.equal(a, b)

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        return f"torch.flip({args[0]}, {fmt(tuple(params['dims']))})"


class Cat(Op):
    """`torch.cat([a, b], dim)`: equal ranks, equal sizes except along `dim`."""

    name, arity, category = "cat", 2, "layout"

    def rank_options(self, r0):
        return (r0,) if r0 in ALL_RANKS else ()

    def side_ranks(self, r0, slot):
        return (r0,)

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"dim": rng.randrange(in_ranks[0])}

    def infer(self, in_shapes, params):
        a, b = in_shapes
        d = norm_dim(params["dim"], len(a))
        if len(a) != len(b) or any(x != y for i, (x, y) in enumerate(zip(a, b)) if i != d):
            raise ShapeError(f"cat along {d}: shapes {tuple(a)} and {tuple(b)} differ elsewhere")
        return tuple(a[i] + b[i] if i == d else a[i] for i in range(len(a)))

    def constrain(self, ctx, params):
        a, b = ctx.ins
        d = params["dim"]
        for i, (x, y, o) in enumerate(zip(a, b, ctx.out)):
            if i == d:
                ctx.p.linear({o: 1, x: -1, y: -1})
            else:
                ctx.p.equal(x, y)
                ctx.p.equal(x, o)
        ctx.flops(1, [ctx.numel_out])

    def forward_expr(self, args, params, attr):
        return f"torch.cat([{args[0]}, {args[1]}], dim={params['dim']})"


class Stack(Op):
    """`torch.stack([a, b], dim)`: equal shapes, a new dim of size 2."""

    name, arity, category = "stack", 2, "layout"

    def rank_options(self, r0):
        return (r0 + 1,) if r0 in ALL_RANKS and r0 < MAX_RANK else ()

    def side_ranks(self, r0, slot):
        return (r0,)

    def sample_params(self, rng, in_ranks, out_rank, safe, fresh=()):
        return {"dim": rng.randrange(in_ranks[0] + 1)}

    def infer(self, in_shapes, params):
        a, b = in_shapes
        if tuple(a) != tuple(b):
            raise ShapeError(f"stack: shapes {tuple(a)} and {tuple(b)} differ")
        d = norm_dim(params["dim"], len(a) + 1)
        return tuple(a[:d]) + (2,) + tuple(a[d:])

    def constrain(self, ctx, params):
        a, b = ctx.ins
        d = params["dim"]
        ctx.p.fix(ctx.out[d], 2)
        for x, y, o in zip(a, b, ctx.out[:d] + ctx.out[d + 1:]):
            ctx.p.equal(x, y)
            ctx.p.equal(x, o)
        ctx.flops(1, [ctx.numel_out])

    def forward_expr(self, args, params, attr):
        return f"torch.stack([{args[0]}, {args[1]}], dim={params['dim']})"


for _op in [Flatten(), Unflatten(), Permute("transpose"), Permute("permute"), Unsqueeze(), Cat(), Stack(),
            Squeeze(), Reshape(), Narrow(), Expand(), Flip()]:
    register(_op)
