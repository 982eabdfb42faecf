"""Log a bench run to Weights & Biases: the results table, the per-level summary and the plot.

Offline by default (`WANDB_MODE=offline`, or `wandb.mode`); `wandb sync <out>/wandb/...` uploads later.
A rerun of the same out_dir and run key continues the same W&B run (its id is derived from both), and the
jobs of one Hydra multirun share a W&B group (the sweep folder's name, or `wandb.group`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bench.columns import CSV_FIELDS


def log_run(
    rows: list[dict], levels: dict, plot: Path, out: Path, cfg: dict, title: str, config: dict
) -> None:
    import wandb

    mode = cfg.get("mode") or os.environ.get("WANDB_MODE", "offline")
    run_id = hashlib.sha256(f"{Path(out).resolve()}|{cfg.get('run_key')}".encode()).hexdigest()[:16]
    run = wandb.init(
        project=cfg.get("project", "drtriton-bench"),
        name=cfg.get("name") or title.replace(" | ", "-"),
        group=cfg.get("group"),
        job_type="bench",
        id=run_id,
        resume="allow",
        dir=str(out),
        mode=mode,
        config=config,
        reinit="finish_previous",
    )
    try:
        table = wandb.Table(
            columns=list(CSV_FIELDS), data=[[_cell(r.get(k)) for k in CSV_FIELDS] for r in rows]
        )
        summary_cols = ["level"] + [k for k in levels["all"] if not isinstance(levels["all"][k], dict)]
        summary = wandb.Table(
            columns=summary_cols,
            data=[[lv] + [_cell(s.get(k)) for k in summary_cols[1:]] for lv, s in levels.items()],
        )
        run.log({"results": table, "summary_by_level": summary, "speedups": wandb.Image(str(plot))})
        for key, value in levels["all"].items():
            if not isinstance(value, dict):
                run.summary[key] = value
    finally:
        run.finish()


def _cell(value):
    if isinstance(value, (list, dict)):
        return str(value)
    return value
