"""Writing a dataset: task files with metadata sidecars, a manifest, and veRL parquet rows.

Layout of an output folder:

    tasks/l<level>/<id>.py      KernelBench-form program (verify.task.Task.from_file reads it)
    tasks/l<level>/<id>.json    its metadata (id, source, level, ops, dtype, hash, index, ...) and the
                                operator graph (`synth.ir.Graph.from_dict(task.meta["graph"])`)
    manifest.jsonl              one line per program: metadata, path, edges, solver facts
    <split>.parquet             veRL rows: data_source, prompt, ability, reward_model, extra_info
    summary.json                counts, dedup, wall time and sampling statistics of the run
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from synth.generate import Record
from synth.prompts import PromptTemplate

MANIFEST = "manifest.jsonl"


def split_file(split: str) -> str:
    """Name of a split's veRL parquet (`split=train` or `split=heldout`); rl's configs read it through this.

    >>> split_file("heldout")
    'heldout.parquet'
    """
    return f"{split}.parquet"


def task_meta(record: Record, split: str) -> dict:
    return {"id": record.id, "source": "synth", "level": record.level, "ops": record.ops, "dtype": "float32",
            "hash": record.hash, "seed": record.seed, "index": record.index, "split": split}


def write_task(out: Path, record: Record, split: str) -> dict:
    """Write the task file and sidecar; returns the manifest entry."""
    folder = out / "tasks" / f"l{record.level}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.id}.py"
    path.write_text(record.code)
    meta = task_meta(record, split)
    path.with_suffix(".json").write_text(json.dumps(dict(meta, graph=record.graph)))
    entry = dict(meta, path=str(path.relative_to(out)), edges=record.edges, outputs=record.outputs,
                 elements=record.elements, flops=record.flops, ran_cpu=record.ran_cpu,
                 attempts=record.attempts, mode=record.mode)
    return entry


def read_manifest(path: str | Path) -> list[dict]:
    """Entries of a manifest file, or of `<folder>/manifest.jsonl` when given a folder."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"no manifest at {path} (pass an output folder of `python -m synth` or its manifest)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def verl_row(entry: dict, code: str, prompt: PromptTemplate, data_source: str) -> dict:
    """One veRL dataset row (DESIGN.md section 3)."""
    return {
        "data_source": data_source,
        "prompt": prompt.messages(code),
        "ability": "triton",
        "reward_model": {"style": "rule", "ground_truth": code},
        "extra_info": {"task_id": entry["id"], "level": entry["level"], "ops": list(entry["ops"]),
                       "index": entry["index"], "split": entry["split"], "hash": entry["hash"]},
    }


def write_parquet(out: Path, entries: Iterable[dict], split: str, prompt: PromptTemplate,
                  data_source: str) -> Path:
    import pandas as pd

    rows = [verl_row(e, (out / e["path"]).read_text(), prompt, data_source) for e in entries]
    path = out / split_file(split)
    pd.DataFrame(rows, columns=["data_source", "prompt", "ability", "reward_model", "extra_info"]).to_parquet(
        path, index=False)
    return path
