"""Benchmarks of CSP-DAG synthesis: generation rate per solver and level, and the 100k-program RL set.

    .venv/bin/python benchmarks/synth/bench_synth.py rate        # -> benchmarks/synth/results.json
    .venv/bin/python benchmarks/synth/bench_synth.py rl100k      # -> stats_100k.json, op_histogram.png

`rate` times the whole per-program pipeline in one process on one core (operator sampling, wiring, shape
solving, printing, hashing, meta forward, and a real CPU forward for programs under the run cap), for
levels 1, 2, 5 and 20 with each solver of the `solver` config group. `rl100k` runs
`python -m synth level=[1,2,5] n=[20000,60000,20000]` with 2 workers (data under /tmp/synth_rl100k,
only statistics are committed) and plots the operator histogram.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LEVELS = [1, 2, 5, 20]
# programs per (solver, level): the exact solvers take seconds per program
COUNTS = {"fast": {1: 300, 2: 300, 5: 300, 20: 100}, "cpsat": {1: 20, 2: 20, 5: 20, 20: 10},
          "pulp": {1: 10, 2: 10, 5: 5, 20: 2}}


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize

    with initialize(version_base=None, config_path=None):
        return hydra_compose("synth", overrides=overrides)


def rate() -> dict:
    import torch
    from hydra.utils import instantiate

    from synth.generate import make_program
    from synth.sampler import Sampler
    from synth.validate import Validator

    torch.set_num_threads(1)
    results = {"command": "python benchmarks/synth/bench_synth.py rate", "machine": platform.processor() or
               platform.machine(), "cores_used": 1, "note": "full pipeline per program incl. validation; "
               "shared 2-core machine, other jobs running", "solvers": {}}
    print(f"{'solver':8} {'level':>5} {'programs':>8} {'prog/s/core':>12} {'s/prog':>8} {'p95':>8} "
          f"{'max':>8}")
    for name, counts in COUNTS.items():
        cfg = compose([f"solver={name}"])
        sampler, validator = Sampler(instantiate(cfg.solver), **cfg.sampler), Validator(**cfg.validate)
        make_program(sampler, validator, 99, 2, 0)  # warm-up: imports and first-call costs
        rows = {}
        for level in LEVELS:
            times, modes, failed = [], {}, 0
            for i in range(counts[level]):
                start = time.perf_counter()
                try:
                    rec = make_program(sampler, validator, seed=0, level=level, index=i)
                    modes[rec.mode] = modes.get(rec.mode, 0) + 1
                except RuntimeError:
                    failed += 1
                times.append(time.perf_counter() - start)
            times.sort()
            total = sum(times)
            rows[level] = {"programs": len(times), "failed": failed,
                           "programs_per_s_per_core": len(times) / total,
                           "s_per_program": total / len(times), "p95_s": times[int(0.95 * (len(times) - 1))],
                           "max_s": times[-1], "modes": modes}
            r = rows[level]
            print(f"{name:8} {level:>5} {len(times):>8} {r['programs_per_s_per_core']:>12.2f} "
                  f"{r['s_per_program']:>8.4f} {r['p95_s']:>8.4f} {r['max_s']:>8.4f}", flush=True)
        results["solvers"][name] = rows
    (HERE / "results.json").write_text(json.dumps(results, indent=1))
    return results


def rl100k(out: str = "/tmp/synth_rl100k") -> dict:
    import shutil

    from synth.cli import run

    shutil.rmtree(out, ignore_errors=True)
    cfg = compose(["level=[1,2,5]", "n=[20000,60000,20000]", f"out={out}", "workers=2"])
    summary = run(cfg)
    keep = ["programs", "levels", "wall_s", "programs_per_s", "workers", "generated", "duplicates",
            "dedup_rate", "excluded", "failed", "failures", "modes", "ran_cpu", "operators", "op_count_min",
            "op_count_max", "chi2", "chi2_dof", "chi2_p", "pairs_feasible", "pairs_seen", "pair_coverage",
            "missing_pairs", "op_counts"]
    stats = {"command": "python benchmarks/synth/bench_synth.py rl100k", **{k: summary[k] for k in keep}}
    (HERE / "stats_100k.json").write_text(json.dumps(stats, indent=1))
    plot(stats["op_counts"], HERE / "op_histogram.png", stats)
    return stats


def plot(counts: dict, path: Path, stats: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(counts)
    fig, ax = plt.subplots(figsize=(18, 5))
    ax.bar(range(len(names)), [counts[n] for n in names], color="tab:blue")
    expected = sum(counts.values()) / len(names)
    ax.axhline(expected, color="tab:red", lw=1, label=f"uniform expectation ({expected:.0f})")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("occurrences")
    ax.set_title(f"Operator histogram, {stats['programs']} programs (levels 1/2/5 = 20k/60k/20k): "
                 f"chi2 = {stats['chi2']:.1f} (dof {stats['chi2_dof']}), p = {stats['chi2_p']:.3f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "rate"
    {"rate": rate, "rl100k": rl100k}[what]()
