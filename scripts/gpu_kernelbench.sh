#!/usr/bin/env bash
# KernelBench levels 1-3 with the teacher as generator on one GPU, against eager PyTorch and torch.compile,
# resumable across device calls of at most 10 minutes. Each call continues every level where the last one
# stopped and writes, per level, results.jsonl, summary.json and RESULTS.md (commands, device, versions, a
# per-task table) under $OUT/level<N>/.
#
#   OUT=/path/out KB=/path/KernelBench LEVELS="2 1 3" DEADLINE_S=520 bash scripts/gpu_kernelbench.sh
#
# Resume: state lives in $STATE (default /tmp/kb_state: kept only while the device machine stays warm). A call
# on a fresh machine first seeds it from $SEED/level<N>/results.jsonl (default benchmarks/kernelbench/h200, the
# committed results), so a level finished over several sessions resumes from what was committed.
# Level 1 and 2: strategy=best_of_n n=$N (1: the teacher's single completion); level 3: strategy=fragments
# (what the teacher cannot lower stays PyTorch). Knobs: WORKERS (4), IN_FLIGHT (4), N (1), COMPILE (true),
# DEADLINE_S (seconds for all the levels of this call, reports included), LIMIT (first N tasks of a level),
# EXTRA (more bench overrides, space-separated, e.g. "verify.kernel_cache=shared").
# Wheels in $WHL (default .whl: hydra-core, omegaconf, antlr4 for the device machine) are installed first.
set -euo pipefail
WHL=$(realpath "${WHL:-.whl}" 2>/dev/null || true)
cd "$(dirname "$0")/.."
if ls "$WHL"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHL"/*.whl || exit 3
fi
PYTHONPATH=$(ls -d "$PWD"/packages/*/src | tr '\n' :)/tmp/site
export PYTHONPATH
source scripts/gpu_env.sh
KB=${KB:?set KB to a KernelBench checkout (folders level1..level3)}
STATE=${STATE:-/tmp/kb_state} SEED=${SEED:-benchmarks/kernelbench/h200}
LEVELS=${LEVELS:-2 1 3} DEADLINE_S=${DEADLINE_S:-520} N=${N:-1} COMPILE=${COMPILE:-true}
end=$(( $(date +%s) + DEADLINE_S ))
for level in $LEVELS; do
  dir="$STATE/level$level"
  mkdir -p "$dir" "$OUT/level$level"
  if [ ! -s "$dir/results.jsonl" ] && [ -s "$SEED/level$level/results.jsonl" ]; then
    cp "$SEED/level$level/results.jsonl" "$dir/results.jsonl"
  fi
  if [ "$level" = 3 ]; then strat=(strategy=fragments); else strat=(strategy=best_of_n "strategy.n=$N"); fi
  args=(suite=kernelbench "suite.path=$KB" "suite.levels=[$level]" generator=teacher "${strat[@]}"
        "out_dir=$dir" "workers=${WORKERS:-4}" "tasks_in_flight=${IN_FLIGHT:-4}" "verify.compile_baseline=$COMPILE"
        "wandb.enabled=$WANDB" "run_name=kernelbench-l$level")
  [ -n "${LIMIT:-}" ] && args+=("suite.limit=$LIMIT")
  read -r -a extra <<< "${EXTRA:-}"
  args+=("${extra[@]}")
  left=$(( end - $(date +%s) - 40 ))
  if [ "$left" -gt 30 ]; then
    echo "+ [$(date -u +%T)] python -m bench ${args[*]}  (limit ${left}s)" | tee -a "$LOG"
    timeout -k 10 "$left" "$PY" -m bench "${args[@]}" >> "$LOG" 2>&1 || echo "level $level stopped (limit or error)" | tee -a "$LOG"
  fi
  "$PY" -m bench "${args[@]}" report_only=true >> "$LOG" 2>&1 || true
  cp "$dir/results.jsonl" "$OUT/level$level/" 2>/dev/null || true
  cp "$dir/summary.json" "$OUT/level$level/" 2>/dev/null || true
  "$PY" benchmarks/kernelbench/results_md.py "$dir/results.jsonl" --level "$level" --kb "$KB" \
    --command "OUT=... KB=... LEVELS=\"$LEVELS\" N=$N bash scripts/gpu_kernelbench.sh" > "$OUT/level$level/RESULTS.md" 2> >(tee -a "$LOG") || true

done
tail -n 40 "$LOG" > "$OUT/run_tail.log"
