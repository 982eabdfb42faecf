"""The opaque operator: one ATen call that stays PyTorch (the search frontend's fallback).

A traced program may use an ATen operator that has no synth operator (an LSTM, a sort, a random op). The
frontend records such a call as an `aten` node instead of failing, so the rest of the program can still be
lowered: the node prints as the very ATen call (`torch.ops.aten.lstm.input(...)`), and the teacher and
the fragment search leave it in PyTorch. It is never sampled by synthesis (its kind is "opaque", not
"compute") and the teacher never lowers it.

Parameters:
* `call`: the overload, e.g. "aten.lstm.input";
* `args`: the call's argument list as Python source, with `{0}`, `{1}`, ... standing for the node's tensor
  inputs in slot order (literal braces are doubled);
* `index`: for a call that returns several tensors, which one this node is (None for a single tensor);
* `out`: the output shape (fixed by the trace; the op has no shape rule of its own).
"""
from __future__ import annotations

from synth.ops.base import Op, ShapeError, register


class Aten(Op):
    """`torch.ops.<call>(<args>)[index]`; any number of tensor inputs (see the module docstring)."""

    name, category, kind = "aten", "opaque", "opaque"
    arity = None

    def rank_options(self, r0):
        return ()

    def infer(self, in_shapes, params):
        if "out" not in params:
            raise ShapeError("aten: an opaque call needs its traced output shape in params['out']")
        return tuple(params["out"])

    def flops(self, in_shapes, out_shape, params):
        return 0

    def forward_expr(self, args, params, attr):
        call = f"torch.ops.{params['call']}({params['args'].format(*args)})"
        index = params.get("index")
        return call if index is None else f"{call}[{index}]"


register(Aten())
