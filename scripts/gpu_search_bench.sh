#!/usr/bin/env bash
# Bench and search on the fixture suite with the replay generator, on one GPU, timed against PyTorch eager
# and torch.compile. Writes everything under $OUT and prints a short results table last (< 9 minutes on
# one H100).
#
#   OUT=/path/to/out PYTHONPATH=$(ls -d packages/*/src | tr '\n' :)/tmp/site bash scripts/gpu_search_bench.sh
#   ALLOW_CPU=1 OUT=/tmp/smoke bash scripts/gpu_search_bench.sh    # smoke test of the script itself (no timings)
#
# Needs torch + triton with CUDA, and on PYTHONPATH: packages/*/src plus hydra-core, omegaconf,
# antlr4-python3-runtime, PyYAML, numpy, tqdm, matplotlib (wandb optional: without it the W&B run is skipped).
# Steps (each bounded by `timeout`; a bench cut short still reports the tasks it finished):
#   1. replay.jsonl from the fixture candidates and the shipped fragment kernels (python -m search.fixtures)
#   2. bench, best_of_n, every fixture                      -> $OUT/bench/best_of_n
#   3. bench, fragment search, the fixtures with fragments  -> $OUT/bench/fragments
#   4. search, fragment search without whole-program kernels (assembly with a PyTorch part, timed)
#                                                           -> $OUT/search/swish_residual
#   5. RESULTS.md: device, versions, date, commands, the comparison table
# Time limits of steps 2-4 in seconds: BOFN_S (200), FRAG_S (100), SEARCH_S (150); verifier workers WORKERS (8),
# tasks at once IN_FLIGHT (8).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh

run_bench() {  # run_bench SECONDS OUT_DIR ARGS...: a bench with a time limit, then its report from what finished
  local limit=$1 dir=$2
  shift 2
  local args=(suite=fixtures "generator.path=$OUT/replay.jsonl" "out_dir=$dir" "workers=${WORKERS:-8}" "tasks_in_flight=${IN_FLIGHT:-8}"
              verify.compile_baseline=true "wandb.enabled=$WANDB" "$@")
  echo "+ python -m bench ${args[*]}" | tee -a "$LOG"
  if ! timeout -k 5 "$limit" "$PY" -m bench "${args[@]}" >> "$LOG" 2>&1; then
    echo "bench in $dir stopped (time limit $limit s or error); reporting the tasks it finished" | tee -a "$LOG"
    "$PY" -m bench "${args[@]}" report_only=true >> "$LOG" 2>&1 || true
  fi
}

"$PY" -m search.fixtures "$OUT/replay.jsonl" | tee -a "$LOG"
"$PY" -m search.fixtures "$OUT/replay_fragments.jsonl" --no-whole | tee -a "$LOG"

run_bench "${BOFN_S:-200}" "$OUT/bench/best_of_n" strategy=best_of_n strategy.n=1
run_bench "${FRAG_S:-100}" "$OUT/bench/fragments" strategy=fragments \
  "suite.names=[relu_scale_bias,conv2d_bias_relu,swish_residual,softmax]"

SEARCH=(task=fixtures/swish_residual strategy=fragments "generator.path=$OUT/replay_fragments.jsonl"
        "out_dir=$OUT/search/swish_residual" verify.compile_baseline=true)
echo "+ python -m search ${SEARCH[*]}" | tee -a "$LOG"
timeout -k 5 "${SEARCH_S:-150}" "$PY" -m search "${SEARCH[@]}" >> "$LOG" 2>&1 || echo "search stopped (time limit or error)" | tee -a "$LOG"

"$PY" - "$OUT" <<'EOF'
"""Write RESULTS.md (device, versions, date, the commands, tables) and print the short table last."""
import contextlib, datetime, io, json, sys
from pathlib import Path

import torch, triton
from bench.merge import merge
from bench.report import table

out = Path(sys.argv[1])
buf = io.StringIO()
runs = sorted(p.parent for p in (out / "bench").glob("*/summary.json"))
with contextlib.redirect_stdout(buf):
    merge([str(p) for p in runs], out=str(out / "compare")) if runs else None
lines = [f"# search + bench on the fixture suite (replay generator)", "",
         f"- device: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (smoke run, no timing)'}; torch {torch.__version__}, triton {triton.__version__}",
         f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
         "- command: `OUT=... bash scripts/gpu_search_bench.sh` (steps and exact commands in run.log)",
         "- fN = fast_N, the share of ALL tasks correct and more than N times faster than the baseline; geo = "
         "geometric-mean speedup over correct tasks", "", "## runs (all levels)", "", "```",
         *buf.getvalue().rstrip().splitlines(), "```"]
for run in runs:
    s = json.loads((run / "summary.json").read_text())
    lines += ["", f"## {s['title']} (by level)", "", "```", table(s["levels"]), "```"]
    rows = [json.loads(l) for l in (run / "results.jsonl").read_text().splitlines() if l.strip().startswith("{")]
    lines += ["", "| task | ok | speedup vs eager | vs torch.compile | best | error |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["task_id"]):
        f = lambda v: "-" if v is None else f"{v:.2f}"
        lines.append(f"| {r['task_id']} | {'yes' if r['accepted'] else 'no'} | {f(r.get('speedup_eager'))} | "
                     f"{f(r.get('speedup_compile'))} | {r.get('best_kind') or '-'} {r.get('assembly') or ''} | "
                     f"{r.get('error_class') or ''} |")
search_log = out / "search" / "swish_residual" / "search.json"
if search_log.is_file():
    s = json.loads(search_log.read_text())
    best = s["best"]
    lines += ["", "## search: fragments on swish_residual, whole-program kernel withheld", "",
              f"- cost model: {s['cost_model']}"]
    for a in s["attempts"]:
        v = a["verdict"]
        t = v.get("candidate") or {}
        lines.append(f"- {a['kind']} {a['span']} {a.get('assembly') or ''}: accepted={a['accepted']}, "
                     f"cost={a['cost']}, predicted={a.get('predicted_cost')}, candidate_ms={t.get('median_ms')}")
    if best:
        v = best["verdict"]
        lines.append(f"- best: {best['kind']} {best.get('assembly') or ''}, speedup vs eager "
                     f"{v.get('speedup_eager')}, vs torch.compile {v.get('speedup_compile')}")
(out / "RESULTS.md").write_text("\n".join(line for line in lines if not line.startswith("wrote ")) + "\n")
print("\n".join(lines[:4]))
print("\n".join(line for line in buf.getvalue().rstrip().splitlines() if not line.startswith("wrote ")))
EOF
