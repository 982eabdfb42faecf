"""Suites of tasks, a config group (`suite=kernelbench|synth_heldout|folder|fixtures`).

- `KernelBenchSuite`: KernelBench levels from a local checkout (`<path>/level1/*.py` or
  `<path>/KernelBench/level1/*.py`, files named `<problem_id>_<name>.py`) or from the parquet layout
  (a file or folder of `.parquet` with columns code, level, name, problem_id). Never downloaded.
- `FolderSuite`: any folder of task files (recursive; `<name>.json` sidecars give id, level, ops, dtype;
  without an id a task is `<suite name>/<relative path>`). The synthetic held-out benchmark that
  packages/synth writes (`tasks/l<level>/<id>.py` + sidecars) is such a folder.
- `FixturesSuite`: the verifier's hand-written fixtures.

Every suite has a `name` and `tasks()`, a list of `verify.task.Task` with unique ids.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from verify.fixtures import fixture_names, fixture_task
from verify.task import Task, TaskError


class Suite:
    name = "suite"

    def __init__(self, limit: int | None = None) -> None:
        # keep only the first `limit` tasks (after sorting), for smoke runs
        self.limit = limit

    def load(self) -> list[Task]:
        raise NotImplementedError

    def tasks(self) -> list[Task]:
        tasks = self.load()
        ids = [t.id for t in tasks]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"suite {self.name} has duplicate task ids: {dupes[:5]}")
        return tasks[: self.limit] if self.limit else tasks


def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} not found at {path}; point suite.path at a local copy (suites are never downloaded)"
    )


class KernelBenchSuite(Suite):
    name = "kernelbench"

    def __init__(
        self,
        path: str,
        levels: list[int] = (1, 2, 3),
        problem_ids: list[int] | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(limit)
        self.path, self.levels = Path(path), [int(x) for x in levels]
        self.problem_ids = set(int(i) for i in problem_ids) if problem_ids else None

    def load(self) -> list[Task]:
        if not self.path.exists():
            raise _missing(self.path, "KernelBench")
        parquet = [self.path] if self.path.suffix == ".parquet" else sorted(self.path.rglob("*.parquet"))
        rows = self._from_parquet(parquet) if parquet else self._from_folder()
        tasks = []
        for level, pid, name, code in sorted(rows, key=lambda r: (r[0], r[1])):
            if level not in self.levels or (self.problem_ids and pid not in self.problem_ids):
                continue
            tid = f"kernelbench/L{level}/{pid}_{name}"
            tasks.append(
                Task.from_code(
                    code, id=tid, source="kernelbench", level=level, meta={"problem_id": pid, "name": name}
                )
            )
        if not tasks:
            raise TaskError(f"no KernelBench task for levels {self.levels} under {self.path}")
        return tasks

    def _from_parquet(self, files: list[Path]) -> list[tuple]:
        import pandas as pd

        rows = []
        for f in files:
            df = pd.read_parquet(f)
            missing = {"code", "level", "name", "problem_id"} - set(df.columns)
            if missing:
                raise ValueError(
                    f"{f} lacks columns {sorted(missing)} (expected code, level, name, problem_id)"
                )
            rows += [(int(r.level), int(r.problem_id), str(r.name), str(r.code)) for r in df.itertuples()]
        return rows

    def _from_folder(self) -> list[tuple]:
        root = self.path / "KernelBench" if (self.path / "KernelBench").is_dir() else self.path
        rows = []
        for level in self.levels:
            folder = root / f"level{level}"
            for f in sorted(folder.glob("*.py")) if folder.is_dir() else []:
                m = re.match(r"(\d+)_(.+)", f.stem)
                pid, name = (int(m.group(1)), m.group(2)) if m else (0, f.stem)
                rows.append((level, pid, name, f.read_text()))
        if not rows:
            raise _missing(root, f"KernelBench level folders level{self.levels}")
        return rows


class FolderSuite(Suite):
    name = "folder"

    def __init__(
        self,
        path: str,
        pattern: str = "*.py",
        source: str | None = None,
        name: str = "folder",
        limit: int | None = None,
    ) -> None:
        super().__init__(limit)
        self.path, self.pattern, self.source, self.name = Path(path), pattern, source, name

    def load(self) -> list[Task]:
        if not self.path.is_dir():
            raise _missing(self.path, "task folder")
        files = sorted(p for p in self.path.rglob(self.pattern) if p.is_file() and not p.name.startswith("_"))
        tasks = []
        for f in files:
            extra = {"source": self.source} if self.source else {}
            sidecar = f.with_suffix(".json")
            if not (sidecar.is_file() and "id" in json.loads(sidecar.read_text())):
                extra["id"] = f"{self.name}/{f.relative_to(self.path).with_suffix('').as_posix()}"
            tasks.append(Task.from_file(f, **extra))
        if not tasks:
            raise TaskError(f"no task files matching {self.pattern} under {self.path}")
        return tasks


class FixturesSuite(Suite):
    name = "fixtures"

    def __init__(self, names: list[str] | None = None, limit: int | None = None) -> None:
        super().__init__(limit)
        self.names = list(names) if names else None

    def load(self) -> list[Task]:
        return [fixture_task(n) for n in (self.names or fixture_names())]
