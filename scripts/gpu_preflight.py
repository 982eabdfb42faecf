"""Preflight of the GPU scripts: the Python packages they need are importable and a CUDA device is visible
(or ALLOW_CPU=1 for a smoke run). Exits with a message naming what is missing; otherwise prints `true` or
`false`: whether wandb is importable (without it the scripts skip the W&B run).

    WANDB=$(python scripts/gpu_preflight.py) || exit 2
"""
import importlib.util
import os
import sys

NEEDED = ("hydra", "omegaconf", "numpy", "tqdm", "matplotlib", "networkx", "triton", "torch")

missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (put their wheels on PYTHONPATH)")
import torch  # noqa: E402

if not torch.cuda.is_available() and not os.environ.get("ALLOW_CPU"):
    sys.exit("no CUDA device visible: this script measures GPU timings (ALLOW_CPU=1 for a smoke run)")
print("true" if importlib.util.find_spec("wandb") is not None else "false")
