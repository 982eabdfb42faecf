#!/usr/bin/env bash
# Issue 24 on one H200: regenerate the teacher's GEMM tuning table, then measure the KernelBench level-2 GEMM
# tasks with it (n=1), beside eager, torch.compile and torch.compile max-autotune. Each step fits one device
# call of at most 10 minutes and resumes where the last call stopped (while the machine stays warm).
#
#   OUT=/tmp/tune bash scripts/gpu_tune.sh                                   # STEP=tune (default)
#   OUT=/tmp/tune KB=shared/KernelBench STEP=gemm_tasks bash scripts/gpu_tune.sh
#   OUT=/tmp/tune KB=shared/KernelBench STEP=gemm_tasks MAX_AUTOTUNE=true bash scripts/gpu_tune.sh
#
# STEP=tune: the 3xTF32 error check on the real kernels (error_check.log), then
#   python benchmarks/tune/tune_gemm.py --out packages/synth/src/synth/teacher/tuning_h200.json
#   for TUNE_S seconds (500); run it again until it prints no "time budget ... spent" line (measured entries
#   are skipped; --retune via TUNE_ARGS). The table is written in the working tree and copied to $OUT: commit
#   it. Knobs: TUNE_ARGS (more tune_gemm.py arguments, e.g. "--kinds linear --buckets large").
# STEP=gemm_tasks: scripts/gpu_kernelbench.sh on level 2, the GEMM / matmul tasks only (GEMM_IDS), n=1, with
#   a fresh state (STATE, default /tmp/kb_gemm_state: the committed results predate the new tiling and are
#   not seeded); MAX_AUTOTUNE=true adds the torch.compile max-autotune-no-cudagraphs column (each task's
#   compile autotunes: minutes; several calls; its own state and $OUT/max_autotune). Results:
#   $OUT/level2/{results.jsonl,summary.json,RESULTS.md} (with MAX_AUTOTUNE=true under $OUT/max_autotune/).
set -euo pipefail
cd "$(dirname "$0")/.."
STEP=${STEP:-tune}
OUT=${OUT:?set OUT to the output folder}
mkdir -p "$OUT"
if [ "$STEP" = gemm_tasks ]; then
  GEMM_IDS=${GEMM_IDS:-9,12,14,18,22,28,29,30,33,37,39,40,41,45,51,53,55,56,59,62,63,64,66,68,70,75,76,80,81,84,86,88,94,95,97,98,99}
  extra="suite.problem_ids=[$GEMM_IDS]" state=/tmp/kb_gemm_state
  if [ "${MAX_AUTOTUNE:-false}" = true ]; then
    extra="$extra verify.compile_max_autotune=true" state=/tmp/kb_gemm_max_state OUT="$OUT/max_autotune"
  fi
  OUT="$OUT" LEVELS=2 N=1 STATE=${STATE:-$state} SEED=/nonexistent EXTRA="$extra ${EXTRA:-}" \
    DEADLINE_S=${DEADLINE_S:-540} bash scripts/gpu_kernelbench.sh
  exit $?
fi
WHL=$(realpath "${WHL:-.whl}" 2>/dev/null || true)
if ls "$WHL"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHL"/*.whl || exit 3
fi
PYTHONPATH=$(ls -d "$PWD"/packages/*/src | tr '\n' :)/tmp/site
export PYTHONPATH
PY=${PYTHON:-python}
TABLE=packages/synth/src/synth/teacher/tuning_h200.json
unset TRITON_INTERPRET
if [ ! -s "$OUT/error_check.log" ]; then
  timeout -k 10 120 "$PY" benchmarks/tune/tune_gemm.py --error-check 2>&1 | tee "$OUT/error_check.log" || true
fi
read -r -a targs <<< "${TUNE_ARGS:-}"
timeout -k 10 $(( ${TUNE_S:-500} + 60 )) "$PY" benchmarks/tune/tune_gemm.py --out "$TABLE" \
  --budget-s "${TUNE_S:-500}" "${targs[@]}" 2>&1 | tee -a "$OUT/tune.log"
cp "$TABLE" "$OUT/"
