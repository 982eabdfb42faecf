"""RESULTS.md of one KernelBench level from a bench run's results.jsonl: the command, device and versions, the
counts the KernelBench issues track (accepted, faster than eager / torch.compile, geometric means) and a
per-task table (accepted, stage and error class, speedups). Prints the markdown; the summary line goes to
stderr too.

    python benchmarks/kernelbench/results_md.py RUN/results.jsonl --level 2 --kb ../shared/KernelBench \
        --command "OUT=... bash scripts/gpu_kernelbench.sh" > RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from collections import Counter
from pathlib import Path


def _rows(path: Path) -> list[dict]:
    by_id = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "task_id" in row:
            by_id[row["task_id"]] = row
    return sorted(by_id.values(), key=lambda r: _problem_id(r))


def _problem_id(row: dict) -> int:
    name = row["task_id"].rsplit("/", 1)[-1]
    head = name.split("_", 1)[0]
    return int(head) if head.isdigit() else 10**6


def _geo(xs: list[float]) -> float | None:
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _versions() -> str:
    try:
        import torch
        import triton

        dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (Triton interpreter)"
        return f"{dev}; torch {torch.__version__}, triton {triton.__version__}"
    except ImportError:
        return "unknown (torch not importable where this report was written)"


def render(rows: list[dict], level: int, total: int | None, command: str) -> tuple[str, str]:
    ok = [r for r in rows if r.get("accepted")]
    eager = [r.get("speedup_eager") for r in ok]
    comp = [r.get("speedup_compile") for r in ok]
    faster_e = sum(1 for s in eager if s and s > 1.0)
    faster_c = sum(1 for s in comp if s and s > 1.0)
    untimed = sum(1 for r in ok if not r.get("speedup_eager"))
    cmax = [r.get("speedup_compile_max") for r in ok]
    with_max = any(s is not None for s in cmax)
    why = Counter(r.get("speedup_missing_reason") or "no reason recorded"
                  for r in ok if not r.get("speedup_eager"))
    n = total or len(rows)
    summary = (
        f"level {level}: {len(rows)}/{n} tasks finished, {len(ok)} accepted; faster than eager {faster_e}, "
        f"faster than torch.compile {faster_c} (of all {n}); "
        f"geomean over accepted: {_f(_geo(eager))}x eager, "
        f"{_f(_geo(comp))}x torch.compile; accepted without a speedup: {untimed}"
    )
    if with_max:
        summary += ("; vs torch.compile max-autotune-no-cudagraphs: "
                    f"faster {sum(1 for s in cmax if s and s > 1.0)}"
                    f" (of all {n}), geomean {_f(_geo(cmax))}x")
    stages = Counter(f"{r.get('stage')}/{r.get('error_class')}" for r in rows if not r.get("accepted"))
    lines = [
        f"# KernelBench level {level}, generator=teacher",
        "",
        f"- device: {_versions()}",
        f"- written: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- command: `{command}`",
        "- speedup = baseline time / candidate time, both measured in the same verification (same process,"
        " same inputs); '-' = not timed",
        "",
        f"**{summary}**",
        "",
        "failures by stage/error class: "
        + (", ".join(f"{k} x{v}" for k, v in stages.most_common()) or "none"),
        "",
        "accepted without a speedup, by reason: "
        + (", ".join(f"{k} x{v}" for k, v in why.most_common()) or "none"),
        "",
        "| task | accepted | stage / error | vs eager | vs torch.compile | "
        + ("vs max-autotune | " if with_max else "") + "message |",
        "|---|---|---|---|---|" + ("---|" if with_max else "") + "---|",
    ]
    for r in rows:
        msg = ((r.get("message") or r.get("speedup_missing_reason") or "")
               .replace("|", "\\|").replace("\n", " ")[:140])
        where = "" if r.get("accepted") else f"{r.get('stage')} / {r.get('error_class')}"
        lines.append(
            f"| {r.get('name') or r['task_id']} | {'yes' if r.get('accepted') else 'no'} | {where} | "
            f"{_f(r.get('speedup_eager'))} | {_f(r.get('speedup_compile'))} | "
            + (f"{_f(r.get('speedup_compile_max'))} | " if with_max else "") + f"{msg} |"
        )
    return "\n".join(lines) + "\n", summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--level", type=int, required=True)
    ap.add_argument("--kb", type=Path, help="KernelBench checkout: counts the level's tasks")
    ap.add_argument("--command", default="bash scripts/gpu_kernelbench.sh")
    a = ap.parse_args()
    if not a.results.is_file():
        print(f"no results at {a.results}: the level has not run yet", file=sys.stderr)
        return 2
    total = len(list((a.kb / f"level{a.level}").glob("*.py"))) if a.kb else None
    text, summary = render(_rows(a.results), a.level, total, a.command)
    print(text, end="")
    print(summary, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
