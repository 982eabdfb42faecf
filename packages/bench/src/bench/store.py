"""Results of a bench run, one JSON line per finished task, appended and flushed as each finishes.

A crash or Ctrl-C loses at most the task in flight: finished lines are on disk, a half-written last line
(killed mid-write) is ignored, and a rerun skips every task already in the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class ResultStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def rows(self) -> list[dict]:
        """Every complete row in file order (a later row for the same task replaces an earlier one)."""
        if not self.path.is_file():
            return []
        by_id: dict[str, dict] = {}
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the run died
            if isinstance(row, dict) and "task_id" in row:
                by_id[row["task_id"]] = row
        return list(by_id.values())

    def done(self) -> set[str]:
        return {r["task_id"] for r in self.rows()}

    def append(self, row: dict) -> None:
        text = json.dumps(row, default=str)
        with self.path.open("a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a torn line from a killed run: end it so this row stands alone
                    f.write(b"\n")
            f.write(text.encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
