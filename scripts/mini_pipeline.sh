#!/usr/bin/env bash
# The whole pipeline in miniature on one GPU (issue 7): synth -> teacher SFT -> DRPO on veRL -> bench, with
# SmolLM2-135M-Instruct. Every step fits one device command (< 10 min) and resumes where an earlier command
# stopped. State lives in $MINI_DIR (default /tmp/mini): on the GPU machine it survives between commands only
# while the machine stays warm, so run the steps in back-to-back calls (README: "The pipeline in miniature").
#
#   STEP=setup,data bash scripts/mini_pipeline.sh          # steps run in order; STEP=all is data..summary
#   ALLOW_CPU=1 STEP=data L1_N=2 L2_N=1 HELDOUT_N=2 SYNTH_CAPS="sampler.max_dim=64" bash scripts/mini_pipeline.sh
#
# Steps:
#   setup       gpu-kit: check and unpack $KIT_DIR/part.* into /tmp/site, convert the SmolLM2 GGUF to $MINI_MODEL
#   data        held-out level-1 programs (synth's held-out seed) -> data/heldout; level-1 and level-2 training
#               programs disjoint from them (synth exclude=) with the teacher's verified SFT pairs and veRL's RL rows
#               -> data/train; the pairs that fit the SFT context -> data/sft_pairs_fit.parquet
#   sft         torchrun -m rl +experiment=mini_sft; links the last checkpoint's HF model to models/sft
#   drpo        python -m rl +experiment=mini_drpo, at most DRPO_STEPS_PER_CALL steps per command up to DRPO_STEPS;
#               links the last checkpoint's HF model to models/drpo
#   bench_base, bench_sft, bench_drpo
#               one sampled completion per held-out task (benchmarks/mini/generate.py), scored by
#               python -m bench generator=replay with timings against eager and torch.compile -> bench/<model>
#   summary     benchmarks/mini/summarize.py -> results/results.json and results/RESULTS.md
# Every step appends its wall time to logs/times.jsonl and its output to logs/<step>.log (the console gets the
# tail). With $OUT set (a device call), results/* and this command's step logs are copied there.
#
# Knobs (environment): MINI_DIR (/tmp/mini), MINI_MODEL (/tmp/smol: base model, HF folder), MINI_GGUF (a GGUF
# file inside MINI_MODEL instead), KIT_DIR (/tmp/vf), PYTHON (python3); data: HELDOUT_N (32), L1_N (800),
# L2_N (200), TEACHER_WORKERS (8), SYNTH_CAPS (extra synth overrides, e.g. smaller sampler caps on CPU),
# SFT_MAX_LENGTH (3072, = mini_sft's sft.data.max_length); drpo: DRPO_STEPS (8), DRPO_STEPS_PER_CALL (8);
# bench: GEN_ENGINE (auto: vllm where CUDA and vllm are there, else transformers), MAX_NEW_TOKENS (1536),
# BENCH_LIMIT (all tasks), BENCH_IN_FLIGHT (8), GEN_MEM (0.5: vLLM's share of the GPU), GEN_ONLY=1 (write the
# completions, score later: generation does not time anything, so it may share the GPU with sft or drpo);
# time limits in seconds: DATA_S (480), SFT_S (540), DRPO_S (540), GEN_S (240), BENCH_S (300);
# extra Hydra overrides: SFT_ARGS, DRPO_ARGS, BENCH_ARGS; ALLOW_CPU=1 runs without CUDA (smoke tests).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

MINI_DIR=${MINI_DIR:-/tmp/mini}
MINI_MODEL=${MINI_MODEL:-/tmp/smol}
MINI_GGUF=${MINI_GGUF:-}
KIT_DIR=${KIT_DIR:-/tmp/vf}
PY=${PYTHON:-python3}
D=$MINI_DIR/data
LOGS=$MINI_DIR/logs
HELDOUT_N=${HELDOUT_N:-32} L1_N=${L1_N:-800} L2_N=${L2_N:-200} TEACHER_WORKERS=${TEACHER_WORKERS:-8}
SYNTH_CAPS=${SYNTH_CAPS:-} SFT_MAX_LENGTH=${SFT_MAX_LENGTH:-3072}
DRPO_STEPS=${DRPO_STEPS:-8} DRPO_STEPS_PER_CALL=${DRPO_STEPS_PER_CALL:-8}
GEN_ENGINE=${GEN_ENGINE:-auto} MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-1536} BENCH_LIMIT=${BENCH_LIMIT:-}
BENCH_IN_FLIGHT=${BENCH_IN_FLIGHT:-8} GEN_MEM=${GEN_MEM:-0.5} GEN_ONLY=${GEN_ONLY:-}
DATA_S=${DATA_S:-480} SFT_S=${SFT_S:-540} DRPO_S=${DRPO_S:-540} GEN_S=${GEN_S:-240} BENCH_S=${BENCH_S:-300}
read -ra SFT_ARGS <<< "${SFT_ARGS:-}"
read -ra DRPO_ARGS <<< "${DRPO_ARGS:-}"
read -ra BENCH_ARGS <<< "${BENCH_ARGS:-}"
read -ra CAPS <<< "$SYNTH_CAPS"

