"""What the teacher lowers, and the documented reason for every operator it does not lower yet."""
from __future__ import annotations


class Unsupported(Exception):
    """The graph holds operator `op` that the teacher cannot lower; `reason` says why."""

    def __init__(self, op: str, reason: str) -> None:
        super().__init__(f"teacher cannot lower {op!r}: {reason}")
        self.op, self.reason = op, reason


_MATMUL = "matmul-class op: the tiled tl.dot lowering is not in this slice of the teacher"
_CONV = "convolution: an implicit-GEMM kernel (or torch conv + Triton epilogue) is not in this slice"
_POOL = "pooling: the windowed-reduction lowering is not in this slice"
_CHANNEL_NORM = "channel norm (statistics over batch/spatial dims, training mode): not in this slice"

# operator name -> why the teacher raises Unsupported for it
UNSUPPORTED: dict[str, str] = {
    "linear": _MATMUL, "matmul": _MATMUL, "mm": _MATMUL, "bmm": _MATMUL,
    **{f"conv{d}d": _CONV for d in (1, 2, 3)},
    **{f"conv_transpose{d}d": _CONV for d in (1, 2, 3)},
    **{f"{kind}_pool{d}d": _POOL for kind in ("max", "avg", "adaptive_avg") for d in (1, 2, 3)},
    **{f"batch_norm{d}d": _CHANNEL_NORM for d in (1, 2, 3)},
    **{f"instance_norm{d}d": _CHANNEL_NORM for d in (1, 2, 3)},
    "group_norm": _CHANNEL_NORM,
}


def reason(op: str) -> str:
    """Why `op` is unsupported (a generic reason for operators registered after this table)."""
    return UNSUPPORTED.get(op, "no teacher lowering is registered for this operator")
