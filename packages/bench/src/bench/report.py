"""Reports of a bench run: console table, summary.json, results.csv, speedups.png and a W&B run.

`table(summary_by_level)` is the console table (also used by `bench.merge`); `write_report` writes all
of it from the rows of `results.jsonl`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from bench.columns import CSV_FIELDS
from bench.metrics import BASELINES, P_VALUES, by_level
from bench.plots import speedup_plot
from bench.wandb_log import log_run


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table(levels: dict[str, dict], label: str = "level") -> str:
    """A fixed-width table: one line per level (or run), accuracy, fast_p and geomean per baseline.

    >>> print(table({"all": {"tasks": 2, "correct": 1, "accuracy": 0.5,
    ...     "fast_0_eager": 0.5, "fast_1_eager": 0.5,
    ...     "fast_1.5_eager": 0.0, "fast_2_eager": 0.0, "geomean_speedup_eager": 1.2, "fast_0_compile": 0.5,
    ...     "fast_1_compile": 0.0, "fast_1.5_compile": 0.0, "fast_2_compile": 0.0,
    ...     "geomean_speedup_compile": None}}).splitlines()[2])
    all         2     1  0.50 | 0.50 0.50 0.00 0.00  1.20 | 0.50 0.00 0.00 0.00     -
    """
    head = f"{label:<7} {'tasks':>5} {'ok':>5}  {'acc':>4} |"
    sub = (
        " " * (len(head) - 1) + "|" + "|".join(f" vs {b}".ljust(27) for b in ("eager", "torch.compile")) + "|"
    )
    for _ in BASELINES:
        head += " " + " ".join(f"f{p:g}".rjust(4) for p in P_VALUES) + f"  {'geo':>4} |"
    lines = [head.rstrip("|").rstrip(), sub.rstrip("|").rstrip()]
    for name, s in levels.items():
        line = f"{name:<7} {s['tasks']:>5} {s['correct']:>5}  {s['accuracy']:.2f} |"
        for baseline in BASELINES:
            line += " " + " ".join(f"{s[f'fast_{p:g}_{baseline}']:.2f}" for p in P_VALUES)
            geo = s[f"geomean_speedup_{baseline}"]
            line += f"  {_fmt(geo):>4} |"
        lines.append(line.rstrip("|").rstrip())
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in sorted(rows, key=lambda r: (r.get("level") or 0, r["task_id"])):
            writer.writerow({k: row.get(k) for k in CSV_FIELDS})


def _summary_path(out: Path, tasks: int, run_key: str | None) -> Path:
    """summary.json, unless it already covers more tasks under the same run key (a fuller run): then a
    subset or report-only run writes summary_subset.json beside it and leaves the fuller one alone."""
    path = out / "summary.json"
    try:
        old = json.loads(path.read_text())
        fuller = old.get("run_key") == run_key and old["levels"]["all"]["tasks"] > tasks
    except (OSError, ValueError, KeyError, TypeError):
        fuller = False
    return out / "summary_subset.json" if fuller else path


def write_report(
    rows: list[dict],
    out: Path,
    title: str = "",
    wandb_cfg: dict | None = None,
    config: dict | None = None,
    run_key: str | None = None,
) -> dict:
    """Write every report of `rows` into `out`; returns the summary (by level and "all")."""
    out = Path(out)
    levels = by_level(rows)
    timed = any(r.get("speedup_eager") is not None for r in rows)
    summary = {
        "title": title,
        "levels": levels,
        "timed": timed,
        "note": ""
        if timed
        else "no timing (CPU run: the verifier times only on GPU); fast_p>0 and geomean need a GPU run",
        "config": config or {},
        "run_key": run_key,
    }
    summary_path = _summary_path(out, len(rows), run_key)
    if summary_path.name != "summary.json":
        print(f"summary.json covers more tasks of this config; this report goes to {summary_path.name}")
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    write_csv(rows, out / "results.csv")
    plot = speedup_plot(rows, out / "speedups.png", title=title)
    print(f"\n{title}")
    print(table(levels))
    if not timed:
        print(f"note: {summary['note']}")
    every = levels["all"]
    if every.get("geomean_speedup_compile_max") is not None or every.get("timed_compile_max"):
        print("vs torch.compile max-autotune-no-cudagraphs: "
              f"geomean {_fmt(every['geomean_speedup_compile_max'])}, "
              f"faster on {every['fast_1_compile_max']:.2f} of all tasks "
              f"({every['timed_compile_max']} timed)")
    if timed and every.get("untimed_reasons"):
        print("accepted without a speedup: "
              + ", ".join(f"{k} x{v}"
                          for k, v in sorted(every["untimed_reasons"].items(), key=lambda kv: -kv[1])))
    failures = levels["all"]["error_classes"]
    if failures:
        print(
            "failures: " + ", ".join(f"{k} x{v}" for k, v in sorted(failures.items(), key=lambda kv: -kv[1]))
        )
    print(f"wrote {summary_path}, {out / 'results.csv'}, {plot}")
    if wandb_cfg and wandb_cfg.get("enabled", True):
        log_run(rows, levels, plot, out, wandb_cfg, title, config or {})
    return summary