PYTHONPATH="$(ls -d "$REPO"/packages/*/src | tr '\n' ':')${PYTHONPATH:-}"
[ -d /tmp/site ] && PYTHONPATH="$PYTHONPATH:/tmp/site"
# rl's veRL plugin (DRPO loss and estimators) by module name: packages on PYTHONPATH have no entry points
export PYTHONPATH VERL_USE_EXTERNAL_MODULES=rl.plugin
# VLLM_USE_FLASHINFER_SAMPLER=0: vLLM 0.24's sampler imports flashinfer, which has no wheel in the gpu-kit; left
# unset, every vLLM engine (veRL's rollout server, generate.py) fails to start on the H100 (seen 2026-11-24)
export VLLM_USE_FLASHINFER_SAMPLER=${VLLM_USE_FLASHINFER_SAMPLER:-0}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 \
  RAY_USAGE_STATS_ENABLED=0 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1 \
  WANDB_MODE=${WANDB_MODE:-offline} WANDB_DIR=${WANDB_DIR:-$MINI_DIR/wandb} MINI_DIR
mkdir -p "$LOGS" "$WANDB_DIR"
STEPS_RUN=()

say() { echo "[mini] $*"; }

# run LIMIT LOG CMD...: CMD with a time limit, output appended to LOG, the log's tail on the console
run() {
  local limit=$1 log=$2 rc size
  shift 2
  size=$(stat -c %s "$log" 2>/dev/null || echo 0)
  echo "+ $*" >> "$log"
  timeout -k 20 "$limit" "$@" >> "$log" 2>&1
  rc=$?
  tail -c +"$((size + 1))" "$log" | grep -vE 'it/s\]|s/it\]' | tail -n "${TAIL_LINES:-25}"
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && say "stopped at the ${limit}s limit (rerun the step to continue)"
  return "$rc"
}

# ckpt_step DIR: the step of the latest veRL checkpoint under DIR (0 if none)
ckpt_step() { cat "$1/latest_checkpointed_iteration.txt" 2>/dev/null || echo 0; }

