"""Compare a candidate's output with the reference's: structure, shape, dtype, NaN/Inf, tolerance.

The arithmetic runs where the output lives (the GPU in GPU mode), in float64; only scalars reach the host.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Comparison:
    ok: bool
    error_class: str | None = None
    message: str = ""
    max_abs: float = 0.0
    max_rel: float = 0.0


def flatten(out) -> list:
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in flatten(o)]
    return [out]


def compare(out, ref, atol: dict, rtol: dict) -> Comparison:
    outs, refs = flatten(out), flatten(ref)
    if len(outs) != len(refs):
        return Comparison(False, "shape_mismatch", f"returned {len(outs)} outputs, expected {len(refs)}")
    worst = Comparison(True)
    for i, (o, r) in enumerate(zip(outs, refs)):
        where = f"output {i}: " if len(refs) > 1 else ""
        if not isinstance(r, torch.Tensor):
            if o != r:
                return Comparison(False, "wrong_values", f"{where}returned {o!r}, expected {r!r}")
            continue
        if not isinstance(o, torch.Tensor):
            return Comparison(False, "shape_mismatch", f"{where}returned {type(o).__name__}, expected a tensor")
        if tuple(o.shape) != tuple(r.shape):
            return Comparison(False, "shape_mismatch", f"{where}shape {tuple(o.shape)}, expected {tuple(r.shape)}")
        if o.dtype != r.dtype:
            return Comparison(False, "dtype_mismatch", f"{where}dtype {o.dtype}, expected {r.dtype}")
        o, r = o.detach(), r.detach().to(o.device)  # on the candidate's device: only scalars come back
        if not (r.is_floating_point() or r.is_complex()):
            if not torch.equal(o, r):
                n = int((o != r).sum())
                return Comparison(False, "wrong_values", f"{where}{n} of {r.numel()} values differ")
            continue
        bad = ~torch.isfinite(o) & torch.isfinite(r)
        if bad.any():
            return Comparison(False, "nan_or_inf", f"{where}{int(bad.sum())} of {r.numel()} values are NaN/Inf "
                              "where the reference is finite (unwritten output or overflow?)")
        key = str(r.dtype).replace("torch.", "")
        a, rt = float(atol.get(key, 1e-4)), float(rtol.get(key, 1e-4))
        o64, r64 = o.double(), r.double()
        finite = torch.isfinite(r64)
        diff = (o64 - r64).abs().where(finite, torch.zeros_like(o64))
        rel = diff / r64.abs().clamp_min(1e-12)
        max_abs = float(diff.max()) if diff.numel() else 0.0
        max_rel = float(rel.where(r64.abs() > a, torch.zeros_like(rel)).max()) if rel.numel() else 0.0
        worst.max_abs, worst.max_rel = max(worst.max_abs, max_abs), max(worst.max_rel, max_rel)
        over = diff > a + rt * r64.abs()
        if over.any():
            return Comparison(False, "wrong_values", f"{where}{int(over.sum())} of {r.numel()} values outside "
                              f"atol={a:g}, rtol={rt:g} (max abs err {max_abs:.3g})", max_abs, max_rel)
    return worst
