"""Results of a bench run, one JSON line per finished task, appended and flushed as each finishes.

A crash or Ctrl-C loses at most the task in flight: finished lines are on disk, a half-written last line
(killed mid-write) is ignored, and a rerun skips every task already in the file under the same run key (a
digest of everything that changes a verdict: suite, strategy, generator, verifier config). Rows made under
another key are kept in the file but neither skipped nor reported, so a rerun with `verify.trials=1` never
reuses verdicts made with 5 trials.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class ResultStore:
    def __init__(self, path: str | Path, run_key: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # rows of other keys are ignored; None reads every row (reports, merges)
        self.run_key = run_key

    def _all(self) -> list[dict]:
        if not self.path.is_file():
            return []
        by_id: dict[tuple, dict] = {}
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the run died
            if isinstance(row, dict) and "task_id" in row:
                by_id[(row.get("run_key"), row["task_id"])] = row
        return list(by_id.values())

    def rows(self) -> list[dict]:
        """Every complete row of this run key in file order (a later row for a task replaces an earlier one;
        without a key, the last row of each task whatever its key)."""
        if self.run_key is not None:
            return [r for r in self._all() if r.get("run_key") == self.run_key]
        return list({r["task_id"]: r for r in self._all()}.values())

    def foreign(self) -> int:
        """Rows made under another run key (another verifier config, strategy, ...)."""
        return sum(1 for r in self._all() if self.run_key is not None and r.get("run_key") != self.run_key)

    def done(self) -> set[str]:
        return {r["task_id"] for r in self.rows()}

    def append(self, row: dict) -> None:
        if self.run_key is not None:
            row = {**row, "run_key": self.run_key}
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
