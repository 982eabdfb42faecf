"""rl: curriculum RL with the decoupled reward (DRPO) on veRL 0.9.x, extended without forking.

    python -m rl +experiment=drtriton_7b --cfg job      # the paper's run, resolved config
    python -m rl +experiment=smoke                       # smallest real run (one GPU, vLLM)
    python -m rl +experiment=ablation_1p5b -m            # drpo/disco/grpo x log/power sweep
    python -m rl +experiment=sft_warmup                  # veRL's SFT trainer on (prompt, response) pairs

Modules: objective (the DRPO/DisCO math), drpo (its veRL estimators, loss and typed configs), plugin
(`verl.plugins` entry point), reward (async reward function over verify), curriculum, data, balance
(whole groups per rank), trainer (veRL trainer with curriculum), launch (what `python -m rl` runs),
gpu_check (scripts/gpu_rl.sh).
"""
