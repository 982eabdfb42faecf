"""Which inputs each run of a verification uses: one definition for the reference job, the candidate's
worker and the judge, which must agree on what output i is.

>>> from verify.config import VerifyConfig
>>> trial_plan(VerifyConfig(trials=2), [0], input_seed=5)
[(0, 5), (0, 6), (1, 1005)]
>>> timing_seeds(5)
(2005, 2006)
>>> record_trial(VerifyConfig(trials=2))
1
"""

from __future__ import annotations

import secrets

from verify.config import VerifyConfig


def draw_input_seed() -> int:
    """The base seed of one reference's inputs, drawn from the OS's entropy: a candidate cannot precompute
    answers from public defaults (weights keep `verify.seed`; the candidate is given them anyway)."""
    return secrets.randbelow(2**31)


def trial_plan(cfg: VerifyConfig, variants_ok: list[int], input_seed: int) -> list[tuple[int, int]]:
    """(module index, input seed) per correctness trial: module 0 is the task, module i + 1 its shape
    variant variants_ok[i]."""
    plan = [(0, input_seed + t) for t in range(cfg.trials)]
    return plan + [(i + 1, input_seed + 1000 + vi) for i, vi in enumerate(variants_ok)]


def record_trial(cfg: VerifyConfig) -> int:
    """Index in `trial_plan` of the trial whose forward is recorded for the replayed check (verify/record.py):
    the last one on the task's own sizes, so that one-time work of earlier calls (autotuning) is not in it.

    >>> record_trial(VerifyConfig(trials=3))
    2
    """
    return max(cfg.trials - 1, 0)


def timing_seeds(input_seed: int) -> tuple[int, int]:
    """Seeds of timing's inputs: (warm-up, estimates and capture; the timed calls). Fresh values, none
    of the trials', and the timed calls' differ from the warm-up's, so that what is timed is checked on
    inputs the candidate has not answered before."""
    return input_seed + 2000, input_seed + 2001
