"""Verifier benchmark: throughput (cold and steady state), timing repeatability, eager/compile baselines.

    # GPU (what scripts/gpu_verify.sh runs on the H100):
    python benchmarks/verify/bench_verify.py --workers-per-gpu 12 --rounds 8 \\
        --out benchmarks/verify/results_gpu.json
    # CPU, Triton interpreter (2 cores here):
    python benchmarks/verify/bench_verify.py --rounds 2 --out benchmarks/verify/results_cpu.json

Phases, all on the fixture suite (13 tasks with correct candidates):
- cold: an empty Triton cache and a fresh verifier; every candidate compiles from scratch.
- steady: `rounds` x 13 distinct programs (each candidate with a unique trailing comment, so the verdict
  cache misses while Triton's kernel cache is warm, as in an RL run where kernels repeat), references
  already cached. Reported as candidates per second per GPU.
- repeatability (GPU), once per --scale: --runs separate verifiers (fresh worker processes) time the same
  candidates; per task, the spread of their medians (max/min - 1).
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
    ap.add_argument("--scale", type=lambda v: v.split(","), default=["4", "64MiB"],
                    help="comma-separated sizes, one repeatability phase each (baselines with torch.compile "
                         "at the first): a factor for every fixture's size constants (4), or a target input "
                         "size (64MiB: per task, the largest power-of-two factor up to 64 whose inputs fit)")
    ap.add_argument("--no-compile-baseline", action="store_true",
                    help="skip the torch.compile baseline in the repeatability phase "
                         "(saves its compile time)")
    ap.add_argument("--l2-flush", choices=["write", "read"], default="write",
                    help="verify.l2_flush for every phase: fill the flush buffer (L2 left dirty) "
                         "or sum it (clean)")
    ap.add_argument("--input-copies", type=int, default=1,
                    help="verify.input_copies for every phase: timed calls rotate over this many copies "
                         "of the inputs")
    ap.add_argument("--timing-method", choices=["graph", "stream"], default="graph",
                    help="verify.timing_method for every phase: CUDA-graph replays (default) or call by call")
    ap.add_argument("--runs", type=int, default=2,
                    help="separate verifiers per repeatability phase (repeat_diff: max/min - 1 over them)")
    ap.add_argument("--skip-throughput", action="store_true",
                    help="only the repeatability phases "
                         "(e.g. to compare --l2-flush modes in one device call)")
    ap.add_argument("--skip-repeatability", action="store_true",
                    help="only the throughput phases (e.g. to repeat them in one device call)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a VerifyConfig field for every phase, e.g. --set kernel_cache=shared (repeatable)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="drt_triton_cache_")  # cold start, inherited
    import torch

    from verify.fixtures import fixture_pairs

    gpu = torch.cuda.is_available()
    pairs = fixture_pairs()
    cfg = {"timing": True, "l2_flush": args.l2_flush, "input_copies": args.input_copies,
           "timing_method": args.timing_method, **dict(_setting(kv) for kv in args.set)}
    res = {**{k: v for k, v in cfg.items() if k != "timing"},
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "device": (torch.cuda.get_device_name(0) if gpu
                      else f"cpu ({os.cpu_count()} cores, Triton interpreter)"),
           "torch": torch.__version__, "python": platform.python_version(), "command": " ".join(sys.argv),
           "n_tasks": len(pairs)}
    import triton

    res["triton"] = triton.__version__
    if not args.skip_throughput:
        throughput_phase(pairs, cfg, args, res, gpu)
    if gpu and not args.skip_repeatability:
        res["repeatability"] = {}
        for i, scale in enumerate(args.scale):
            # the torch.compile baseline at the first scale only (its compile time is the phase's main cost)
            with_compile = i == 0 and not args.no_compile_baseline
            res["repeatability"][scale] = repeat_phase(pairs, scale, with_compile, args.workers_per_gpu, cfg,
                                                       args.runs)
            save(res, args.out)
    print(f"\n== verifier benchmark: {res['device']}, torch {res['torch']}, triton {res['triton']}, "
          f"{res.get('workers', args.workers_per_gpu)} workers ==")
    for scale, rep in res.get("repeatability", {}).items():
        print_repeat(scale, rep)
    if "steady_wall_s" not in res:
        return
    print(f"cold (empty Triton cache): {len(pairs)} candidates in {res['cold_wall_s']:.1f} s, "
          f"{res['cold_accepted']} accepted; median phases (s): "
          + ", ".join(f"{k} {v:.3f}" for k, v in res["cold_phase_median_s"].items()))
    print("steady median phases (s): "
          + ", ".join(f"{k} {v:.3f}" for k, v in res["steady_phase_median_s"].items()))
    print(f"steady: {res['steady_candidates']} candidates in {res['steady_wall_s']:.1f} s = "
          f"{res['steady_cand_per_s']:.2f} cand/s "
          f"({res['steady_cand_per_s_per_device']:.2f} per {'GPU' if gpu else 'CPU machine'}), "
          f"{res['steady_accepted']} accepted, {res['worker_starts']} worker server processes started "
          f"({res['workers']} slots)")


def _setting(kv: str) -> tuple[str, object]:
    """`key=value` from --set, the value parsed as JSON where it is one (numbers, true/false)."""
    key, sep, value = kv.partition("=")
    if not sep:
        raise SystemExit(f"--set takes KEY=VALUE, got {kv!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def throughput_phase(pairs, cfg: dict, args, res: dict, gpu: bool) -> None:
    """Cold (empty Triton cache) and steady-state throughput of one verifier on the fixture pairs."""
    import torch

    from verify import Verifier, VerifyConfig

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
    save(res, args.out)  # throughput is kept even if a later phase runs out of time


def save(res: dict, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=2)


def input_bytes(code: str) -> int:
    """Bytes of the tensors a task's get_inputs() returns (run on the CPU)."""
    import torch

    ns: dict = {"__name__": "_sized_task"}
    exec(compile(code, "<task>", "exec"), ns)
    return sum(t.numel() * t.element_size() for t in ns["get_inputs"]() if isinstance(t, torch.Tensor))


