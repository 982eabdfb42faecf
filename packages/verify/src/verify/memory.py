"""Memory-aware scheduling: each job reserves the device (or host) memory its task needs.

The reference job measures a task's footprint (peak GPU memory of the reference run on a GPU; weights,
inputs and outputs on the CPU). A candidate job reserves the larger of the worker's default share and
what the task needs (`need_bytes`), and runs with that cap: a big task runs beside fewer neighbours, or
alone, instead of running out of memory in a slice of the device. Reservations are served in order, so a
big one is not starved by a stream of small ones. A reference that runs out of memory in its share runs
again alone; one that runs out of memory even then is `TaskTooLarge` (see Verifier._reference), the only
case where a task is too large: a task whose reference ran is never refused.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from verify.task import TaskError

# what a candidate job holds beyond the reference run's peak: a second model (ModelNew), every trial's
# output kept alive, the poisoned guard bands; plus timing's flush buffer and input copies
NEED_FACTOR = 2.0
NEED_EXTRA = 512 * 2**20


class TaskTooLarge(TaskError):
    """The task needs more memory than the device has, even running alone."""


def need_bytes(footprint: int, share: int) -> int:
    """Bytes a candidate job of a task with this footprint reserves (at least the default `share`).

    >>> need_bytes(2**30, 4 * 2**30) == 4 * 2**30, need_bytes(4 * 2**30, 4 * 2**30) == 8.5 * 2**30
    (True, True)
    """
    return max(share, int(NEED_FACTOR * footprint) + NEED_EXTRA)


class MemoryBudget:
    """`total` bytes of one device, reserved by jobs in the order they ask."""

    def __init__(self, total: int, name: str):
        self.total, self.name, self.used = total, name, 0
        self._cond = threading.Condition()
        self._queue: list[object] = []

    @contextmanager
    def reserve(self, nbytes: int):
        """Hold `nbytes` (capped at the whole budget, which means: alone) while the block runs."""
        nbytes = min(nbytes, self.total)
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            self._cond.wait_for(lambda: self._queue[0] is ticket and self.used + nbytes <= self.total)
            self._queue.pop(0)
            self.used += nbytes
            self._cond.notify_all()
        try:
            yield nbytes
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()
