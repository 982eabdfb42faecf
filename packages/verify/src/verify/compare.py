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
    """`floors[i]`: output i's reference rounding error as `(a, b)`, element j's being a + b * |reference_j|
    (see error_floors); `floor_factor` times it is allowed on top of atol + rtol * |reference_j|, so the slack
    of every element follows its own magnitude. `truths[i]` (see unstable_truths): output i's float64
    reference where the float32 one is itself unreliable; a value outside the tolerance still passes when
    it is within atol + rtol * |truth| of the truth plus the float32 reference's own distance to it (as
    accurate as the reference)."""
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
            return Comparison(False, "shape_mismatch",
                              f"{where}returned {type(o).__name__}, expected a tensor")
        if tuple(o.shape) != tuple(r.shape):
            return Comparison(False, "shape_mismatch",
                              f"{where}shape {tuple(o.shape)}, expected {tuple(r.shape)}")
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
            return Comparison(False, "nan_or_inf",
                              f"{where}{int(bad.sum())} of {r.numel()} values are NaN/Inf "
                              "where the reference is finite (an unwritten output, a read past the end of an "
                              "input, or overflow?)")
        key = str(r.dtype).replace("torch.", "")
        a, rt = float(atol.get(key, 1e-4)), float(rtol.get(key, 1e-4))
        floor_abs, floor_rel = _floor_terms(floors[i] if floors and i < len(floors) else None, floor_factor)
        o64, r64 = o.double(), r.double()
        finite = torch.isfinite(r64)
        # atol scaled down with an output whose values are all small (softmax probabilities): an absolute
        # 1e-4 on values of 1e-3 would pass fp16 arithmetic; outputs of magnitude 1 and more keep it
        a *= _magnitude(r64, finite)
        diff = (o64 - r64).abs().where(finite, torch.zeros_like(o64))
        rel = diff / r64.abs().clamp_min(1e-12)
        max_abs = float(diff.max()) if diff.numel() else 0.0
        max_rel = float(rel.where(r64.abs() > a, torch.zeros_like(rel)).max()) if rel.numel() else 0.0
        worst.max_abs, worst.max_rel = max(worst.max_abs, max_abs), max(worst.max_rel, max_rel)
        over = diff > a + floor_abs + (rt + floor_rel) * r64.abs()
        truth = truths[i] if truths and i < len(truths) else None
        if over.any() and truth is not None and tuple(truth.shape) == tuple(r.shape):
            t = truth.to(o.device, torch.float64)
            as_good = (o64 - t).abs() <= a + rt * t.abs() + (r64 - t).abs()
            over &= ~(as_good & torch.isfinite(t))
        if over.any():
            slack = (f" + {floor_abs:.3g} + {floor_rel:.3g}*|ref| (the reference's float32 rounding error "
                     f"x{floor_factor:g})") if floor_abs or floor_rel else ""
            return Comparison(False, "wrong_values",
                              f"{where}{int(over.sum())} of {r.numel()} values outside "
                              f"atol={a:g}{slack}, rtol={rt:g} (max abs err {max_abs:.3g})", max_abs, max_rel)
    return worst


def _magnitude(r64: torch.Tensor, finite: torch.Tensor) -> float:
    """min(1, the largest finite |reference| value), at least 1e-3: the scale atol applies at.

    >>> _magnitude(torch.tensor([1e-3, -2e-3], dtype=torch.float64), torch.tensor([True, True]))
    0.002
    >>> _magnitude(torch.tensor([5.0, float("inf")], dtype=torch.float64), torch.tensor([True, False]))
    1.0
    """
    if not bool(finite.any()):
        return 1.0
    return min(1.0, max(1e-3, float(r64.abs().where(finite, torch.zeros_like(r64)).max())))


def _floor_terms(floor, factor: float) -> tuple[float, float]:
    """(absolute, relative) slack from one output's floor: an (a, b) pair, or a plain number (absolute only,
    as a worker that could not measure the floor passes 0.0)."""
    if floor is None or not factor:
        return 0.0, 0.0
    if isinstance(floor, (tuple, list)):
        return factor * float(floor[0]), factor * float(floor[1])
    return factor * float(floor), 0.0


