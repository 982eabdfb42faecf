"""A cross-process reader-writer lock per device, so timing has the GPU to itself.

Every GPU job (reference runs, correctness trials, compilation warm-ups, timing's warm-ups and graph
captures) holds the lock shared; timing's measurements hold it exclusive, so no other process's kernels
time-slice with the ones being timed. A turnstile file keeps a waiting timer from being starved by a
stream of new shared holders. Built on fcntl.flock: a process that dies releases what it held.

With a `status_path`, the lock also reports what its process is doing: `wait SINCE WAITED`,
`hold SINCE WAITED`, `work SINCE WAITED` (held, no limit) or `idle 0 WAITED` (wall-clock seconds;
WAITED is the total time spent waiting so far).
The sandbox reads it to leave lock waits out of a job's timeout and to stop a job that holds the GPU
too long (a hanging forward would otherwise stall every other worker on the device).

One lock per GPU for the whole machine (`machine_lock_path`): every Verifier (each veRL reward worker
builds its own) and anything else that times on a GPU takes the same file, named after the device's
UUID (CUDA_VISIBLE_DEVICES renumbers devices per process; the UUID does not), in a folder every process
of the machine sees (/dev/shm, else the temp folder).
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import time
from contextlib import contextmanager

# the machine's lock folder: memory-backed and shared by every process of the machine
MACHINE_LOCK_DIR = "/dev/shm/drtriton-locks" if os.path.isdir("/dev/shm") else \
    os.path.join(tempfile.gettempdir(), "drtriton-locks")


def machine_lock_path(device_key: str, lock_dir: str | None = None) -> str:
    """The lock file of one device (`device_key`: its UUID, or any name every user of it agrees on),
    created with its turnstile so that a confined worker, which may open but not create files there, can
    take it.

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> machine_lock_path("GPU-1234/x", d) == os.path.join(d, "GPU-1234_x.lock")
    True
    """
    lock_dir = lock_dir or MACHINE_LOCK_DIR
    os.makedirs(lock_dir, mode=0o777, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in device_key)
    path = os.path.join(lock_dir, f"{safe}.lock")
    for p in (path, path + ".turnstile"):
        fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o666)
        os.close(fd)
    return path


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
