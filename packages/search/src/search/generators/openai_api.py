"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM/SGLang servers, llama.cpp server, ...).

The key is read from the environment variable named by `api_key_env` (never from config files). Prompts
are sent concurrently; each asks for `n` choices, and servers that return fewer are asked again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

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
        extra_body: dict | None = None,
    ) -> None:
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens
        self.concurrency, self.extra_body = max(1, concurrency), dict(extra_body or {})
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.client = httpx.Client(headers=headers, timeout=timeout_s)

    def _ask(self, messages: Messages, n: int) -> list[str]:
        texts: list[str] = []
        while len(texts) < n:
            body = {
                "model": self.model,
                "messages": messages,
                "n": n - len(texts),
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                **self.extra_body,
            }
            r = self.client.post(self.url, json=body)
            if r.status_code != 200:
                raise RuntimeError(f"{self.url} answered {r.status_code}: {r.text[:300]}")
            choices = r.json().get("choices") or []
            if not choices:
                raise RuntimeError(f"{self.url} returned no choices: {r.text[:300]}")
            texts += [c["message"]["content"] or "" for c in choices]
        return texts[:n]

    def generate(self, prompts: Sequence[Messages], n: int = 1) -> list[list[str]]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda m: self._ask(m, n), prompts))

    def close(self) -> None:
        self.client.close()
