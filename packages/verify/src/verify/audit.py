"""Which torch ops does a candidate's forward run outside its kernels? And poison its fresh buffers.

A TorchDispatchMode sees every aten op. Ops issued while a Triton kernel runs (the interpreter's own
copies) are not the candidate's and are ignored. With `poison_alloc`, every uninitialised allocation
(`torch.empty` and friends) is filled with NaN before the candidate sees it, so a kernel that leaves
part of its output unwritten, or accumulates into memory it assumes is zero, fails the correctness check.
A contiguous allocation also gets a poisoned guard band behind it (the candidate sees only the requested
elements): `overruns()` counts the guards a kernel wrote into, so an off-by-one mask (`offs <= n`) that
stores one element past the end of an output is caught even where that memory would go unnoticed.
"""
from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from verify.launches import TRACKER, poison

ALLOC_OPS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})
# elements of poisoned guard band behind every contiguous allocation
GUARD = 4096


# guard bands of floating-point buffers hold a NaN with a payload of their own, compared bit for bit: a
# kernel that stores a NaN past the end (computed, or read from an input's NaN tail) still changes them
_GUARD_BITS = {torch.float32: (torch.int32, 0x7FC0D1E5), torch.float64: (torch.int64, 0x7FF80000D1E5D1E5),
               torch.float16: (torch.int16, 0x7E5A), torch.bfloat16: (torch.int16, 0x7FDA)}


def _poison_guard(guard: torch.Tensor) -> None:
    if guard.dtype in _GUARD_BITS:
        int_dtype, bits = _GUARD_BITS[guard.dtype]
        guard.view(int_dtype).fill_(bits)
    else:
        poison(guard)


def _untouched(guard: torch.Tensor) -> bool:
    if guard.dtype in _GUARD_BITS:
        int_dtype, bits = _GUARD_BITS[guard.dtype]
        return bool((guard.view(int_dtype) == bits).all())
    if guard.is_floating_point() or guard.is_complex():
        return bool(torch.isnan(guard).all())
    if guard.dtype == torch.bool:
        return bool(guard.all())
    return bool((guard == torch.iinfo(guard.dtype).min).all())


class TorchAudit(TorchDispatchMode):
    def __init__(self, poison_alloc: bool = True):
        super().__init__()
        self.poison_alloc = poison_alloc
        self.ops: Counter = Counter()
        self.guards: list[torch.Tensor] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if TRACKER.in_kernel:
            return out
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if self.poison_alloc and name in ALLOC_OPS:
            out = self._guarded(out)
            poison(out)
        return out

    def _guarded(self, out: torch.Tensor) -> torch.Tensor:
        """`out`'s shape and dtype, as the front of a longer buffer whose poisoned tail is watched."""
        if not isinstance(out, torch.Tensor) or out.numel() == 0 or not out.is_contiguous():
            return out
        buf = torch.empty(out.numel() + GUARD, dtype=out.dtype, device=out.device)
        _poison_guard(buf[out.numel():])
        self.guards.append(buf[out.numel():])
        return buf[: out.numel()].view(out.shape)

    def overruns(self) -> int:
        """How many allocations had elements written past their end."""
        return sum(not _untouched(g) for g in self.guards)

    def compute_ops(self, free: set[str], allowed: set[str]) -> tuple[list[str], list[str]]:
        """(every non-free op seen, those of them not allowed)."""
        seen = sorted(op for op in self.ops if op.rstrip("_") not in free and op not in free)
        return seen, [op for op in seen if op not in allowed and op.rstrip("_") not in allowed]
