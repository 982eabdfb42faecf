"""Run a generator and a strategy over a suite through the verifier, resumably.

    python -m bench suite=fixtures strategy=best_of_n generator=replay generator.path=replay.jsonl
    python -m bench suite=kernelbench suite.path=~/KernelBench suite.levels=[2] generator=openai ...

Each finished task appends one row to `<out_dir>/results.jsonl` (and its full search log to
`<out_dir>/logs/`); a rerun with the same out_dir skips the tasks finished under the same run key (`run_key`:
a digest of the strategy, generator and verifier config, everything that changes a verdict). The report
(console table, summary.json, results.csv, speedups.png, a W&B run) is rebuilt from the rows of that key at
the end, or alone with `report_only=true`. `tasks_in_flight` searches run at once (their timings still take
turns on the GPU).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from bench.columns import verdict_columns
from bench.report import write_report
from bench.store import ResultStore
from search.judge import Judge
from search.result import SearchResult
from verify.config import VerifyConfig
from verify.task import Task, TaskError


def result_row(task: Task, result: SearchResult, run_info: dict) -> dict:
    """The flat row the metrics and reports read."""
    best = result.best
    v = best.verdict if best else None
    last = result.attempts[-1].verdict if result.attempts else None
    shown = v or last
    return {
        "task_id": task.id,
        "level": task.level,
        "source": task.source,
        "ops": list(task.ops),
        "name": task.meta.get("name", task.id.rsplit("/", 1)[-1]),
        "accepted": bool(v and v.accepted),
        "stage": None if v and v.accepted else (shown.stage if shown else "generate"),
        "error_class": None if v and v.accepted else (shown.error_class if shown else "no_completion"),
        "message": "" if v and v.accepted else (shown.message if shown else "the generator returned nothing"),
        "speedup_eager": v.speedup_eager if v else None,
        "speedup_compile": v.speedup_compile if v else None,
        "candidate_ms": v.candidate.median_ms if v and v.candidate else None,
        "eager_ms": v.eager.median_ms if v and v.eager else None,
        "compiled_ms": v.compiled.median_ms if v and v.compiled else None,
        **verdict_columns(v),
        "kernel_launches": v.kernel_launches if v else None,
        "torch_ops": list(v.torch_ops) if v else [],
        "best_kind": best.kind if best else None,
        "assembly": best.assembly if best else None,
        "cost": best.cost if best else None,
        "cost_unit": result.cost_unit,
        "attempts": len(result.attempts),
        "accepted_attempts": sum(a.verdict.accepted for a in result.attempts),
        "samples": result.samples,
        "generate_s": result.generate_s,
        "verify_s": result.verify_s,
        "wall_s": result.wall_s,
        "backend": shown.backend if shown else None,
        "device": shown.device if shown else None,
        **run_info,
    }


def broken_task_row(task: Task, error: Exception, run_info: dict) -> dict:
    """A task that does not run itself: counted as a failure at stage `task`."""
    return {
        "task_id": task.id,
        "level": task.level,
        "source": task.source,
        "ops": list(task.ops),
        "name": task.meta.get("name", task.id),
        "accepted": False,
        "stage": "task",
        "error_class": "task_error",
        "message": str(error)[:400],
        "speedup_eager": None,
        "speedup_compile": None,
        **run_info,
    }


def run_key(cfg: DictConfig) -> str:
    """Digest of everything that changes a verdict: the suite's kind (task ids scope the tasks), strategy,
    generator, and the verifier config's own digest. Task selection (limit, names, levels), worker counts,
    paths and logging are left out, so a subset run or a rerun with more workers resumes the same rows."""
    parts = {
        "suite": OmegaConf.select(cfg, "suite._target_"),
        "strategy": OmegaConf.to_container(cfg.strategy, resolve=True),
        "generator": OmegaConf.to_container(cfg.generator, resolve=True),
        "verify": VerifyConfig.from_mapping(OmegaConf.to_container(cfg.verify, resolve=True)).digest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:150]


def run(cfg: DictConfig) -> list[dict]:
    os.environ.setdefault("WANDB_MODE", "offline")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suite = instantiate(cfg.suite)
    tasks = suite.tasks()
    key = run_key(cfg)
    store = ResultStore(out / "results.jsonl", run_key=key)
    done = store.done()
    todo = [] if cfg.report_only else [t for t in tasks if t.id not in done]
    config = OmegaConf.to_container(cfg, resolve=True)
    foreign = store.foreign()
    print(
        f"suite {suite.name}: {len(tasks)} tasks, {len(tasks) - len([t for t in tasks if t.id not in done])} "
        f"already done in {store.path} (run key {key})"
        + (f"; {foreign} rows made under another config are ignored" if foreign else "")
    )
    strategy = instantiate(cfg.strategy)
    run_info = {
        "suite": suite.name,
        "strategy": strategy.name,
        "generator": get_class(cfg.generator._target_).name,
        "run_name": cfg.run_name,
    }
    wandb_cfg = {**OmegaConf.to_container(cfg.wandb, resolve=True), "run_key": key}
    if wandb_cfg.get("group") is None and HydraConfig.initialized():
        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            wandb_cfg["group"] = Path(hc.sweep.dir).name
    if todo:
        (out / "config.json").write_text(json.dumps(config, indent=2, default=str))
        generator = instantiate(cfg.generator)
        try:
            if cfg.tasks_in_flight > 1 and not generator.thread_safe:
                raise ValueError(
                    f"generator {generator.name} serves one search at a time; set tasks_in_flight=1"
                )
            verify_cfg = OmegaConf.to_container(cfg.verify, resolve=True)
            with Judge(verify_cfg, workers=cfg.workers) as judge:
                _run_tasks(
                    todo,
                    strategy,
                    generator,
                    judge,
                    store,
                    out / "logs" if cfg.save_logs else None,
                    run_info,
                    cfg.tasks_in_flight,
                    suite.name,
                )
        finally:
            generator.close()
    ids = {t.id for t in tasks}
    rows = [r for r in store.rows() if r["task_id"] in ids]
    write_report(
        rows,
        out,
        title=f"{suite.name} | {run_info['strategy']} | {run_info['generator']}",
        wandb_cfg=wandb_cfg,
        config=config,
        run_key=key,
    )
    return rows


def _run_tasks(todo, strategy, generator, judge, store, logs, run_info, in_flight, name) -> None:
    """Search every task (`in_flight` at a time), appending each row as soon as its task finishes."""
    if logs is not None:
        logs.mkdir(exist_ok=True)
    lock = threading.Lock()

    def one(task: Task) -> dict:
        t0 = time.monotonic()
        try:
            result = strategy.search(task, generator, judge)
        except TaskError as e:
            row = broken_task_row(task, e, run_info)
        else:
            if logs is not None:
                (logs / f"{_safe(task.id)}.json").write_text(json.dumps(result.to_dict(), default=str))
            row = result_row(task, result, run_info)
        row["task_wall_s"] = time.monotonic() - t0
        with lock:
            store.append(row)
        return row

    correct = 0
    pool = ThreadPoolExecutor(max(1, in_flight), thread_name_prefix="bench")
    try:
        futures = [pool.submit(one, t) for t in todo]
        bar = tqdm(as_completed(futures), total=len(futures), desc=f"bench {name}", unit="task")
        for future in bar:
            correct += future.result()["accepted"]
            bar.set_postfix(correct=correct)
    except BaseException:
        # Ctrl-C or a failing task: start nothing new; searches in flight finish and keep their rows
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
