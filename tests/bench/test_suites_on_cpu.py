"""Suites: KernelBench from a checkout folder and from parquet, folders of task files, fixtures."""

import json

import pandas as pd
import pytest

from bench.suites import FixturesSuite, FolderSuite, KernelBenchSuite
from verify.fixtures import fixture_task
from verify.task import TaskError

NAMES = ["softmax", "relu_scale_bias", "linear"]


def _checkout(root):
    for i, name in enumerate(NAMES, 1):
        level = 1 if i < 3 else 2
        (root / "KernelBench" / f"level{level}").mkdir(parents=True, exist_ok=True)
        (root / "KernelBench" / f"level{level}" / f"{i}_{name}.py").write_text(fixture_task(name).code)


def test_kernelbench_checkout_folder(tmp_path):
    _checkout(tmp_path)
    tasks = KernelBenchSuite(str(tmp_path), levels=[1, 2]).tasks()
    assert [t.id for t in tasks] == [
        "kernelbench/L1/1_softmax",
        "kernelbench/L1/2_relu_scale_bias",
        "kernelbench/L2/3_linear",
    ]
    assert tasks[2].level == 2 and tasks[2].meta == {"problem_id": 3, "name": "linear"}
    assert [t.id for t in KernelBenchSuite(str(tmp_path), levels=[1], problem_ids=[2]).tasks()] == [
        "kernelbench/L1/2_relu_scale_bias"
    ]


def test_kernelbench_parquet(tmp_path):
    df = pd.DataFrame(
        {
            "code": [fixture_task(n).code for n in NAMES],
            "level": [1, 1, 2],
            "name": NAMES,
            "problem_id": [1, 2, 3],
        }
    )
    df.to_parquet(tmp_path / "level_all.parquet")
    tasks = KernelBenchSuite(str(tmp_path / "level_all.parquet"), levels=[2]).tasks()
    assert [t.id for t in tasks] == ["kernelbench/L2/3_linear"] and tasks[0].code == fixture_task(
        "linear"
    ).code
    df.drop(columns=["level"]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"lacks columns \['level'\]"):
        KernelBenchSuite(str(tmp_path / "bad.parquet")).tasks()


def test_missing_suites_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        KernelBenchSuite(str(tmp_path / "nowhere")).tasks()
    with pytest.raises(TaskError, match="no task files"):
        FolderSuite(str(tmp_path)).tasks()


def test_folder_suite_reads_sidecars(tmp_path):
    (tmp_path / "k2").mkdir()
    (tmp_path / "k2" / "p0.py").write_text(fixture_task("softmax").code)
    (tmp_path / "k2" / "p0.json").write_text(json.dumps({"level": 2, "ops": ["softmax"], "hash": "abc"}))
    (tmp_path / "p1.py").write_text(fixture_task("linear").code)
    (tmp_path / "p2.py").write_text(fixture_task("tanh_gate").code)
    (tmp_path / "p2.json").write_text(json.dumps({"id": "synth/l1/000002", "level": 1}))
    tasks = FolderSuite(str(tmp_path), name="heldout", source="synth").tasks()
    assert [(t.id, t.level, t.ops, t.source) for t in tasks] == [
        ("heldout/k2/p0", 2, ("softmax",), "synth"),
        ("heldout/p1", 0, (), "synth"),
        ("synth/l1/000002", 1, (), "synth"),
    ]
    assert tasks[0].meta == {"hash": "abc"}


def test_fixtures_suite_and_limit():
    assert len(FixturesSuite().tasks()) >= 12
    assert [t.id for t in FixturesSuite(names=["softmax", "linear"], limit=1).tasks()] == ["fixtures/softmax"]
