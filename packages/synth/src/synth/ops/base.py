"""The operator base class, the registry, and the helpers operator families share.

An operator knows four things about itself:

* ranks: which input ranks it accepts and which output ranks it can make (`rank_options`, `side_ranks`);
* parameters: how to sample its structural parameters (`sample_params`) and which size parameters
  follow from the shapes once they are known (`size_params`);
* shapes: the concrete rule (`infer`) and the same rule as constraints on integer variables
  (`constrain`, used by the CSP solvers), plus its cost in FLOPs and weight elements;
* printing: an optional `nn.Module` for `__init__` (`init_expr`) and the forward expression (`forward_expr`).
"""
from __future__ import annotations

import difflib
import math
import random
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    from synth.csp import OpContext

MAX_RANK = 5
ALL_RANKS = frozenset(range(1, MAX_RANK + 1))

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """The input shapes or parameters do not fit the operator."""


class UnknownOpError(KeyError):
    """No operator of that name is registered."""

    def __str__(self) -> str:
        return str(self.args[0])


class Op:
    """One operator. Subclasses override the hooks below; instances are registered by `name`.

    `arity` is the number of tensor inputs (None: any number, for an opaque call); `module` says whether
    the operator prints as an `nn.Module` attribute built in `__init__` (its attribute name is
    `<name><index>`). `kind` is "compute" for the operators synthesis samples and "creation" for the ones
    that make inputs and parameters.
    """

    name: str = ""
    arity: int | None = 1
    category: str = ""
    module: bool = False
    kind: str = "compute"
    # input slots that must hold positive values for a finite result (sqrt and log: 0; div's divisor: 1):
    # synthesis always gives them a fresh `input_positive` leaf, so no program's finiteness depends on the
    # values its inputs happen to draw
    positive_slots: frozenset[int] = frozenset()
    # the output is an index tensor (int64) no other registry operator reads: synthesis makes it an output
    terminal: bool = False

    # ranks --------------------------------------------------------------------------------------------
    def rank_options(self, r0: int) -> Sequence[int]:
        """Output ranks reachable when input 0 has rank `r0` (empty when `r0` is not accepted)."""
        return (r0,)

    def side_ranks(self, r0: int, slot: int) -> Sequence[int]:
        """Ranks accepted at input `slot` >= 1 when input 0 has rank `r0`."""
        return ()

    def accepts(self, r0: int) -> bool:
        return bool(self.rank_options(r0))

    # parameters ----------------------------------------------------------------------------------------
    def sample_params(self, rng: random.Random, in_ranks: Sequence[int], out_rank: int, safe: bool,
                      fresh: Sequence[bool] = ()) -> dict:
        """Structural parameters (dims, kernel sizes, ...) for the chosen ranks. `safe` asks for
        shape-preserving choices; `fresh[i]` says input i is a new leaf (not a reused tensor)."""
        return {}

    def size_params(self, in_shapes: Sequence[Shape], out_shape: Shape, params: dict) -> dict:
        """Size parameters (out_features, channels, ...) that follow from solved shapes."""
        return {}

    # shapes -------------------------------------------------------------------------------------------
    def infer(self, in_shapes: Sequence[Shape], params: dict) -> Shape:
        """Output shape for concrete input shapes; raises ShapeError when they do not fit."""
        return tuple(in_shapes[0])

    def constrain(self, ctx: "OpContext", params: dict) -> None:
        """Add this operator's shape rules and costs to the CSP (see `synth.csp.OpContext`)."""
        for a, b in zip(ctx.ins[0], ctx.out):
            ctx.p.equal(a, b)
        ctx.flops(1, [ctx.numel_out])

    def flops(self, in_shapes: Sequence[Shape], out_shape: Shape, params: dict) -> int:
        """Floating-point operations of one forward call (the same count `constrain` charges)."""
        return numel(out_shape)

    def weight_elements(self, in_shapes: Sequence[Shape], out_shape: Shape, params: dict) -> int:
        return 0

    # printing -----------------------------------------------------------------------------------------
    def init_expr(self, params: dict, size: Callable[[int], str]) -> str | None:
        """The `nn.Module` built in `__init__`, or None. `size(n)` prints a size (a named constant)."""
        return None

    def forward_expr(self, args: Sequence[str], params: dict, attr: str | None) -> str:
        raise NotImplementedError(self.name)

    def __repr__(self) -> str:
        return f"<op {self.name}>"


REGISTRY: dict[str, Op] = {}


def register(op: Op) -> Op:
    """Add `op` to the registry; a duplicate name is a programming error."""
    if not op.name or op.name in REGISTRY:
        raise ValueError(f"operator name {op.name!r} is empty or registered twice")
    REGISTRY[op.name] = op
    return op


def get_op(name: str) -> Op:
    """The operator called `name`; an unknown name raises UnknownOpError listing close matches."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownOpError(
            f"unknown operator {name!r}{hint}; known operators: {', '.join(sorted(REGISTRY))}"
        ) from None


# helpers shared by the families ------------------------------------------------------------------------
def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def broadcast(a: Sequence[int], b: Sequence[int], name: str) -> Shape:
    """PyTorch broadcasting of two shapes; raises ShapeError when they do not broadcast."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            raise ShapeError(f"{name}: shapes {tuple(a)} and {tuple(b)} do not broadcast")
        out.append(db if da == 1 else da)
    return tuple(reversed(out))


def norm_dim(dim: int, rank: int) -> int:
    if not -rank <= dim < rank:
        raise ShapeError(f"dim {dim} out of range for rank {rank}")
    return dim % rank


def expect_rank(shape: Sequence[int], ranks: Sequence[int] | frozenset, name: str) -> None:
    if len(shape) not in ranks:
        raise ShapeError(f"{name} expects rank in {sorted(ranks)}, got shape {tuple(shape)}")


def fmt(value) -> str:
    """Print a parameter value as Python source."""
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, (list, tuple)):
        inner = ", ".join(fmt(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)
