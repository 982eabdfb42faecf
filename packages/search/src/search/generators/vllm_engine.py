"""The vLLM offline engine (GPU; optional extra: `EXTRAS=gpu bash scripts/install.sh`).

vLLM is imported only when this generator is built, so the rest of the package never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence

from search.generators.base import Generator, Messages


class VLLMGenerator(Generator):
    name = "vllm"
    thread_safe = False

    def __init__(
        self,
        model: str,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_tokens: int = 4096,
        seed: int = 0,
        engine: dict | None = None,
    ) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError as e:
            raise ImportError(
                f"generator=vllm needs the vllm package ({e}); install the GPU extra with "
                "`EXTRAS=gpu bash scripts/install.sh`, or use generator=transformers|openai"
            ) from None
        self._params = SamplingParams
        self.sampling = dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
        self.llm = LLM(model=model, **dict(engine or {}))

    def generate(self, prompts: Sequence[Messages], n: int = 1) -> list[list[str]]:
        params = self._params(n=n, **self.sampling)
        outputs = self.llm.chat([list(m) for m in prompts], params, use_tqdm=False)
        return [[c.text for c in o.outputs] for o in outputs]
