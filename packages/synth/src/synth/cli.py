"""`python -m synth`: generate a dataset of synthetic programs (see conf/synth.yaml for every option).

    python -m synth n=1000 level=2 out=/tmp/synth_l2
    python -m synth level=[1,2,5] n=[20000,60000,20000] out=/tmp/rl exclude=[/tmp/heldout]
    python -m synth --config-name synth_heldout out=/tmp/heldout      # 100 programs at levels 1, 2, 5, 20
    python -m synth -m shard=0,1,2,3 n=2500 out=/tmp/big && python -m synth.merge /tmp/big

Each level draws indices from `shard * 10**9` on; duplicates (same structural hash) and programs found
in `exclude` are skipped and, with `fill=true`, replaced by further indices, so every level gets `n`.
"""
from __future__ import annotations

import json
import os
import re
import time
from functools import partial
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from synth.export import MANIFEST, read_manifest, write_parquet, write_task
from synth.generate import SHARD_STRIDE, Workers
from synth.sampler import ConfigError, Sampler
from synth.stats import summarize
from synth.validate import Validator


def build(sampler_cfg: dict, solver_cfg: dict, validate_cfg: dict) -> tuple[Sampler, Validator]:
    """(sampler, validator) from plain config dicts; runs in every worker process."""
    return Sampler(instantiate(solver_cfg), **sampler_cfg), Validator(**validate_cfg)


def plan(level, n) -> list[tuple[int, int]]:
    """[(level, count)] from `level` and `n` (ints or equal-length lists); raises ConfigError."""
    levels = list(level) if isinstance(level, (list, tuple)) else [level]
    counts = list(n) if isinstance(n, (list, tuple)) else [n] * len(levels)
    if len(levels) != len(counts):
        raise ConfigError(f"level has {len(levels)} entries but n has {len(counts)}; give one n per level")
    for k in levels:
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"level must be a positive int (number of compute operators), got {k!r}")
    for c in counts:
        if not isinstance(c, int) or c < 0:
            raise ConfigError(f"n must be a non-negative int, got {c!r}")
    return list(zip(levels, counts))


def excluded_hashes(paths) -> set[str]:
    return {e["hash"] for p in paths for e in read_manifest(p)}


def output_dir(cfg: DictConfig) -> Path:
    """`out`, or inside a Hydra multirun `out/shard_<shard>` followed by the job's other swept choices
    (`out/shard_0_solver=pulp`), so the jobs of `-m solver=fast,pulp` never write into one folder. Merge the
    shards with `python -m synth.merge out`."""
    out = Path(cfg.out)
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        # override_dirname leaves out the keys that only size or place a job (synth.yaml's exclude_keys)
        choices = re.sub(r"[^A-Za-z0-9=.,_-]+", "_", HydraConfig.get().job.override_dirname)
        out = out / (f"shard_{cfg.shard}" + (f"_{choices}" if choices else ""))
    return out


def run(cfg: DictConfig) -> dict:
    """Generate, validate, deduplicate and write the dataset described by `cfg`; returns the summary."""
    jobs_plan = plan(_plain(cfg.level), _plain(cfg.n))
    sampler_cfg = _plain(cfg.sampler)
    if cfg.teacher.enabled and cfg.teacher.supported_only:
        from synth.sft import supported_sampler_ops  # teacher runs only: synth.sft loads the verifier

        sampler_cfg["ops"] = supported_sampler_ops()
    builder = partial(build, sampler_cfg, _plain(cfg.solver), _plain(cfg.validate))
    sampler, _ = builder()
    prompt = instantiate(cfg.prompt)
    out = output_dir(cfg)
    if (out / MANIFEST).exists() and not cfg.overwrite:
        raise ConfigError(f"{out} already holds a dataset; choose another out= or pass overwrite=true")
    out.mkdir(parents=True, exist_ok=True)
    exclude = excluded_hashes(cfg.exclude)
    workers = cfg.workers or os.cpu_count() or 1

    seen, entries = set(), []
    counts = {"generated": 0, "duplicates": 0, "excluded": 0, "failed": 0}
    failures: list[str] = []
    start = time.time()
    base = cfg.shard * SHARD_STRIDE
    bar = tqdm(total=sum(c for _, c in jobs_plan), desc="synth", unit="prog", disable=not cfg.progress)
    with Workers(builder, workers) as pool, open(out / MANIFEST, "w") as manifest:
        for level, count in jobs_plan:
            accepted, next_index = 0, base
            while accepted < count:
                batch = range(next_index, next_index + count - accepted)
                next_index += len(batch)
                for rec in pool.map((cfg.seed, level, i) for i in batch):
                    counts["generated"] += 1
                    if isinstance(rec, str):
                        counts["failed"] += 1
                        failures.append(rec)
                        continue
                    if rec.hash in seen or rec.hash in exclude:
                        counts["duplicates" if rec.hash in seen else "excluded"] += 1
                        continue
                    seen.add(rec.hash)
                    entry = write_task(out, rec, cfg.split)
                    manifest.write(json.dumps(entry) + "\n")
                    entries.append(entry)
                    accepted += 1
                    bar.update(1)
                if not cfg.fill:
                    break
    bar.close()
    wall = time.time() - start
    write_parquet(out, entries, cfg.split, prompt, cfg.data_source)
    names = [op.name for op in sampler.ops]
    summary = {"out": str(out), "split": cfg.split, "seed": cfg.seed, "shard": cfg.shard, "workers": workers,
               "wall_s": round(wall, 2), "programs_per_s": round(len(entries) / wall, 2) if wall else None,
               **counts, "dedup_rate": counts["duplicates"] / max(counts["generated"], 1),
               "failures": failures[:20], "modes": _count(e["mode"] for e in entries),
               "ran_cpu": sum(e["ran_cpu"] for e in entries), **summarize(entries, names)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if cfg.teacher.enabled:
        from synth.sft import export_sft  # teacher runs only: synth.sft loads the verifier

        export_sft(out, entries, _plain(cfg.teacher), prompt)
    print(f"synth: wrote {len(entries)} programs to {out} in {wall:.1f}s "
          f"({counts['duplicates']} duplicates, {counts['excluded']} excluded, {counts['failed']} failed)")
    return summary


def _plain(value):
    return OmegaConf.to_object(value) if OmegaConf.is_config(value) else value


def _count(items) -> dict:
    out: dict = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out