def error_floors(out32, out64) -> list[tuple[float, float]]:
    """Per output: the float32 reference's rounding error as a line over magnitude, `(a, b)` with
    |float32 reference_j - float64 reference_j| <= a + b * |float64 reference_j| for every element j. `b` is
    the largest relative error of the larger half of the elements, `a` what the others need beyond it: an
    elementwise op (error proportional to each value) gets a ~ 0, so its small values keep a tight slack;
    a long reduction (error about the same everywhere) gets its largest error in `a`. (0, 0) where the
    output is not float32, or where the two disagree by more than 1e-3 of the output's scale (not rounding:
    randomness or an unstable op; the plain tolerances apply there).

    >>> import torch
    >>> x = torch.randn(64, 4096, dtype=torch.float64)
    >>> a, b = error_floors(x.float().sum(1), x.sum(1))[0]
    >>> 0 < a < 1e-4
    True
    >>> y = torch.randn(4096, dtype=torch.float64).mul(8).exp()
    >>> a, b = error_floors(y.float(), y)[0]
    >>> a < 1e-6 * float(y.max()) and 0 < b < 1e-7
    True
    >>> error_floors(torch.ones(3), torch.zeros(3, dtype=torch.float64))
    [(0.0, 0.0)]
    """
    floors = []
    for a, b in zip(flatten(out32), flatten(out64)):
        err, scale = _rounding(a, b)
        floors.append(_error_line(a, b) if 0 < err <= 1e-3 * max(scale, 1e-30) else (0.0, 0.0))
    return floors


def _error_line(a32: torch.Tensor, b64: torch.Tensor) -> tuple[float, float]:
    b = b64.to(a32.device, torch.float64)
    finite = torch.isfinite(b) & torch.isfinite(a32)
    err, mag = (a32.double() - b).abs()[finite], b.abs()[finite]
    positive = mag[mag > 0]
    large = mag >= positive.median() if positive.numel() else torch.zeros_like(mag, dtype=torch.bool)
    rel = float((err[large] / mag[large]).max()) if bool(large.any()) else 0.0
    return float((err - rel * mag).clamp_min(0).max()), rel


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


def state_mismatch(mine: dict, ref_before: dict, ref_after: dict, atol: dict, rtol: dict) -> str | None:
    """Why the candidate's buffers do not hold the state the reference's forwards left (None when they do).

    Every buffer the reference changed over the trials (running statistics, step counters) must be found,
    with the same values, among the candidate's buffers of the same shape and dtype, whatever their names
    or order: the state is compared by role, so renaming it does not skip the check. `mine`: the
    candidate's buffers after the same forwards; `ref_before`/`ref_after`: the reference's before and after.

    >>> import torch
    >>> before = {"bn.running_mean": torch.zeros(3)}
    >>> after = {"bn.running_mean": torch.ones(3)}
    >>> state_mismatch({"mean": torch.ones(3)}, before, after, {}, {}) is None
    True
    >>> print(state_mismatch({"mean": torch.zeros(3)}, before, after, {}, {}))  # doctest: +ELLIPSIS
    the reference's forward updates buffer 'bn.running_mean' ...
    """
    free = list(mine.items())
    for name, after in ref_after.items():
        before = ref_before.get(name)
        if before is None or _identical(before, after):
            continue
        peers = [(n, t) for n, t in free if tuple(t.shape) == tuple(after.shape) and t.dtype == after.dtype]
        match = next(((n, t) for n, t in peers if compare(t, after, atol, rtol).ok), None)
        if match is not None:
            free.remove(match)
            continue
        if peers:
            closest = f"; the nearest, {peers[0][0]!r}: {compare(peers[0][1], after, atol, rtol).message}"
        else:
            closest = f"; ModelNew has no buffer of shape {tuple(after.shape)} and dtype {after.dtype}"
        return (f"the reference's forward updates buffer {name!r} (e.g. running statistics of a norm layer) "
                f"and no buffer of ModelNew holds the same values after the trials{closest}. Keep that state "
                "in a registered buffer (register_buffer) and update it as the reference does")
    return None


def _identical(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a.cpu(), b.cpu()))
