"""Metrics on hand-computed examples (the modules' doctests run from packages/conftest.py)."""

import math

import pytest

from bench.metrics import by_level, error_classes, fast_p, geomean_speedup, stage_failures, summarize

# 5 tasks: 3 correct (speedups vs eager 3.0, 1.2, 0.5; vs torch.compile 1.6, 0.8, None), 2 failed
ROWS = [
    {"task_id": "a", "level": 1, "accepted": True, "speedup_eager": 3.0, "speedup_compile": 1.6},
    {"task_id": "b", "level": 1, "accepted": True, "speedup_eager": 1.2, "speedup_compile": 0.8},
    {"task_id": "c", "level": 2, "accepted": True, "speedup_eager": 0.5, "speedup_compile": None},
    {
        "task_id": "d",
        "level": 2,
        "accepted": False,
        "stage": "correct",
        "error_class": "wrong_values",
        "speedup_eager": 9.0,
    },
    {"task_id": "e", "level": 2, "accepted": False, "stage": "format", "error_class": "no_code_block"},
]


def test_hand_computed_example():
    s = summarize(ROWS)
    assert (s["tasks"], s["correct"], s["accuracy"]) == (5, 3, 0.6)
    # fast_p counts over ALL tasks; the wrong task's 9x does not count
    assert [s[f"fast_{p}_eager"] for p in ("0", "1", "1.5", "2")] == [0.6, 0.4, 0.2, 0.2]
    assert [s[f"fast_{p}_compile"] for p in ("0", "1", "1.5", "2")] == [0.6, 0.2, 0.2, 0.0]
    assert s["geomean_speedup_eager"] == pytest.approx((3.0 * 1.2 * 0.5) ** (1 / 3))
    assert s["geomean_speedup_compile"] == pytest.approx(math.sqrt(1.6 * 0.8))
    assert (s["timed_eager"], s["timed_compile"]) == (3, 2)
    assert s["stage_failures"] == {"correct": 1, "format": 1}
    assert s["error_classes"] == {"correct/wrong_values": 1, "format/no_code_block": 1}


def test_per_level_and_edge_cases():
    levels = by_level(ROWS)
    assert levels["L1"]["accuracy"] == 1.0 and levels["L2"]["accuracy"] == pytest.approx(1 / 3)
    assert levels["L1"]["fast_1.5_eager"] == 0.5 and levels["all"]["tasks"] == 5
    assert fast_p([], 1.0) == 0.0 and geomean_speedup([]) is None
    assert fast_p([{"accepted": True, "speedup_eager": 1.0}], 1.0) == 0.0  # "more than p": 1.0x is not fast_1
    assert stage_failures(ROWS[:3]) == {} and error_classes([]) == {}
    with pytest.raises(ValueError, match="baseline"):
        fast_p(ROWS, 1.0, "inductor")
