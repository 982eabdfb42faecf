"""A cross-process reader-writer lock per device, so timing has the GPU to itself.

Every GPU job (reference runs, correctness trials, compilation warm-ups, timing's warm-ups and graph
captures) holds the lock shared; timing's measurements hold it exclusive, so no other process's kernels
time-slice with the ones being timed. A turnstile file keeps a waiting timer from being starved by a
stream of new shared holders. Built on fcntl.flock: a process that dies releases what it held.

With a `status_path`, the lock also reports what its process is doing: `wait SINCE WAITED`,
`hold SINCE WAITED`, `work SINCE WAITED` (held, no limit) or `idle 0 WAITED` (wall-clock seconds; WAITED is the total time spent waiting so far).
The sandbox reads it to leave lock waits out of a job's timeout and to stop a job that holds the GPU
too long (a hanging forward would otherwise stall every other worker on the device).
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager


class GpuLock:
    def __init__(self, path: str, status_path: str | None = None):
        self.path = path
        self.turnstile = path + ".turnstile"
        self.status_path = status_path
        self.waited = 0.0

    def _report(self, state: str, since: float) -> None:
        if self.status_path is None:
            return
        tmp = self.status_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{state} {since:.6f} {self.waited:.6f}")
        os.replace(tmp, self.status_path)

    @staticmethod
    def _take(path: str, mode: int) -> int:
        fd = os.open(path, os.O_CREAT | os.O_RDWR)
        fcntl.flock(fd, mode)
        return fd

    @contextmanager
    def _held(self, exclusive: bool, state: str = "hold"):
        start = time.time()
        self._report("wait", start)
        turn = self._take(self.turnstile, fcntl.LOCK_EX)  # queue behind any timer already waiting
        try:
            if not exclusive:
                os.close(turn)  # shared holders pass the turnstile; a timer keeps it, so new ones queue
                turn = None
            fd = self._take(self.path, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except BaseException:
            if turn is not None:
                os.close(turn)
            raise
        got = time.time()
        self.waited += got - start
        self._report(state, got)
        try:
            yield
        finally:
            os.close(fd)
            if turn is not None:
                os.close(turn)
            self._report("idle", 0.0)

    @contextmanager
    def shared(self, bounded: bool = True):
        """Hold the lock shared. `bounded=False` reports `work` instead of `hold`: the sandbox's hold limit
        does not apply (for trusted long steps such as compiling the torch.compile baseline)."""
        with self._held(exclusive=False, state="hold" if bounded else "work"):
            yield

    @contextmanager
    def exclusive(self):
        with self._held(exclusive=True):
            yield


def read_status(path: str) -> tuple[str, float, float]:
    """(state, since, waited) from a status file; ("idle", 0, 0) when there is none yet."""
    try:
        with open(path) as f:
            state, since, waited = f.read().split()
        return state, float(since), float(waited)
    except (OSError, ValueError):
        return "idle", 0.0, 0.0
