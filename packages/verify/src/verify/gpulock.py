"""A cross-process reader-writer lock per device, so timing has the GPU to itself.

Every GPU job (reference runs, correctness trials, compilation warm-ups) holds the lock shared; timing
holds it exclusive, so no other process's kernels time-slice with the ones being timed. A turnstile
file keeps a waiting timer from being starved by a stream of new shared holders. Built on fcntl.flock:
a process that dies releases what it held.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager


class GpuLock:
    def __init__(self, path: str):
        self.path = path
        self.turnstile = path + ".turnstile"

    @staticmethod
    def _take(path: str, mode: int) -> int:
        fd = os.open(path, os.O_CREAT | os.O_RDWR)
        fcntl.flock(fd, mode)
        return fd

    @contextmanager
    def shared(self):
        os.close(self._take(self.turnstile, fcntl.LOCK_EX))  # wait behind any timer already queued
        fd = self._take(self.path, fcntl.LOCK_SH)
        try:
            yield
        finally:
            os.close(fd)

    @contextmanager
    def exclusive(self):
        turn = self._take(self.turnstile, fcntl.LOCK_EX)  # new shared holders now queue behind us
        try:
            fd = self._take(self.path, fcntl.LOCK_EX)  # wait for the current ones to finish
            try:
                yield
            finally:
                os.close(fd)
        finally:
            os.close(turn)
