"""The prompt that asks a model for a Triton `ModelNew`, shared by the dataset export and test-time search.

    from synth.prompts import PromptTemplate
    messages = PromptTemplate().messages(task.code)   # [{"role": "system", ...}, {"role": "user", ...}]

The texts are plain `str.format` templates; `user` gets `{code}` (the reference program). Override them
in config (`prompt.system=...`, `prompt.user=...`) or by constructing `PromptTemplate(system=..., user=...)`.
"""
from __future__ import annotations

from dataclasses import dataclass

SYSTEM = (
    "You are an expert in GPU programming who writes fast, correct Triton kernels. "
    "You rewrite PyTorch programs so that their computation runs in custom Triton kernels."
)

USER = """Here is a PyTorch program in KernelBench form (class Model, get_inputs, get_init_inputs):

```python
{code}
```

Write a class `ModelNew(nn.Module)` that computes exactly what `Model` computes, with the same constructor
arguments and forward signature, and performs the computation in one or more `@triton.jit` kernels
launched from its forward method. It must be faster than PyTorch. Keep parameters (weights, biases) as
module attributes created in `__init__` as in `Model`. Do not call the PyTorch operators that you are
replacing, and do not fall back to PyTorch.

Return the complete program (imports, kernels, `ModelNew`) in a single ```python code block."""


@dataclass(frozen=True)
class PromptTemplate:
    # system message
    system: str = SYSTEM
    # user message; `{code}` is replaced by the reference program
    user: str = USER

    def messages(self, code: str) -> list[dict]:
        """Chat messages asking for a Triton `ModelNew` for the reference program `code`."""
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user.format(code=code.strip())}]
