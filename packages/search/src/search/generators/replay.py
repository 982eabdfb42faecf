"""Replay of stored completions, keyed by prompt hash: for tests, GPU runs without a model, and re-scoring.

The file is JSONL; each line is `{"prompt_hash": ..., "completions": [text, ...]}` (lines with the same
hash add up, in file order). `append_replay` writes such lines; `python -m search generator=replay
generator.path=FILE` reads them back. A prompt with no stored completion gets none (`on_miss: empty`,
the fragment search then leaves that fragment in PyTorch) or stops the run (`on_miss: error`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from search.generators.base import Generator, Messages, prompt_hash


class ReplayMiss(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def load_replay(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"replay file not found: {path} (set generator.path to a JSONL of "
            "{{prompt_hash, completions}} lines, e.g. one written by record_to=FILE)"
        )
    table: dict[str, list[str]] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key, texts = row["prompt_hash"], row.get("completions", [row.get("completion")])
        except (json.JSONDecodeError, KeyError) as e:
            raise ValueError(
                f"{path}:{lineno}: not a replay row ({e}); expected "
                '{"prompt_hash": ..., "completions": [...]}'
            ) from None
        table.setdefault(key, []).extend(t for t in texts if t is not None)
    return table


def append_replay(path: str | Path, prompt: Messages, completions: Sequence[str], **extra) -> None:
    """Append one replay row for `prompt` (extra keys, e.g. task_id, are kept for readers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {"prompt_hash": prompt_hash(prompt), "completions": list(completions), **extra}
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


class ReplayGenerator(Generator):
    name = "replay"

    def __init__(self, path: str, on_miss: str = "empty", cycle: bool = False) -> None:
        if on_miss not in ("empty", "error"):
            raise ValueError(f"generator.on_miss must be 'empty' or 'error', got {on_miss!r}")
        self.path, self.on_miss, self.cycle = str(path), on_miss, cycle
        self.table = load_replay(path)
        self.hits = self.misses = 0

    def generate(self, prompts: Sequence[Messages], n: int = 1) -> list[list[str]]:
        out = []
        for messages in prompts:
            stored = self.table.get(prompt_hash(messages), [])
            if not stored:
                self.misses += 1
                if self.on_miss == "error":
                    first = messages[-1]["content"][:120].replace("\n", " ")
                    raise ReplayMiss(
                        f"no completion stored in {self.path} for prompt {prompt_hash(messages)[:12]} "
                        f"({first!r}...); record one or use generator.on_miss=empty"
                    )
                out.append([])
                continue
            self.hits += 1
            out.append([stored[i % len(stored)] for i in range(n)] if self.cycle else stored[:n])
        return out
