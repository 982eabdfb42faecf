"""Which torch ops does a candidate's forward run outside its kernels? And poison its fresh buffers.

A TorchDispatchMode sees every aten op. Ops issued while a Triton kernel runs (the interpreter's own
copies) are not the candidate's and are ignored. With `poison_alloc`, every uninitialised allocation
(`torch.empty` and friends) is filled with NaN before the candidate sees it, so a kernel that leaves
part of its output unwritten, or accumulates into memory it assumes is zero, fails the correctness check.
"""
from __future__ import annotations

from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode

from verify.launches import TRACKER, poison

ALLOC_OPS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})


class TorchAudit(TorchDispatchMode):
    def __init__(self, poison_alloc: bool = True):
        super().__init__()
        self.poison_alloc = poison_alloc
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if TRACKER.in_kernel:
            return out
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if self.poison_alloc and name in ALLOC_OPS:
            poison(out)
        return out

    def compute_ops(self, free: set[str], allowed: set[str]) -> tuple[list[str], list[str]]:
        """(every non-free op seen, those of them not allowed)."""
        seen = sorted(op for op in self.ops if op.rstrip("_") not in free and op not in free)
        return seen, [op for op in seen if op not in allowed and op.rstrip("_") not in allowed]
