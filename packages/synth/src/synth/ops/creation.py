"""Creation operators: the graph's data inputs (`get_inputs`) and learnable parameters (`__init__`).

They take no tensor inputs; their only parameter is `shape`, given when building a graph by hand and
filled from the solved CSP in synthesis.
"""
from __future__ import annotations

from synth.ops.base import ALL_RANKS, Op, register


class Creation(Op):
    """`template` makes the tensor from a printed shape; inputs print in `get_inputs`, parameters in
    `__init__`."""

    arity, kind, category = 0, "creation", "creation"

    def __init__(self, name: str, template: str, is_parameter: bool) -> None:
        self.name, self.template = name, template
        self.module = is_parameter

    def rank_options(self, r0):
        return (r0,) if r0 in ALL_RANKS else ()

    def infer(self, in_shapes, params):
        return tuple(params["shape"])

    def constrain(self, ctx, params):
        return None

    def flops(self, in_shapes, out_shape, params):
        return 0

    def weight_elements(self, in_shapes, out_shape, params):
        return 0

    def make_expr(self, shape: str) -> str:
        """The expression that creates the tensor, for a printed shape like `dim0, 16` (empty: a 0-d tensor,
        e.g. `nn.Parameter(torch.tensor(2.0))` of a traced Model)."""
        return self.template.format(shape=shape or "()")

    def init_expr(self, params, size):
        if not self.module:
            return None
        return self.make_expr(", ".join(size(n) for n in params["shape"]))

    def forward_expr(self, args, params, attr):
        return f"self.{attr}" if self.module else ""


for _op in [
    Creation("input", "torch.randn({shape})", is_parameter=False),
    Creation("input_uniform", "torch.rand({shape})", is_parameter=False),
    # strictly positive data (at least 0.01: torch.rand can return 0), read by sqrt and log in synthesis
    Creation("input_positive", "torch.rand({shape}) + 0.01", is_parameter=False),
    Creation("parameter", "nn.Parameter(torch.randn({shape}))", is_parameter=True),
]:
    register(_op)
