"""Generators, where candidate kernels come from (config group `generator`): replay, teacher,
transformers, openai, vllm.

Every generator takes a batch of prompts (chat messages) and returns `n` completions for each:

    gen = hydra.utils.instantiate(cfg.generator)
    completions = gen.generate([messages_a, messages_b], n=4)   # [[4 texts], [4 texts]]
"""

from search.generators.base import Generator, Messages, prompt_hash
from search.generators.replay import ReplayGenerator, append_replay

__all__ = ["Generator", "Messages", "prompt_hash", "ReplayGenerator", "append_replay"]
