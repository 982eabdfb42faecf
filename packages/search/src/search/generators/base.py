"""The generator interface and the prompt hash that keys stored completions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

# A prompt is a list of chat messages: [{"role": "system"|"user"|"assistant", "content": str}, ...]
Messages = list[dict]


def prompt_hash(messages: Messages) -> str:
    """sha256 of the messages in canonical JSON (roles and contents only, key order fixed).

    >>> prompt_hash([{"role": "user", "content": "hi"}]) == prompt_hash([{"content": "hi", "role": "user"}])
    True
    """
    canon = [{"role": m["role"], "content": m["content"]} for m in messages]
    return hashlib.sha256(json.dumps(canon, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Generator:
    """Base class: subclasses implement `generate`; `close` frees engines and connections."""

    # short name written into search logs and bench results
    name: str = "generator"
    # whether several searches may call generate() at once (bench's tasks_in_flight > 1)
    thread_safe: bool = True

    def generate(self, prompts: Sequence[Messages], n: int = 1) -> list[list[str]]:
        """`n` completions for each prompt (a replay may return fewer when it has fewer stored)."""
        raise NotImplementedError

    def close(self) -> None:
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
