"""Verdict cache keyed by (task, program, config): in memory, optionally mirrored to a JSONL file.

The file is append-only, so a crash loses at most the line being written, and a later run with the
same `cache_path` starts warm.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

from verify.verdict import Verdict


class VerdictCache:
    def __init__(self, path: str | Path | None = None):
        self._mem: dict[str, Verdict] = {}
        self._lock = threading.Lock()
        self._path = Path(path) if path else None
        if self._path is not None and self._path.is_file():
            for line in self._path.read_text().splitlines():
                try:
                    row = json.loads(line)
                    self._mem[row["key"]] = Verdict.from_dict(row["verdict"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line from a crash

    def get(self, key: str) -> Verdict | None:
        with self._lock:
            return self._mem.get(key)

    def put(self, key: str, verdict: Verdict) -> None:
        with self._lock:
            self._mem[key] = verdict
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with self._path.open("a") as f:
                    f.write(json.dumps({"key": key, "verdict": verdict.to_dict()}) + "\n")

    def __len__(self) -> int:
        return len(self._mem)
