"""Timing repeatability pooled over several benchmark runs: every pair of separate verifiers compared.

`bench_verify.py` reports, per run, the spread of a task's median over that run's verifiers (max/min - 1,
the worst pair). This pools the medians of several runs' JSON files (one value per verifier process) and
counts, per task, the pairs of separate runs whose medians differ by more than the threshold: the issue's
criterion ("the same candidate timed in two separate runs") over every pair, within and across runs.

    python benchmarks/verify/repeat_pairs.py benchmarks/verify/results_gpu_h200_locked_run3*_2026-12-03.json \
        --out benchmarks/verify/repeat_pairs_h200_locked_2026-12-03.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path


def diff(a: float, b: float) -> float:
    return max(a, b) / min(a, b) - 1.0


def pool(files: list[str], scale: str) -> tuple[dict[str, list[float]], list[dict]]:
    """Per task, the candidate medians (ms) of every verifier of every file; per file, its own summary."""
    medians: dict[str, list[float]] = {}
    runs = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            sys.exit(f"repeat_pairs: no such file {f}: pass the JSON files bench_verify.py wrote (--out)")
        data = json.loads(path.read_text())
        phase = data.get("repeatability", {}).get(scale)
        if phase is None:
            have = ", ".join(data.get("repeatability", {})) or "none"
            sys.exit(f"repeat_pairs: {f} has no repeatability phase at scale {scale!r} (it has: {have}); "
                     "pick one with --scale")
        for t in phase["per_task"]:
            medians.setdefault(t["task"], []).extend(t["cand_ms_runs"])
        runs.append({"file": path.name, "date": data.get("date"), "verifiers": phase["runs"],
                     "max_diff": phase["max_diff"], "within_3pct": phase["within_3pct"],
                     "timed_tasks": phase["timed_tasks"]})
    return medians, runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="results JSON files of bench_verify.py")
    ap.add_argument("--scale", default="4", help="which repeatability phase of each file (default 4)")
    ap.add_argument("--threshold", type=float, default=0.03)
    ap.add_argument("--out", help="write the table as JSON here")
    args = ap.parse_args()
    medians, runs = pool(args.files, args.scale)
    rows = []
    for task, v in medians.items():
        pairs = list(itertools.combinations(v, 2))
        over = sum(diff(a, b) > args.threshold for a, b in pairs)
        rows.append({"task": task, "verifiers": len(v), "min_us": min(v) * 1e3, "max_us": max(v) * 1e3,
                     "spread": diff(min(v), max(v)), "pairs": len(pairs), "pairs_over": over})
    n_pairs = sum(r["pairs"] for r in rows)
    n_over = sum(r["pairs_over"] for r in rows)
    print(f"{'task':28s} {'verifiers':>9s} {'min us':>10s} {'max us':>10s} {'spread':>7s} "
          f"{'pairs over':>11s}")
    for r in rows:
        print(f"{r['task']:28s} {r['verifiers']:9d} {r['min_us']:10.3f} {r['max_us']:10.3f} "
              f"{r['spread']:7.2%} "
              f"{r['pairs_over']:5d}/{r['pairs']}")
    for r in runs:
        print(f"run {r['file']}: {r['verifiers']} verifiers, worst pair {r['max_diff']:.2%}, "
              f"{r['within_3pct']}/{r['timed_tasks']} tasks within 3 %")
    print(f"pairs of separate verifiers over {args.threshold:.0%}: {n_over} of {n_pairs} "
          f"({n_over / max(1, n_pairs):.2%}); worst {max(r['spread'] for r in rows):.2%}")
    if args.out:
        Path(args.out).write_text(json.dumps({"scale": args.scale, "threshold": args.threshold, "runs": runs,
                                              "tasks": rows, "pairs": n_pairs, "pairs_over": n_over},
                                             indent=1) + "\n")


if __name__ == "__main__":
    main()
