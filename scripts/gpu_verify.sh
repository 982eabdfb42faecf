#!/usr/bin/env bash
# GPU run of packages/verify on the device machine (one call): the fixture suite through the CLI, the
# verifier benchmark, then (unless SKIP_PYTEST=1) the GPU tests. Carry .whl/ (hydra-core, omegaconf, antlr4
# wheels for py3.12).
#   bash scripts/gpu_verify.sh        # logs and results_gpu.json under $OUT (about 9 minutes on one H100)
# BENCH_S (380): the benchmark's time limit; it writes its JSON after each phase. SCALE (4,64MiB): its
# repeatability sizes; RUNS (2): separate verifiers per size. L2_FLUSH (write): how L2 is flushed before each timed call (write | read). READ_S (0):
# when > 0, a second benchmark (repeatability only, sizes x4, no compile baseline) with the other flush mode,
# within READ_S seconds, so that both are compared in one call.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 3
fi
PYTHONPATH=/tmp/site:$PWD/packages/verify/src  # verify depends on no sibling package
export PYTHONPATH PYTHONUNBUFFERED=1 WANDB_MODE=offline TORCHINDUCTOR_COMPILE_THREADS=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
timeout -k 5 110 python3 -m verify workers_per_gpu=8 verify.gpu_hold_limit_s=20 out="$OUT/verify_suite_gpu.jsonl" > "$OUT/verify_suite.log" 2>&1
echo "suite rc=$?"; grep -vE "it/s|cand/s\]" "$OUT/verify_suite.log" | tail -42
FLUSH=${L2_FLUSH:-write}
timeout -k 5 ${BENCH_S:-380} python3 benchmarks/verify/bench_verify.py --workers-per-gpu 8 --rounds 8 --scale "${SCALE:-4,64MiB}" --runs "${RUNS:-2}" \
  --l2-flush "$FLUSH" --out "$OUT/results_gpu.json" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; grep -vE "it/s\]|cand/s\]" "$OUT/bench.log" | tail -40
if [ "${READ_S:-0}" -gt 0 ]; then
  OTHER=$([ "$FLUSH" = write ] && echo read || echo write)
  timeout -k 5 "$READ_S" python3 benchmarks/verify/bench_verify.py --workers-per-gpu 8 --skip-throughput --scale 4 \
    --no-compile-baseline --l2-flush "$OTHER" --out "$OUT/results_gpu_$OTHER.json" > "$OUT/bench_$OTHER.log" 2>&1
  echo "bench ($OTHER flush) rc=$?"; grep -vE "it/s\]|cand/s\]" "$OUT/bench_$OTHER.log" | tail -20
fi
if [ -z "${SKIP_PYTEST:-}" ]; then
  timeout -k 5 200 python3 -m pytest -q -m gpu tests/verify -p no:cacheprovider > "$OUT/verify_gpu_tests.log" 2>&1
  echo "gpu tests rc=$?"; tail -5 "$OUT/verify_gpu_tests.log"
fi
