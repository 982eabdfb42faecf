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


def compare(out, ref, atol: dict, rtol: dict, floors: list | None = None, floor_factor: float = 0.0,
            truths: list | None = None) -> Comparison:
    """`floors[i]`: output i's reference rounding error (see error_floors); `floor_factor` times it is allowed
    on top of atol + rtol * |reference|. `truths[i]` (see unstable_truths): output i's float64 reference
    where the float32 one is itself unreliable; a value outside the tolerance still passes when it is within
    atol + rtol * |truth| of the truth plus the float32 reference's own distance to it (as accurate as the
    reference)."""
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
                              "where the reference is finite (an unwritten output, a read past the end of an "
                              "input, or overflow?)")
        key = str(r.dtype).replace("torch.", "")
        a, rt = float(atol.get(key, 1e-4)), float(rtol.get(key, 1e-4))
        floor = floor_factor * float(floors[i]) if floors and i < len(floors) else 0.0
        o64, r64 = o.double(), r.double()
        finite = torch.isfinite(r64)
        diff = (o64 - r64).abs().where(finite, torch.zeros_like(o64))
        rel = diff / r64.abs().clamp_min(1e-12)
        max_abs = float(diff.max()) if diff.numel() else 0.0
        max_rel = float(rel.where(r64.abs() > a, torch.zeros_like(rel)).max()) if rel.numel() else 0.0
        worst.max_abs, worst.max_rel = max(worst.max_abs, max_abs), max(worst.max_rel, max_rel)
        over = diff > a + floor + rt * r64.abs()
        truth = truths[i] if truths and i < len(truths) else None
        if over.any() and truth is not None and tuple(truth.shape) == tuple(r.shape):
            t = truth.to(o.device, torch.float64)
            as_good = (o64 - t).abs() <= a + rt * t.abs() + (r64 - t).abs()
            over &= ~(as_good & torch.isfinite(t))
        if over.any():
            slack = f" + {floor:.3g} (the reference's float32 rounding error x{floor_factor:g})" if floor else ""
            return Comparison(False, "wrong_values", f"{where}{int(over.sum())} of {r.numel()} values outside "
                              f"atol={a:g}{slack}, rtol={rt:g} (max abs err {max_abs:.3g})", max_abs, max_rel)
    return worst


def error_floors(out32, out64) -> list[float]:
    """Per output: the largest |float32 reference - float64 reference|, the rounding error any float32
    program of this computation has to live with. 0 where the output is not float32, or where the two
    disagree by more than 1e-3 of the output's scale (not rounding: randomness or an unstable op; the
    plain tolerances apply there).

    >>> import torch
    >>> x = torch.randn(64, 4096, dtype=torch.float64)
    >>> f = error_floors(x.float().sum(1), x.sum(1))[0]
    >>> 0 < f < 1e-4
    True
    >>> error_floors(torch.ones(3), torch.zeros(3, dtype=torch.float64))
    [0.0]
    """
    floors = []
    for a, b in zip(flatten(out32), flatten(out64)):
        err, scale = _rounding(a, b)
        floors.append(err if err <= 1e-3 * max(scale, 1e-30) else 0.0)
    return floors


def unstable_truths(out32, out64) -> list:
    """Per output: the float64 reference (on the CPU) where the float32 one differs from it by more than 1e-3
    of the output's scale (an ill-conditioned computation, e.g. a norm over groups of one element, where
    float32 rounding in the reference is amplified), else None. `compare` accepts a candidate that is as
    close to it as the float32 reference is.

    >>> import torch
    >>> x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> unstable_truths(x.float(), x)
    [None]
    >>> unstable_truths(torch.tensor([1.0, 2.1]), x)[0].tolist()
    [1.0, 2.0]
    """
    truths = []
    for a, b in zip(flatten(out32), flatten(out64)):
        err, scale = _rounding(a, b)
        unstable = err > 1e-3 * max(scale, 1e-30)
        truths.append(b.detach().to("cpu", torch.float64) if unstable else None)
    return truths


def _rounding(a, b) -> tuple[float, float]:
    """(largest |a - b|, largest |b|) over the elements finite in both, for a float32 `a` and its float64
    twin `b`; (0, 0) for anything else."""
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == torch.float32
            and a.shape == b.shape and a.numel()):
        return 0.0, 0.0
    b = b.to(a.device, torch.float64)
    finite = torch.isfinite(b) & torch.isfinite(a)
    if not bool(finite.any()):
        return 0.0, 0.0
    return float((a.double() - b).abs()[finite].max()), float(b.abs()[finite].max())
