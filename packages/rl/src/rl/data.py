"""Curriculum stage files from synth's parquet export, and loading them through veRL's RLHFDataset.

Rows follow DESIGN.md §3: data_source, prompt (chat messages), ability, reward_model {style: rule,
ground_truth: reference program}, extra_info {task id, level, ops}. The curriculum writes one train file per
stage (its level mix, sampled without replacement) and one held-out file whose data_source names the level,
so veRL's validation reports pass@1 per level by itself.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rl.curriculum import HELD_OUT_SOURCE, Curriculum

REQUIRED_COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")


def read_rows(path: str | Path) -> pd.DataFrame:
    """Read a parquet export and check it has the DESIGN.md §3 columns and a level per row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no parquet at {path}: export synth's RL rows there or set rl.data.dir")
    df = pd.read_parquet(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path} lacks column(s) {missing}; rows need {list(REQUIRED_COLUMNS)} (DESIGN.md §3)")
    df = df.copy()
    df["level"] = [_level(info, path, i) for i, info in enumerate(df["extra_info"])]
    return df


def _level(info, path, i) -> int:
    if not isinstance(info, dict) or info.get("level") is None:
        raise ValueError(f"{path} row {i}: extra_info must hold the program's level, got {info!r}")
    return int(info["level"])


def stage_train_file(curriculum: Curriculum, rows: pd.DataFrame, out_dir: str | Path, seed: int = 0) -> Path:
    """Write the current stage's training prompts (its level mix) to parquet; return the path."""
    parts = []
    for level, count in curriculum.current.counts().items():
        pool = rows[rows["level"] == level]
        if len(pool) == 0:
            raise ValueError(f"curriculum stage {curriculum.stage} needs level {level}, the export has none "
                             f"(levels present: {sorted(rows['level'].unique().tolist())})")
        take = min(count, len(pool))
        parts.append(pool.sample(n=take, random_state=np.random.RandomState(seed + level)))
    out = Path(out_dir) / f"stage{curriculum.stage}_train.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(parts).drop(columns="level").to_parquet(out)
    return out


def held_out_file(curriculum: Curriculum, rows: pd.DataFrame, out_dir: str | Path, per_level: int,
                  seed: int = 0) -> Path:
    """Write held-out prompts of every curriculum level, data_source set to `synth/level<k>`."""
    parts = []
    for level in curriculum.levels:
        pool = rows[rows["level"] == level]
        if len(pool) == 0:
            raise ValueError(f"the held-out export has no level-{level} program (the curriculum uses it)")
        part = pool.sample(n=min(per_level, len(pool)), random_state=np.random.RandomState(seed + level))
        parts.append(part.assign(data_source=HELD_OUT_SOURCE.format(level=level)))
    out = Path(out_dir) / "held_out.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(parts).drop(columns="level").to_parquet(out)
    return out


def rl_dataset(files, data_config, tokenizer):
    """veRL's RL dataset (RLHFDataset unless data.custom_cls says otherwise) over `files`."""
    from verl.trainer.ppo.utils import create_rl_dataset

    return create_rl_dataset(files, data_config, tokenizer, processor=None)


def sft_messages(pairs_path: str | Path, out_path: str | Path) -> Path:
    """Turn a parquet of (prompt, response) pairs into the `messages` column veRL's SFT dataset reads."""
    pairs = pd.read_parquet(pairs_path)
    missing = [c for c in ("prompt", "response") if c not in pairs.columns]
    if missing:
        raise ValueError(f"{pairs_path} lacks column(s) {missing}: SFT pairs need prompt (chat messages) and "
                         "response (the verified completion)")
    messages = [[{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]
                + [{"role": "assistant", "content": str(response)}]
                for prompt, response in zip(pairs["prompt"], pairs["response"])]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"messages": messages}).to_parquet(out)
    return out
