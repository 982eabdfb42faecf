"""What the teacher lowers, and the documented reason for every operator it does not lower.

Every operator in the synth registry has a lowering today, so `UNSUPPORTED` is empty; an operator added
to the registry without a lowering raises `Unsupported` with the generic reason until it gets a row here
(why it cannot be lowered) or a lowering.
"""
from __future__ import annotations


class Unsupported(Exception):
    """The graph holds operator `op` that the teacher cannot lower; `reason` says why."""

    def __init__(self, op: str, reason: str) -> None:
        super().__init__(f"teacher cannot lower {op!r}: {reason}")
        self.op, self.reason = op, reason


# operator name -> why the teacher raises Unsupported for it
UNSUPPORTED: dict[str, str] = {}


def reason(op: str) -> str:
    """Why `op` is unsupported (a generic reason for operators registered after this table)."""
    return UNSUPPORTED.get(op, "no teacher lowering is registered for this operator")
