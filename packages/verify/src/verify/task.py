"""The Task contract: a reference PyTorch program in KernelBench form, plus metadata.

A task's code defines `class Model(nn.Module)`, `get_inputs()` and `get_init_inputs()`. This is the one
definition every package uses (synth writes tasks, search cuts them into fragments, bench reads suites).
"""
from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from verify.pyparse import parse

REQUIRED_NAMES = ("Model", "get_inputs", "get_init_inputs")


class TaskError(ValueError):
    """The task itself is unusable (missing file, not in KernelBench form, does not run)."""


@dataclass(frozen=True)
class Task:
    """A reference program and what we know about it.

    >>> t = Task.from_code("import torch\\nclass Model(torch.nn.Module):\\n    def forward(self, x):\\n"
    ...                    "        return x.relu()\\ndef get_inputs():\\n    return [torch.randn(4)]\\n"
    ...                    "def get_init_inputs():\\n    return []\\n", id="relu")
    >>> t.id, len(t.digest)
    ('relu', 64)
    """

    # the program text (KernelBench form)
    code: str
    # stable identifier, e.g. "fixtures/softmax" or "synth/l2/000123"
    id: str = "task"
    # where the task came from: "fixtures", "kernelbench", "synth", a path...
    source: str = ""
    # level (KernelBench) or difficulty k (synthetic)
    level: int = 0
    # operator names, when known
    ops: tuple[str, ...] = ()
    # dtype of the floating-point inputs ("float32", "float16", "bfloat16")
    dtype: str = "float32"
    # free-form extras (problem_id, structural hash, ...)
    meta: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def digest(self) -> str:
        """sha256 of the code: identifies the program whatever its id."""
        return hashlib.sha256(self.code.encode()).hexdigest()

    @classmethod
    def from_code(cls, code: str, **metadata) -> "Task":
        check_task_code(code, where=metadata.get("id", "<task>"))
        return cls(code=code, **metadata)

    @classmethod
    def from_file(cls, path: str | Path, **metadata) -> "Task":
        """Read a task file. Metadata comes from `<path>.json` beside it if present, then `metadata`."""
        path = Path(path)
        if not path.is_file():
            raise TaskError(f"task file not found: {path} (pass task=PATH to a KernelBench-form .py file)")
        sidecar = path.with_suffix(".json")
        meta = _read_sidecar(sidecar) if sidecar.is_file() else {}
        meta.setdefault("id", path.stem)
        meta.setdefault("source", str(path.parent))
        meta.update(metadata)
        if "ops" in meta:
            if not isinstance(meta["ops"], (list, tuple)):
                raise TaskError(f"{sidecar}: \"ops\" must be a list of operator names, got {meta['ops']!r}")
            meta["ops"] = tuple(meta["ops"])
        known = {f for f in cls.__dataclass_fields__}
        extra = {k: meta.pop(k) for k in list(meta) if k not in known}
        if not isinstance(meta.setdefault("meta", {}), dict):
            raise TaskError(f"{sidecar}: \"meta\" must be an object, got {meta['meta']!r}")
        meta["meta"].update(extra)
        try:
            code = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise TaskError(f"task file {path} cannot be read as text: {e}") from None
        return cls.from_code(code, **meta)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ops"] = list(self.ops)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Task":
        d = dict(d)
        d["ops"] = tuple(d.get("ops", ()))
        return cls(**d)


def _read_sidecar(sidecar: Path) -> dict:
    """The metadata object of a task's .json sidecar; TaskError (naming the file) when it is not one."""
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise TaskError(f"task metadata {sidecar} is not valid JSON ({e}); fix it or delete it") from None
    if not isinstance(meta, dict):
        raise TaskError(f"task metadata {sidecar} must hold a JSON object such as "
                        f"{{\"level\": 1, \"ops\": [\"relu\"]}}, not a {type(meta).__name__}")
    return meta


def check_task_code(code: str, where: str = "<task>") -> None:
    """Raise TaskError unless `code` parses and defines Model, get_inputs and get_init_inputs."""
    try:
        tree = parse(code)
    except SyntaxError as e:
        raise TaskError(f"task {where} does not parse: line {e.lineno}: {e.msg}") from None
    names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    missing = [n for n in REQUIRED_NAMES if n not in names]
    if missing:
        raise TaskError(
            f"task {where} is not in KernelBench form: missing {', '.join(missing)} "
            "(define class Model(nn.Module), get_inputs() and get_init_inputs())"
        )
