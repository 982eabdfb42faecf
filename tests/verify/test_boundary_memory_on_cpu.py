"""Memory-aware scheduling (verify/memory.py): jobs reserve what their task needs, big ones run with fewer
neighbours or alone, in the order they asked, and only a task that does not fit alone is too large."""

import threading
import time

import pytest

from verify.memory import MemoryBudget, TaskTooLarge, need_bytes
from verify.task import TaskError

GIB = 2**30


def test_need_follows_the_footprint_and_never_goes_below_a_share():
    assert need_bytes(0, 4 * GIB) == 4 * GIB
    assert need_bytes(10 * GIB, 4 * GIB) > 20 * GIB


def test_a_big_job_waits_for_room_and_small_ones_queue_behind_it():
    budget = MemoryBudget(8 * GIB, "test")
    order, small_in = [], threading.Event()

    def job(name, nbytes, hold_s, started=None):
        with budget.reserve(nbytes):
            order.append(name)
            if started:
                started.set()
            time.sleep(hold_s)

    first = threading.Thread(target=job, args=("small-1", 4 * GIB, 0.5, small_in))
    first.start()
    assert small_in.wait(5)
    big = threading.Thread(target=job, args=("big", 8 * GIB, 0.1))
    big.start()
    time.sleep(0.1)
    late = threading.Thread(target=job, args=("small-2", 2 * GIB, 0.0))
    late.start()  # it would fit beside small-1, but the big job asked first
    for t in (first, big, late):
        t.join(10)
    assert order == ["small-1", "big", "small-2"]
    assert budget.used == 0


def test_a_reservation_beyond_the_device_means_alone():
    budget = MemoryBudget(8 * GIB, "GPU (cuda:0)")
    with budget.reserve(100 * GIB) as held:
        assert held == 8 * GIB and budget.used == 8 * GIB


HUGE_TASK = """
import torch
import torch.nn as nn

class Model(nn.Module):
    def forward(self, x):
        return x + torch.ones(2**44, dtype=torch.uint8).sum()  # 16 TiB

def get_inputs():
    return [torch.randn(8)]

def get_init_inputs():
    return []
"""


def test_only_a_task_that_does_not_run_alone_is_too_large():
    """Its reference runs out of memory in a worker's share, then alone: TaskTooLarge (a TaskError, so
    callers that handle a task that does not run handle it too), with a message that says so."""
    from verify import Task, Verifier, VerifyConfig
    from verify.fixtures import fixture_candidate

    with Verifier(VerifyConfig(timeout_s=60, gpu_compile_check=False), workers=1, cache=False) as v:
        with pytest.raises(TaskTooLarge, match="even with the host to itself") as e:
            v.verify(Task.from_code(HUGE_TASK, id="huge"), fixture_candidate("gelu_scale"))
    assert isinstance(e.value, TaskError)