# link_latest CKPT_DIR SUBPATH LINK: point LINK at the latest checkpoint's HF model folder
link_latest() {
  local n path
  n=$(ckpt_step "$1")
  path=$1/global_step_$n/$2
  if [ "$n" -gt 0 ] && [ -f "$path/config.json" ] && ls "$path"/*.safetensors >/dev/null 2>&1; then
    mkdir -p "$(dirname "$3")"
    ln -sfn "$path" "$3"
    say "$3 -> $path"
  else
    say "no HF model in the latest checkpoint under $1 (step $n)"
    return 1
  fi
}

wandb_ok() { "$PY" -c "import wandb" 2>/dev/null; }

environment() {
  "$PY" - "$LOGS/environment.json" <<'EOF' 2>/dev/null
import json, sys
from importlib.metadata import PackageNotFoundError, version
import torch
env = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "torch": torch.__version__}
for name in ("triton", "transformers", "vllm", "verl", "ray"):
    try:
        env[name] = version(name)
    except PackageNotFoundError:
        pass
json.dump(env, open(sys.argv[1], "w"), indent=1)
EOF
}

step_setup() {
  if [ -d /tmp/site/verl ]; then
    say "gpu-kit already unpacked in /tmp/site"
  else
    (cd "$KIT_DIR" && sha256sum -c SHA256SUMS) || { say "gpu-kit chunks missing or corrupt in $KIT_DIR (was the machine given back between calls?)"; return 3; }
    mkdir -p /tmp/site
    if command -v xz >/dev/null; then
      cat "$KIT_DIR"/part.* | xz -dc | tar -x -C /tmp/site || return 4
    else
      cat "$KIT_DIR"/part.* | "$PY" -c "import sys,lzma,shutil;shutil.copyfileobj(lzma.open(sys.stdin.buffer),sys.stdout.buffer)" \
        | tar -x -C /tmp/site || return 4
    fi
    rm -f "$KIT_DIR"/part.*
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
  fi
  if [ -f "$MINI_MODEL/config.json" ]; then
    say "base model already in $MINI_MODEL"
  else
    run 300 "$LOGS/setup.log" "$PY" "$KIT_DIR/conv2.py" /tmp/site/_model/SmolLM2-135M-Instruct.Q4_1.gguf "$MINI_MODEL" || return 6
  fi
}

step_data() {
  local log=$LOGS/data.log tok=()
  if [ ! -f "$D/heldout/heldout.parquet" ]; then
    run "$DATA_S" "$log" "$PY" -m synth --config-name synth_heldout level=1 "n=$HELDOUT_N" "out=$D/heldout" \
      overwrite=true progress=false "${CAPS[@]}" || return
  fi
  if [ ! -f "$D/train/sft_pairs.parquet" ]; then
    # a rerun makes the same programs and verifies only those its verdict cache lacks
    run "$DATA_S" "$log" "$PY" -m synth "level=[1,2]" "n=[$L1_N,$L2_N]" "out=$D/train" "exclude=[$D/heldout]" \
      teacher.enabled=true "teacher.workers=$TEACHER_WORKERS" overwrite=true progress=false "${CAPS[@]}" || return
  fi
  [ -f "$MINI_MODEL/tokenizer_config.json" ] && tok=(--tokenizer "$MINI_MODEL")
  run 300 "$log" "$PY" benchmarks/mini/fit_pairs.py "$D/train/sft_pairs.parquet" "$D/sft_pairs_fit.parquet" \
    --max-length "$SFT_MAX_LENGTH" "${tok[@]}"
}

step_sft() {
  local rc logger=()
  [ -f "$D/sft_pairs_fit.parquet" ] || { say "no $D/sft_pairs_fit.parquet: run STEP=data first"; return 2; }
  wandb_ok || logger=("sft.trainer.logger=[console,file]")
  export VERL_FILE_LOGGER_PATH=$LOGS/mini_sft.$(date +%Y%m%d-%H%M%S).jsonl
  run "$SFT_S" "$LOGS/sft.log" "$PY" -m torch.distributed.run --standalone --nnodes=1 --nproc_per_node=1 \
    -m rl +experiment=mini_sft "hydra.run.dir=$MINI_DIR/hydra/sft" "${logger[@]}" "${SFT_ARGS[@]}"
  rc=$?
  link_latest "$MINI_DIR/ckpt/sft" huggingface "$MINI_DIR/models/sft" || [ "$rc" -ne 0 ] || rc=5
  return "$rc"
}

step_drpo() {
  local rc done cap logger=()
  [ -f "${MINI_SFT_MODEL:-$MINI_DIR/models/sft}/config.json" ] || {
    say "no SFT model at ${MINI_SFT_MODEL:-$MINI_DIR/models/sft}: run STEP=sft first (or set MINI_SFT_MODEL)"; return 2; }
  done=$(ckpt_step "$MINI_DIR/ckpt/drpo")
  if [ "$done" -ge "$DRPO_STEPS" ]; then
    say "drpo already at step $done of $DRPO_STEPS"
    link_latest "$MINI_DIR/ckpt/drpo" actor/huggingface "$MINI_DIR/models/drpo"
    return
  fi
  cap=$((done + DRPO_STEPS_PER_CALL < DRPO_STEPS ? done + DRPO_STEPS_PER_CALL : DRPO_STEPS))
  wandb_ok || logger=("trainer.logger=[console,file]")
  export VERL_FILE_LOGGER_PATH=$LOGS/mini_drpo.$(date +%Y%m%d-%H%M%S).jsonl
  say "drpo: steps $((done + 1))..$cap of $DRPO_STEPS"
  run "$DRPO_S" "$LOGS/drpo.log" "$PY" -m rl +experiment=mini_drpo "trainer.total_training_steps=$cap" \
    "hydra.run.dir=$MINI_DIR/hydra/drpo" "${logger[@]}" "${DRPO_ARGS[@]}"
  rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    # the driver was killed: Ray's own processes (raylet, workers, vLLM) would keep the GPU memory
    "$PY" -m ray.scripts.scripts stop --force >> "$LOGS/drpo.log" 2>&1
  fi
  link_latest "$MINI_DIR/ckpt/drpo" actor/huggingface "$MINI_DIR/models/drpo" || [ "$rc" -ne 0 ] || rc=5
  say "drpo: at step $(ckpt_step "$MINI_DIR/ckpt/drpo") of $DRPO_STEPS"
  return "$rc"
}

# bench NAME MODEL [GGUF]: one completion per held-out task from MODEL, scored by bench against eager and compile
bench() {
  local name=$1 model=$2 gguf=${3:-} out=$MINI_DIR/bench/$1 log=$LOGS/bench_$1.log resolved rc wandb=true extra=()
  [ -n "$gguf" ] || [ -f "$model/config.json" ] || { say "no model at $model for bench_$name"; return 2; }
  [ -f "$D/heldout/heldout.parquet" ] || { say "no held-out set: run STEP=data first"; return 2; }
  resolved=$(readlink -f "$model")
  if [ -f "$out/generation.json" ] && ! grep -q "\"model\": \"$resolved\"" "$out/generation.json"; then
    say "bench_$name: $model now points at $resolved; scoring it afresh"
    rm -rf "$out"
  fi
  [ -n "$BENCH_LIMIT" ] && extra=("suite.limit=$BENCH_LIMIT")
  local engine=$GEN_ENGINE
  if [ "$engine" = auto ]; then
    # transformers' batched generate took 74-97 s for 8 completions of 1024 tokens on the H100 (2026-11-24)
    "$PY" -c "import sys, torch, vllm; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
      && engine=vllm || engine=transformers
  fi
  if [ ! -f "$out/generation.json" ]; then
    run "$GEN_S" "$log" "$PY" benchmarks/mini/generate.py --tasks "$D/heldout/tasks" --model "$resolved" \
      --out "$out/replay.jsonl" --engine "$engine" --max-new-tokens "$MAX_NEW_TOKENS" --gpu-memory "$GEN_MEM" \
      ${gguf:+--gguf-file "$gguf"} ${BENCH_LIMIT:+--limit "$BENCH_LIMIT"} || return
  fi
  [ -n "$GEN_ONLY" ] && { say "bench_$name: completions in $out/replay.jsonl (GEN_ONLY: not scored)"; return; }
  wandb_ok || wandb=false
  run "$BENCH_S" "$log" "$PY" -m bench suite=folder "suite.path=$D/heldout/tasks" suite.name=mini_heldout \
    suite.source=synth "${extra[@]}" strategy=best_of_n strategy.n=1 generator=replay \
    "generator.path=$out/replay.jsonl" "out_dir=$out" "run_name=mini-$name" "tasks_in_flight=$BENCH_IN_FLIGHT" \
    verify.compile_baseline=true "wandb.enabled=$wandb" "wandb.name=mini-$name" "${BENCH_ARGS[@]}"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    # a bench cut short still reports the tasks it finished (a rerun scores the rest)
    "$PY" -m bench suite=folder "suite.path=$D/heldout/tasks" suite.name=mini_heldout suite.source=synth \
      "${extra[@]}" strategy=best_of_n strategy.n=1 generator=replay "generator.path=$out/replay.jsonl" \
      "out_dir=$out" "run_name=mini-$name" "wandb.enabled=false" report_only=true >> "$log" 2>&1
  fi
  return "$rc"
}

step_bench_base() { bench base "$MINI_MODEL" "$MINI_GGUF"; }
step_bench_sft() { bench sft "$MINI_DIR/models/sft"; }
step_bench_drpo() { bench drpo "$MINI_DIR/models/drpo"; }

step_summary() {
  run 120 "$LOGS/summary.log" "$PY" benchmarks/mini/summarize.py "$MINI_DIR" --out "$MINI_DIR/results"
}

STEP=${STEP:?set STEP to a comma list of setup,data,sft,drpo,bench_base,bench_sft,bench_drpo,summary (or all)}
[ "$STEP" = all ] && STEP=data,sft,drpo,bench_base,bench_sft,bench_drpo,summary
IFS=, read -ra STEPS <<< "$STEP"
for s in "${STEPS[@]}"; do
  declare -F "step_$s" >/dev/null || { say "unknown step '$s'"; exit 2; }
done
if [ -z "${ALLOW_CPU:-}" ] && [ "${STEPS[*]}" != setup ] && [ "${STEPS[*]}" != summary ]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { say "no CUDA device: this pipeline trains and times on a GPU (ALLOW_CPU=1 for a smoke run)"; exit 2; }
fi

status=0
for s in "${STEPS[@]}"; do
  say "step $s (MINI_DIR=$MINI_DIR)"
  start=$(date +%s)
  "step_$s"
  status=$?
  printf '{"step": "%s", "seconds": %d, "rc": %d, "start": %d}\n' "$s" "$(($(date +%s) - start))" "$status" "$start" \
    >> "$LOGS/times.jsonl"
  STEPS_RUN+=("$s")
  if [ "$status" -ne 0 ]; then
    say "step $s failed (exit $status); later steps skipped"
    break
  fi
done

[ "${STEPS_RUN[*]}" = setup ] || environment
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  cp "$MINI_DIR"/results/RESULTS.md "$MINI_DIR"/results/results.json "$OUT"/ 2>/dev/null
  cp "$LOGS/times.jsonl" "$OUT"/ 2>/dev/null
  for s in "${STEPS_RUN[@]}"; do
    [ -f "$LOGS/$s.log" ] && tail -c 4000000 "$LOGS/$s.log" > "$OUT/$s.log"
  done
fi
exit "$status"
