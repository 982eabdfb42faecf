# Sourced by the GPU scripts (after `cd` to the repository root): the output folder, PYTHONPATH, the
# environment of a run with several verifications at once, the log (appended, so reruns keep history) and
# the preflight. Sets OUT, PY, LOG and WANDB (true when wandb is importable).
OUT=${OUT:?set OUT to the output folder}
mkdir -p "$OUT"
if [ -z "${PYTHONPATH:-}" ]; then
  PYTHONPATH=$(ls -d packages/*/src | tr '\n' ':')
  export PYTHONPATH
fi
# several verifications at once on 16 cores: one Inductor compile thread each
export WANDB_MODE=offline HYDRA_FULL_ERROR=1 TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-1}
PY=${PYTHON:-python}
LOG="$OUT/run.log"
echo "=== $(date -u +%FT%TZ) $0" >> "$LOG"
WANDB=$("$PY" scripts/gpu_preflight.py) || exit 2
[ "$WANDB" = true ] || echo "wandb not importable: no W&B run" | tee -a "$LOG"
