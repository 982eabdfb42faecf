"""rl: curriculum RL with the decoupled reward (DRPO) on veRL 0.9.x, extended without forking.

    python -m rl +experiment=drtriton_7b --cfg job      # the paper's run, resolved config
    python -m rl +experiment=smoke                       # smallest real run (one GPU, vLLM)
    python -m rl +experiment=ablation_1p5b -m            # drpo/disco/grpo x log/power sweep
    python -m rl +experiment=sft_warmup                  # veRL's SFT trainer on (prompt, response) pairs

Modules: objective (the DRPO/DisCO math), drpo (its veRL estimators, loss and typed configs), plugin
(`verl.plugins` entry point), reward (async reward function over verify), curriculum, data, balance
(whole groups per rank), trainer (veRL trainer with curriculum), launch (what `python -m rl` runs).
The GPU checks are tests: tests/rl/test_drpo_on_gpu.py (scripts/gpu_rl.sh).

Registers the OmegaConf resolver `synth_split_file` (synth.export.split_file): rl's configs name synth's
parquet files through it, so both packages share one definition of the file names.
"""
from omegaconf import OmegaConf


def _split_file(split: str) -> str:
    from synth.export import split_file  # at resolution only: synth's import pulls in torch

    return split_file(split)


if not OmegaConf.has_resolver("synth_split_file"):
    OmegaConf.register_new_resolver("synth_split_file", _split_file)