def factor_for(code: str, scale: str) -> int:
    """The size factor for one task: `scale` itself ("4"), or for a target ("64MiB") the largest power of
    two up to 64 whose inputs stay within it."""
    from verify.inputs import scale_sizes

    if not scale.endswith("MiB"):
        return int(scale)
    target, factor = float(scale[:-3]) * 2**20, 1
    while factor < 64 and input_bytes(scale_sizes(code, factor * 2)) <= target:
        factor *= 2
    return factor


def repeat_phase(pairs, scale: str, with_compile: bool, workers_per_gpu: int, cfg: dict,
                 runs: int = 2) -> dict:
    """`runs` separate verifiers (fresh worker processes) time the same candidates on the fixtures with
    their size constants scaled (see factor_for); eager (and torch.compile) baselines from the first.
    A task's repeat_diff is max/min - 1 of its candidate's medians over the runs."""
    from dataclasses import replace

    from verify import Verifier, VerifyConfig
    from verify.inputs import scale_sizes

    factors = [factor_for(t.code, scale) for t, _ in pairs]
    scaled = [(replace(t, code=scale_sizes(t.code, f)), c) for (t, c), f in zip(pairs, factors)]
    results = []
    for _ in range(runs):
        with Verifier(VerifyConfig(**{**cfg, "compile_baseline": with_compile}),
                      workers_per_gpu=workers_per_gpu, cache=False) as v:
            results.append(v.verify_many(scaled, return_exceptions=True))
    rows = []
    for (t, _), f, *vs in zip(pairs, factors, *results):
        bad = [x for x in vs if isinstance(x, Exception) or not x.timed]
        if bad:
            x = bad[0]
            rows.append({"task": t.id, "factor": f,
                         "error": str(x)[:200] if isinstance(x, Exception) else f"{x.error_class or ''}"})
            continue
        a, cand, eager = vs[0], [x.candidate.median_ms for x in vs], [x.eager.median_ms for x in vs]
        rows.append({"task": t.id, "factor": f, "input_mib": input_bytes(scale_sizes(t.code, f)) / 2**20,
                     "cand_ms_run1": cand[0], "cand_ms_run2": cand[1 % runs], "cand_ms_runs": cand,
                     "cand_sm_mhz_runs": [x.candidate.sm_mhz for x in vs],
                     "cand_replay_ms_runs": [x.candidate.replay_ms for x in vs],
                     "timing_s_runs": [x.phases.get("timing") for x in vs],
                     "cand_iqr_ms": a.candidate.iqr_ms, "repeat_diff": max(cand) / min(cand) - 1,
                     "cand_host_ms": a.candidate.host_ms,
                     "eager_ms": a.eager.median_ms,
                     "compile_ms": a.compiled.median_ms if a.compiled else None,
                     "speedup_eager": a.speedup_eager, "speedup_compile": a.speedup_compile,
                     "eager_ms_runs": eager, "eager_repeat_diff": max(eager) / min(eager) - 1,
                     "methods": sorted({y.method for x in vs for y in (x.candidate, x.eager)}),
                     "timing_flags": [flag for x in vs for flag in x.timing_flags]})
    diffs = [r["repeat_diff"] for r in rows if "repeat_diff" in r]
    replay = [max(r["cand_replay_ms_runs"]) / min(r["cand_replay_ms_runs"]) - 1 for r in rows
              if "repeat_diff" in r and min(r["cand_replay_ms_runs"]) > 0]
    return {"replay_events_diffs": replay, "scale": scale, "compile_baseline": with_compile, "runs": runs,
            "per_task": rows, "median_diff": statistics.median(diffs) if diffs else None,
            "max_diff": max(diffs) if diffs else None,
            "within_3pct": sum(d <= 0.03 for d in diffs), "timed_tasks": len(diffs)}


