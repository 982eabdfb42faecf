"""Reward decompositions: how a Verdict becomes the numbers RL optimises (config group `reward`).

`Binary` (1 if accepted), `Speedup` (the paper's GRPO baseline: 1 + f(speedup) if accepted, else 0)
and `Decoupled` (DRPO: correctness r_c in {0, 1} and speed r_s = f(speedup), kept apart). Every reward
returns the same keys, so dashboards and losses can read any of them:
score, r_c, r_s, compiled, faithful, correct, speedup.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from verify.verdict import Verdict


def log_speedup(t_ref: float, t_new: float) -> float:
    """log(t_ref / t_new): 0 at parity, positive when the candidate is faster.

    >>> round(log_speedup(2.0, 1.0), 4)
    0.6931
    >>> log_speedup(1.0, 1.0)
    0.0
    """
    return math.log(t_ref / t_new)


def power_speedup(t_ref: float, t_new: float, alpha: float) -> float:
    """(t_ref / t_new) ** alpha - 1: 0 at parity, like log_speedup but with a tunable curvature.

    >>> round(power_speedup(16.0, 1.0, 0.25), 4)
    1.0
    """
    return (t_ref / t_new) ** alpha - 1.0


@dataclass
class SpeedTransform:
    """f(t_ref, t_new): `log` or `power` (s ** alpha - 1)."""

    # "log" or "power"
    kind: str = "log"
    # exponent of the power transform
    alpha: float = 0.25
    # which baseline the speedup is against: "eager" or "compile"
    baseline: str = "eager"

    def __call__(self, v: Verdict) -> float:
        if not v.timed or v.candidate is None:
            return 0.0
        ref = v.compiled if self.baseline == "compile" else v.eager
        if ref is None:
            return 0.0
        if self.kind == "log":
            return log_speedup(ref.median_ms, v.candidate.median_ms)
        if self.kind == "power":
            return power_speedup(ref.median_ms, v.candidate.median_ms, self.alpha)
        raise ValueError(f"unknown speed transform {self.kind!r}; use log or power")


def components(v: Verdict) -> dict:
    """The reward-independent parts every decomposition reports."""
    return {"compiled": float(v.compiled_ok), "faithful": float(v.faithful), "correct": float(v.accepted),
            "speedup": float(v.speedup_eager or 0.0)}


@dataclass
class Binary:
    """1 if the candidate is accepted (correct and faithful), else 0."""

    def __call__(self, v: Verdict) -> dict:
        r_c = float(v.accepted)
        return {"score": r_c, "r_c": r_c, "r_s": 0.0, **components(v)}


@dataclass
class Speedup:
    """GRPO baseline of the paper: 1 + max(f(speedup), floor) if accepted, else 0 (f = log by default).

    The paper gives no formula beyond "1 + f(speedup)"; with f = log a correct kernel slower than 0.37x would
    score below a wrong one (0), so the speed term is clipped at `floor` > -1: every correct program scores at
    least 1 + floor > 0. `r_s` is f itself, unclipped, as in `Decoupled`.

    >>> from verify.verdict import Timing
    >>> v = Verdict(task_id="t")
    >>> for stage in ("format", "compile", "faithful", "correct", "timed"): v.passed(stage)
    >>> v.eager, v.candidate = Timing(1.0, 0, 1.0, 1.0, 5), Timing(10.0, 0, 10.0, 10.0, 5)
    >>> r = Speedup()(v); round(r["score"], 3), round(r["r_s"], 3)
    (0.5, -2.303)
    """

    # speed transform f
    transform: SpeedTransform = None
    # lower bound of the speed term in the score, > -1 so that correct always scores above wrong (0)
    floor: float = -0.5

    def __post_init__(self):
        self.transform = self.transform or SpeedTransform()
        if not -1.0 < self.floor <= 0.0:
            raise ValueError(f"Speedup.floor must be in (-1, 0] so a correct program scores above a wrong "
                             f"one, got {self.floor}")

    def __call__(self, v: Verdict) -> dict:
        r_c = float(v.accepted)
        r_s = self.transform(v) if v.accepted else 0.0
        return {"score": r_c * (1.0 + max(r_s, self.floor)), "r_c": r_c, "r_s": r_s, **components(v)}


@dataclass
class Decoupled:
    """DRPO: r_c in {0,1} and r_s = f(speedup) kept apart; `score` is r_c (the loss reads r_s itself)."""

    # speed transform f
    transform: SpeedTransform = None

    def __post_init__(self):
        self.transform = self.transform or SpeedTransform()

    def __call__(self, v: Verdict) -> dict:
        r_c = float(v.accepted)
        return {"score": r_c, "r_c": r_c, "r_s": self.transform(v) if v.accepted else 0.0, **components(v)}
