"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM/SGLang servers, llama.cpp server, ...), on the `openai`
SDK: its retries with backoff (rate limits, 5xx, dropped connections), per-request timeouts and typed
errors. The key is read from the environment variable named by `api_key_env` (never from config files).
Prompts are sent `concurrency` at a time; each asks for `n` choices, and servers that return fewer are asked
again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import openai

from search.generators.base import Generator, Messages


class OpenAIGenerator(Generator):
    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.7,
        max_tokens: int = 4096,
        timeout_s: float = 600.0,
        concurrency: int = 8,
        max_retries: int = 4,
        extra_body: dict | None = None,
    ) -> None:
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens
        self.concurrency, self.extra_body = max(1, concurrency), dict(extra_body or {})
        self.base_url = base_url.rstrip("/")
        # a local server needs no key, but the SDK refuses an empty one: send a placeholder it never checks
        self.client = openai.OpenAI(
            api_key=key or "none", base_url=self.base_url, timeout=timeout_s, max_retries=max_retries
        )

    def _ask(self, messages: Messages, n: int) -> list[str]:
        texts: list[str] = []
        while len(texts) < n:
            try:
                r = self.client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    n=n - len(texts),
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    extra_body=self.extra_body or None,
                )
            except openai.APIStatusError as e:
                raise RuntimeError(f"{self.base_url} answered {e.status_code}: {str(e.message)[:300]}") from e
            except openai.APIConnectionError as e:
                raise RuntimeError(f"{self.base_url} unreachable after retries: {e}") from e
            if not r.choices:
                raise RuntimeError(f"{self.base_url} returned no choices for model {self.model}")
            texts += [c.message.content or "" for c in r.choices]
        return texts[:n]

    def generate(self, prompts: Sequence[Messages], n: int = 1) -> list[list[str]]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda m: self._ask(m, n), prompts))

    def close(self) -> None:
        self.client.close()
