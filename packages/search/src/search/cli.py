"""`python -m search`: run one strategy with one generator on one task; write the best program and a log.

    python -m search task=path/to/task.py strategy=fragments generator=replay generator.path=replay.jsonl
    python -m search task=fixtures/softmax strategy=best_of_n strategy.n=8 generator=openai generator.model=M

`task` is a KernelBench-form .py file, or `fixtures/NAME` for one of the verifier's fixtures. Outputs go to
`out_dir`: `best.py` (the best verified program, when there is one) and `search.json` (every attempt with
its verdict and timing, the cost model, notes, and the config).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from search.judge import Judge
from search.result import SearchResult
from verify.candidate import extract_program
from verify.fixtures import fixture_task
from verify.task import Task


def load_task(spec: str) -> Task:
    """A task from a file path, or `fixtures/NAME` for a verifier fixture."""
    if spec is None:
        raise ValueError("no task given: pass task=PATH (a KernelBench-form .py file) or task=fixtures/NAME")
    if spec.startswith("fixtures/") and not Path(spec).exists():
        return fixture_task(spec.split("/", 1)[1])
    return Task.from_file(spec)


def write_outputs(result: SearchResult, out_dir: str | Path, config: dict | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = result.to_dict()
    if config is not None:
        log["config"] = config
    (out / "search.json").write_text(json.dumps(log, indent=2, default=str))
    best = out / "best.py"
    if result.best is not None:
        best.write_text(extract_program(result.best.text))
    elif best.exists():
        best.unlink()
    return out


def run(cfg: DictConfig) -> SearchResult:
    os.environ.setdefault("WANDB_MODE", "offline")
    task = load_task(cfg.task)
    generator = instantiate(cfg.generator)
    strategy = instantiate(cfg.strategy)
    verify_cfg = OmegaConf.to_container(cfg.verify, resolve=True)
    try:
        with Judge(verify_cfg, workers=cfg.workers) as judge:
            result = strategy.search(task, generator, judge)
    finally:
        generator.close()
    out = write_outputs(result, cfg.out_dir, OmegaConf.to_container(cfg, resolve=True))
    print(result.summary())
    print(f"cost model: {result.cost_model}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {out / 'search.json'}" + (f" and {out / 'best.py'}" if result.best else ""))
    return result
