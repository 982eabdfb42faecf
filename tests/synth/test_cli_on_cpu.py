"""`python -m synth`: outputs, held-out disjointness, shards + merge, and clear errors for bad config."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from synth.export import read_manifest
from synth.ir import Graph
from verify.task import Task


def synth(tmp_path, *args, module="synth"):
    cmd = [sys.executable, "-m", module, *args]
    if module == "synth":
        cmd += [f"hydra.run.dir={tmp_path}/hydra", f"hydra.sweep.dir={tmp_path}/hydra_multi",
                "progress=false"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_cli_writes_tasks_manifest_and_verl_parquet(tmp_path):
    out = tmp_path / "ds"
    r = synth(tmp_path, "level=[1,2]", "n=[6,4]", f"out={out}", "workers=2")
    assert r.returncode == 0, r.stderr
    entries = read_manifest(out)
    assert [e["level"] for e in entries] == [1] * 6 + [2] * 4
    assert len({e["hash"] for e in entries}) == 10
    task = Task.from_file(out / entries[0]["path"])
    assert task.level == 1 and task.source == "synth" and task.meta["hash"] == entries[0]["hash"]
    graph = Graph.from_dict(task.meta["graph"])  # the sidecar carries the operator graph
    assert graph.to_code() == task.code and graph.structural_hash() == task.meta["hash"]
    df = pd.read_parquet(out / "train.parquet")
    assert list(df.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    row = df.iloc[3]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert "ModelNew" in row["prompt"][1]["content"] and row["reward_model"]["style"] == "rule"
    assert row["reward_model"]["ground_truth"] in row["prompt"][1]["content"]
    assert row["extra_info"]["task_id"] == entries[3]["id"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["programs"] == 10 and summary["failed"] == 0


def test_train_split_excludes_the_heldout_benchmark(tmp_path):
    held = tmp_path / "held"
    r = synth(tmp_path, "--config-name", "synth_heldout", "n=[5,5,3,1]", f"out={held}", "workers=1")
    assert r.returncode == 0, r.stderr
    held_entries = read_manifest(held)
    assert sorted({e["level"] for e in held_entries}) == [1, 2, 5, 20] and len(held_entries) == 14
    assert (held / "heldout.parquet").is_file()
    # same seed as the held-out set: every first draw collides and must be replaced
    train = tmp_path / "train"
    r = synth(tmp_path, "level=1", "n=5", "seed=20260321", f"out={train}", f"exclude=[{held}]", "workers=1")
    assert r.returncode == 0, r.stderr
    train_hashes = {e["hash"] for e in read_manifest(train)}
    assert len(train_hashes) == 5 and not train_hashes & {e["hash"] for e in held_entries}
    assert json.loads((train / "summary.json").read_text())["excluded"] == 5


def test_multirun_shards_are_disjoint_and_merge(tmp_path):
    out = tmp_path / "sharded"
    r = synth(tmp_path, "-m", "shard=0,1", "level=2", "n=4", f"out={out}", "workers=1")
    assert r.returncode == 0, r.stderr
    a, b = read_manifest(out / "shard_0"), read_manifest(out / "shard_1")
    assert not {e["index"] for e in a} & {e["index"] for e in b}
    r = synth(tmp_path, str(out), module="synth.merge")
    assert r.returncode == 0, r.stderr
    merged = read_manifest(out)
    assert len(merged) == 8 and len(pd.read_parquet(out / "train.parquet")) == 8


def test_multirun_over_solvers_writes_one_folder_per_job(tmp_path):
    out = tmp_path / "solvers"
    r = synth(tmp_path, "-m", "solver=fast,pulp", "level=1", "n=2", f"out={out}", "workers=1")
    assert r.returncode == 0, r.stderr
    folders = sorted(p.name for p in out.iterdir())
    assert folders == ["shard_0_solver=fast", "shard_0_solver=pulp"]
    assert all(len(read_manifest(out / f)) == 2 for f in folders)


@pytest.mark.parametrize("args, message", [
    (["level=0"], "level must be a positive int"),
    (["sampler.ops=[relux]"], "unknown operator 'relux' (did you mean relu"),
    (["sampler.max_elements=10"], "impossible bounds"),
    (["level=[1,2]", "n=[3]"], "give one n per level"),
])
def test_bad_config_gets_a_clear_error(tmp_path, args, message):
    r = synth(tmp_path, *args, f"out={tmp_path}/bad", "workers=1")
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
