"""Verifier benchmark: throughput (cold and steady state), timing repeatability, eager/compile baselines.

    # GPU (what scripts/gpu_verify.sh runs on the H100):
    python benchmarks/verify/bench_verify.py --workers-per-gpu 12 --rounds 8 --out benchmarks/verify/results_gpu.json
    # CPU, Triton interpreter (2 cores here):
    python benchmarks/verify/bench_verify.py --rounds 2 --out benchmarks/verify/results_cpu.json

Phases, all on the fixture suite (13 tasks with correct candidates):
- cold: an empty Triton cache and a fresh verifier; every candidate compiles from scratch.
- steady: `rounds` x 13 distinct programs (each candidate with a unique trailing comment, so the verdict
  cache misses while Triton's kernel cache is warm, as in an RL run where kernels repeat), references
  already cached. Reported as candidates per second per GPU.
- repeatability (GPU): two separate verifiers (fresh worker processes) time the same candidates;
  median-to-median difference per task.
- baselines (GPU): eager and torch.compile per task, with the candidate, in the same process.
Prints a table last and writes everything to --out as JSON.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers-per-gpu", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--scale", type=int, default=4,
                    help="multiply the fixtures' batch-like sizes by this for the repeatability/baseline phase")
    ap.add_argument("--no-compile-baseline", action="store_true",
                    help="skip the torch.compile baseline in the repeatability phase (saves its compile time)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="drt_triton_cache_")  # cold start, inherited
    import torch

    from verify import Verifier, VerifyConfig
    from verify.fixtures import fixture_pairs

    gpu = torch.cuda.is_available()
    pairs = fixture_pairs()
    res = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "device": torch.cuda.get_device_name(0) if gpu else f"cpu ({os.cpu_count()} cores, Triton interpreter)",
           "torch": torch.__version__, "python": platform.python_version(), "command": " ".join(sys.argv),
           "n_tasks": len(pairs)}
    import triton

    res["triton"] = triton.__version__
    cfg = {"timing": True}
    with Verifier(VerifyConfig(**cfg), workers_per_gpu=args.workers_per_gpu, cache=False) as v:
        res["workers"] = v.workers
        t0 = time.perf_counter()
        cold = v.verify_many(pairs)
        res["cold_wall_s"] = time.perf_counter() - t0
        res["cold_accepted"] = sum(x.accepted for x in cold)
        res["cold_per_candidate_s"] = {t.id: round(x.wall_s, 3) for (t, _), x in zip(pairs, cold)}
        steady_pairs = [(t, f"{c}\n# variant {r}\n") for r in range(args.rounds) for t, c in pairs]
        t0 = time.perf_counter()
        steady = v.verify_many(steady_pairs, progress=True, desc="steady")
        wall = time.perf_counter() - t0
        res["worker_starts"] = v.worker_starts()  # kept workers: stays at `workers` unless one retired
    n_dev = max(1, torch.cuda.device_count()) if gpu else 1
    res["steady_candidates"] = len(steady_pairs)
    res["steady_wall_s"] = wall
    res["steady_accepted"] = sum(x.accepted for x in steady)
    res["steady_cand_per_s"] = len(steady_pairs) / wall
    res["steady_cand_per_s_per_device"] = len(steady_pairs) / wall / n_dev
    res["steady_rejections"] = sorted({f"{x.task_id}:{x.error_class}" for x in steady if not x.accepted})
    res["steady_phase_median_s"] = {k: statistics.median(x.phases.get(k, 0.0) for x in steady)
                                    for k in ("setup", "load", "trials", "noop", "timing")}
    res["cold_phase_median_s"] = {k: statistics.median(x.phases.get(k, 0.0) for x in cold)
                                  for k in ("setup", "load", "trials", "noop", "timing")}
    rows = []
    if gpu:
        from dataclasses import replace

        from verify.inputs import scale_sizes

        res["scale"] = args.scale
        scaled = [(replace(t, code=scale_sizes(t.code, args.scale)), c) for t, c in pairs]
        runs = []
        for _ in range(2):
            with Verifier(VerifyConfig(compile_baseline=not args.no_compile_baseline), workers_per_gpu=args.workers_per_gpu, cache=False) as v:
                runs.append(v.verify_many(scaled, return_exceptions=True))
        for (t, _), a, b in zip(pairs, *runs):
            if isinstance(a, Exception) or isinstance(b, Exception):
                rows.append({"task": t.id, "error": str(a if isinstance(a, Exception) else b)[:200]})
                continue
            if not (a.timed and b.timed):
                rows.append({"task": t.id, "error": f"{a.error_class or ''} {b.error_class or ''}"})
                continue
            diff = abs(a.candidate.median_ms - b.candidate.median_ms) / a.candidate.median_ms
            rows.append({"task": t.id, "cand_ms_run1": a.candidate.median_ms, "cand_ms_run2": b.candidate.median_ms,
                         "cand_iqr_ms": a.candidate.iqr_ms, "repeat_diff": diff, "cand_host_ms": a.candidate.host_ms,
                         "eager_ms": a.eager.median_ms, "compile_ms": a.compiled.median_ms if a.compiled else None,
                         "speedup_eager": a.speedup_eager, "speedup_compile": a.speedup_compile,
                         "eager_repeat_diff": abs(a.eager.median_ms - b.eager.median_ms) / a.eager.median_ms})
        diffs = [r["repeat_diff"] for r in rows if "repeat_diff" in r]
        res["repeat_median_diff"] = statistics.median(diffs) if diffs else None
        res["repeat_max_diff"] = max(diffs) if diffs else None
        res["repeat_within_3pct"] = sum(d <= 0.03 for d in diffs)
    res["per_task"] = rows
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)

    if rows:
        print(f"repeatability and baselines on the fixtures with batch sizes x{args.scale}")
    print(f"\n== verifier benchmark: {res['device']}, torch {res['torch']}, triton {res['triton']}, "
          f"{res['workers']} workers ==")
    if rows:
        print(f"{'task':28s} {'cand ms':>9s} {'run2 ms':>9s} {'diff':>6s} {'eager ms':>9s} {'compile ms':>10s} "
              f"{'vs eager':>8s} {'vs comp':>8s}")
        for r in rows:
            if "error" in r:
                print(f"{r['task']:28s} not timed: {r['error']}")
                continue
            print(f"{r['task']:28s} {r['cand_ms_run1']:9.4f} {r['cand_ms_run2']:9.4f} {100 * r['repeat_diff']:5.1f}% "
                  f"{r['eager_ms']:9.4f} {r['compile_ms'] or float('nan'):10.4f} {r['speedup_eager']:8.2f} "
                  f"{(r['speedup_compile'] or float('nan')):8.2f}")
        print(f"repeatability: median diff {100 * res['repeat_median_diff']:.2f}%, max {100 * res['repeat_max_diff']:.2f}%, "
              f"{res['repeat_within_3pct']}/{len(diffs)} tasks within 3%")
    print(f"cold (empty Triton cache): {len(pairs)} candidates in {res['cold_wall_s']:.1f} s, "
          f"{res['cold_accepted']} accepted; median phases (s): "
          + ", ".join(f"{k} {v:.3f}" for k, v in res["cold_phase_median_s"].items()))
    print("steady median phases (s): " + ", ".join(f"{k} {v:.3f}" for k, v in res["steady_phase_median_s"].items()))
    print(f"steady: {len(steady_pairs)} candidates in {wall:.1f} s = {res['steady_cand_per_s']:.2f} cand/s "
          f"({res['steady_cand_per_s_per_device']:.2f} per {'GPU' if gpu else 'CPU machine'}), "
          f"{res['steady_accepted']} accepted, {res['worker_starts']} worker server processes started ({res['workers']} slots)")


if __name__ == "__main__":
    main()
