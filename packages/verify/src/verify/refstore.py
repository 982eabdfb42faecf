"""Reference outputs on disk, one file per task, kept for reuse within a byte budget.

A verifier computes each task's reference outputs once and reuses them for every candidate of that task.
Kept forever, they fill the disk on a long run over many distinct tasks (a teacher export of thousands
of programs, an RL run): 64 Mi-element outputs over six trials are gigabytes per task. The store keeps the
most recently used files up to `budget_bytes` and deletes older ones that no verification is reading; a
task whose file was deleted is simply computed again when it comes back.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ReferenceStore:
    """`with store.use(key, make) as ref:` yields the reference dict of `key` (with its file at ref["path"]),
    calling `make()` to compute it when it is not stored. Thread-safe; one `make` per key at a time."""

    def __init__(self, budget_bytes: float):
        self.budget_bytes = budget_bytes
        self.bytes = 0
        self.computed = 0
        self.evicted = 0
        self._refs: OrderedDict[str, dict] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._users: dict[str, int] = {}
        self._make_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def use(self, key: str, make: Callable[[], dict]) -> Iterator[dict]:
        with self._guard:
            make_lock = self._make_locks.setdefault(key, threading.Lock())
        with make_lock:
            with self._guard:
                ref = self._refs.get(key)
                if ref is not None:
                    self._refs.move_to_end(key)
                    self._users[key] = self._users.get(key, 0) + 1
            if ref is None:
                ref = make()
                size = os.path.getsize(ref["path"]) if os.path.exists(ref["path"]) else 0
                with self._guard:
                    self.computed += 1
                    self._refs[key] = ref
                    self._sizes[key] = size
                    self.bytes += size
                    self._users[key] = self._users.get(key, 0) + 1
        try:
            yield ref
        finally:
            with self._guard:
                self._users[key] -= 1
                self._evict()

    def __len__(self) -> int:
        return len(self._refs)

    def _evict(self) -> None:
        """Drop least recently used files no verification is reading until the store fits its budget
        (called with the guard held)."""
        for key in list(self._refs):
            if self.bytes <= self.budget_bytes:
                return
            if self._users.get(key):
                continue
            ref = self._refs.pop(key)
            self.bytes -= self._sizes.pop(key)
            self._users.pop(key, None)
            self.evicted += 1
            try:
                os.unlink(ref["path"])
            except FileNotFoundError:
                pass
