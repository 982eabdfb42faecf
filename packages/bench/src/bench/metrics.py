"""Suite metrics as pure functions over result rows (dicts with `accepted`, `stage`, `error_class`,
`speedup_eager`, `speedup_compile`, `level`).

- accuracy: correct tasks / all tasks.
- fast_p: share of ALL tasks that are correct and faster than the baseline by more than p (speedup > p).
  fast_0 is the share of correct tasks, as in KernelBench; for p > 0 a task without a measured speedup
  (CPU runs) is not fast.
- geomean speedup: over correct tasks with a measured speedup.
- failures: per-stage counts and (stage, error class) counts of the tasks that were not accepted.

>>> rows = [{"accepted": True, "speedup_eager": 2.0, "speedup_compile": 1.2},
...         {"accepted": True, "speedup_eager": 0.5, "speedup_compile": 0.25},
...         {"accepted": False, "stage": "correct", "error_class": "wrong_values"},
...         {"accepted": False, "stage": "format", "error_class": "no_code_block"}]
>>> accuracy(rows), fast_p(rows, 0), fast_p(rows, 1), fast_p(rows, 1, "compile"), fast_p(rows, 2)
(0.5, 0.5, 0.25, 0.25, 0.0)
>>> geomean_speedup(rows), round(geomean_speedup(rows, "compile"), 4)
(1.0, 0.5477)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

P_VALUES = (0.0, 1.0, 1.5, 2.0)
BASELINES = ("eager", "compile")
# torch.compile(mode="max-autotune-no-cudagraphs") (verify.compile_max_autotune): summarized when measured
EXTRA_BASELINES = ("compile_max",)


def _speedup(row: dict, baseline: str) -> float | None:
    if baseline not in BASELINES + EXTRA_BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES + EXTRA_BASELINES}, got {baseline!r}")
    value = row.get(f"speedup_{baseline}")
    return float(value) if value is not None and math.isfinite(value) and value > 0 else None


def accuracy(rows: Sequence[dict]) -> float:
    """Correct / all (0.0 for no rows).

    >>> accuracy([{"accepted": True}, {"accepted": False}, {"accepted": False}])
    0.3333333333333333
    """
    return sum(bool(r.get("accepted")) for r in rows) / len(rows) if rows else 0.0


def fast_p(rows: Sequence[dict], p: float, baseline: str = "eager") -> float:
    """Share of all tasks that are correct and have speedup > p over `baseline` ("eager" or "compile").

    >>> fast_p([{"accepted": True, "speedup_eager": 1.5}, {"accepted": True, "speedup_eager": None}], 1.0)
    0.5
    >>> fast_p([{"accepted": True, "speedup_eager": 1.5}, {"accepted": True, "speedup_eager": None}], 0)
    1.0
    """
    if not rows:
        return 0.0
    fast = 0
    for r in rows:
        if not r.get("accepted"):
            continue
        s = _speedup(r, baseline)
        if p == 0 or (s is not None and s > p):
            fast += 1
    return fast / len(rows)


def geomean_speedup(rows: Sequence[dict], baseline: str = "eager") -> float | None:
    """Geometric mean speedup over correct tasks with a measured speedup (None if there are none).

    >>> geomean_speedup([{"accepted": True, "speedup_eager": 4.0}, {"accepted": True, "speedup_eager": 1.0},
    ...                  {"accepted": False, "speedup_eager": 100.0}])
    2.0
    """
    logs = [math.log(s) for r in rows if r.get("accepted") and (s := _speedup(r, baseline)) is not None]
    return math.exp(sum(logs) / len(logs)) if logs else None


def stage_failures(rows: Iterable[dict]) -> dict[str, int]:
    """Count of rejected tasks by the stage that rejected them.

    >>> stage_failures([{"accepted": False, "stage": "correct"}, {"accepted": False, "stage": "correct"},
    ...                 {"accepted": True}, {"accepted": False, "stage": None}])
    {'correct': 2, 'none': 1}
    """
    return dict(Counter((r.get("stage") or "none") for r in rows if not r.get("accepted")))


def error_classes(rows: Iterable[dict]) -> dict[str, int]:
    """Count of rejected tasks by `stage/error_class`.

    >>> error_classes([{"accepted": False, "stage": "format", "error_class": "no_code_block"}])
    {'format/no_code_block': 1}
    """
    return dict(
        Counter(
            f"{r.get('stage') or 'none'}/{r.get('error_class') or 'none'}"
            for r in rows
            if not r.get("accepted")
        )
    )


def summarize(rows: Sequence[dict]) -> dict:
    """Every metric for a set of rows, as a flat dict (keys like `fast_1.5_compile`).

    >>> s = summarize([{"accepted": True, "speedup_eager": 3.0, "speedup_compile": 1.6}])
    >>> s["tasks"], s["accuracy"], s["fast_1.5_eager"], s["fast_2_compile"], s["geomean_speedup_compile"]
    (1, 1.0, 1.0, 0.0, 1.6)
    """
    out: dict = {
        "tasks": len(rows),
        "correct": sum(bool(r.get("accepted")) for r in rows),
        "accuracy": accuracy(rows),
    }
    for baseline in BASELINES:
        for p in P_VALUES:
            out[f"fast_{p:g}_{baseline}"] = fast_p(rows, p, baseline)
        out[f"geomean_speedup_{baseline}"] = geomean_speedup(rows, baseline)
        out[f"timed_{baseline}"] = sum(
            1 for r in rows if r.get("accepted") and _speedup(r, baseline) is not None
        )
    # only where some row has it (the keys of a run without stay as they were)
    for baseline in EXTRA_BASELINES:
        if any(r.get(f"speedup_{baseline}") is not None for r in rows):
            for p in P_VALUES:
                out[f"fast_{p:g}_{baseline}"] = fast_p(rows, p, baseline)
            out[f"geomean_speedup_{baseline}"] = geomean_speedup(rows, baseline)
            out[f"timed_{baseline}"] = sum(
                1 for r in rows if r.get("accepted") and _speedup(r, baseline) is not None
            )
    out["stage_failures"] = stage_failures(rows)
    out["error_classes"] = error_classes(rows)
    out["untimed_reasons"] = untimed_reasons(rows)
    return out


def untimed_reasons(rows: Iterable[dict]) -> dict[str, int]:
    """Accepted tasks without a speedup over eager, counted by `speedup_missing_reason`.

    >>> untimed_reasons([{"accepted": True, "speedup_missing_reason": "not timed: verify.timing=false"},
    ...                  {"accepted": True, "speedup_eager": 1.0}, {"accepted": False}])
    {'not timed: verify.timing=false': 1}
    """
    return dict(
        Counter(
            r.get("speedup_missing_reason") or "no reason recorded"
            for r in rows
            if r.get("accepted") and _speedup(r, "eager") is None
        )
    )


def by_level(rows: Sequence[dict]) -> dict[str, dict]:
    """`summarize` per level (key "L<level>") and over all rows (key "all").

    >>> sorted(by_level([{"level": 2, "accepted": True}, {"level": 1, "accepted": False}]))
    ['L1', 'L2', 'all']
    """
    levels = sorted({int(r.get("level") or 0) for r in rows})
    out = {f"L{lv}": summarize([r for r in rows if int(r.get("level") or 0) == lv]) for lv in levels}
    out["all"] = summarize(rows)
    return out