def print_repeat(scale: str, rep: dict) -> None:
    nan = float("nan")
    print(f"repeatability and baselines on the fixtures, sizes {'x' if scale.isdigit() else 'up to '}{scale}")
    print(f"{'task':28s} {'x':>3s} {'cand ms':>9s} {'run2 ms':>9s} {'diff':>6s} {'eager ms':>9s} "
          f"{'compile ms':>10s} "
          f"{'vs eager':>8s} {'vs comp':>8s} method")
    for r in rep["per_task"]:
        if "error" in r:
            print(f"{r['task']:28s} {r['factor']:3d} not timed: {r['error']}")
            continue
        print(f"{r['task']:28s} {r['factor']:3d} {r['cand_ms_run1']:9.5f} {r['cand_ms_run2']:9.5f} "
              f"{100 * r['repeat_diff']:5.1f}% "
              f"{r['eager_ms']:9.4f} {r['compile_ms'] or nan:10.4f} {r['speedup_eager']:8.2f} "
              f"{(r['speedup_compile'] or nan):8.2f} {'+'.join(r.get('methods', []))}")
    timed = [r for r in rep["per_task"] if "error" not in r]
    print("candidate us per run: device spans | events around replays | SM MHz")
    for r in timed:
        print(f"  {r['task']:26s} " + " ".join(f"{1e3 * m:.3f}" for m in r["cand_ms_runs"]) + " | "
              + " ".join(f"{1e3 * x:.3f}" for x in r["cand_replay_ms_runs"]) + " | "
              + " ".join(f"{z:.0f}" for z in r["cand_sm_mhz_runs"]))
    phase = [t for r in timed for t in r.get("timing_s_runs", []) if t is not None]
    if phase:
        print(f"timing phase per verification: median {statistics.median(phase):.3f} s, "
              f"max {max(phase):.3f} s")
    if rep.get("replay_events_diffs"):
        d = rep["replay_events_diffs"]
        print(f"same replays timed by events alone: median diff {100 * statistics.median(d):.2f}%, max "
              f"{100 * max(d):.2f}%, {sum(x <= 0.03 for x in d)}/{len(d)} within 3%")
    if rep["timed_tasks"]:
        print(f"repeatability ({scale}): median diff {100 * rep['median_diff']:.2f}%, "
              f"max {100 * rep['max_diff']:.2f}%, "
              f"{rep['within_3pct']}/{rep['timed_tasks']} tasks within 3%")


if __name__ == "__main__":
    main()
