"""Merge bench runs (e.g. the jobs of a Hydra multirun) into one comparison table.

    python -m bench.merge runs/bench/a runs/bench/b --out runs/bench/compare
    python -m bench.merge multirun/2026-01-01/12-00-00   # every summary.json below it

Each run is a folder with `summary.json` (written by `python -m bench`); the table has one line per run
(its title: suite | strategy | generator, or its folder), and `comparison.json`/`comparison.csv` the same.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from bench.report import table


def find_runs(paths: list[str]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if (p / "summary.json").is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(s.parent for s in p.rglob("summary.json"))
        else:
            raise FileNotFoundError(f"{p} is neither a bench run (no summary.json) nor a folder of runs")
    if not found:
        raise FileNotFoundError(f"no summary.json under {', '.join(paths)}; run `python -m bench` first")
    return found


def merge(paths: list[str], out: str | None = None, level: str = "all") -> dict[str, dict]:
    """{run label: summary of `level`} for every run found under `paths`; writes comparison files to `out`."""
    runs: dict[str, dict] = {}
    for run in find_runs(paths):
        summary = json.loads((run / "summary.json").read_text())
        label = summary.get("title") or run.name
        if label in runs:
            label = f"{label} ({run})"
        if level not in summary["levels"]:
            continue
        runs[label] = summary["levels"][level]
    names = {f"R{i}": label for i, label in enumerate(runs)}
    print(table({k: runs[v] for k, v in names.items()}, label="run"))
    for k, v in names.items():
        print(f"  {k} = {v}")
    if out:
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "comparison.json").write_text(json.dumps(runs, indent=2, default=str))
        keys = [
            k for k in next(iter(runs.values()), {}) if not isinstance(next(iter(runs.values()))[k], dict)
        ]
        with (out_dir / "comparison.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["run", *keys])
            for label, s in runs.items():
                w.writerow([label, *[s.get(k) for k in keys]])
        print(f"wrote {out_dir / 'comparison.json'} and {out_dir / 'comparison.csv'}")
    return runs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.merge", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders, or folders to search for summary.json")
    ap.add_argument("--out", help="folder for comparison.json and comparison.csv")
    ap.add_argument("--level", default="all", help="which level's summary to compare (all, L1, L2, ...)")
    args = ap.parse_args(argv)
    merge(args.runs, args.out, args.level)


if __name__ == "__main__":
    main()
