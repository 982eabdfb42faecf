"""SFT export (`python -m synth ... teacher.enabled=true`, synth/sft.py): teacher programs beside the tasks,
verified for real, only accepted pairs in sft_pairs.parquet, and rl.data.sft_messages reads it."""
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from rl.data import sft_messages
from synth.export import read_manifest
from synth.prompts import PromptTemplate
from synth.sft import COLUMNS, PAIRS, SUMMARY, lower_entries, teacher_path, write_pairs
from synth.teacher import Unsupported
from verify.candidate import extract_program

CAPS = ["sampler.max_dim=64", "sampler.max_elements=32768", "sampler.max_flops=2097152"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sft")
    out = tmp / "ds"
    cmd = [sys.executable, "-m", "synth", "level=[1,2]", "n=[4,2]", "teacher.enabled=true",
           "teacher.supported_only=true", *CAPS, f"out={out}", "workers=2", "progress=false",
           f"hydra.run.dir={tmp}/hydra"]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r.stdout


def test_cli_writes_teacher_programs_and_accepted_pairs(dataset, tmp_path):
    out, stdout = dataset
    entries = read_manifest(out)
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["programs"] == len(entries) == 6
    assert summary["accepted"] + summary["rejected"] + summary["unsupported"] + summary["task_error"] == 6
    assert summary["verify"]["backend"] == "triton-interpreter" and "teacher SFT:" in stdout
    pairs = pd.read_parquet(out / PAIRS)
    assert tuple(pairs.columns) == COLUMNS and len(pairs) == summary["accepted"] > 0
    train = pd.read_parquet(out / "train.parquet")
    rl_prompt = {row["extra_info"]["task_id"]: list(row["prompt"]) for _, row in train.iterrows()}
    by_id = {e["id"]: e for e in entries}
    for _, row in pairs.iterrows():
        entry = by_id[row["task_id"]]
        # the same chat prompt as the RL row of the task, and the verified program as the response
        assert list(row["prompt"]) == rl_prompt[row["task_id"]]
        assert extract_program(row["response"]) == teacher_path(out, entry).read_text()
        assert (row["level"] == entry["level"] and list(row["ops"]) == entry["ops"]
                and row["hash"] == entry["hash"])
        assert row["backend"] == "triton-interpreter" and row["trials"] >= 5 and row["kernel_launches"] >= 1
    messages = pd.read_parquet(sft_messages(out / PAIRS, tmp_path / "sft_messages.parquet"))["messages"]
    assert len(messages) == len(pairs)
    assert [m["role"] for m in messages.iloc[0]] == ["system", "user", "assistant"]
    assert messages.iloc[0][2]["content"] == pairs.iloc[0]["response"]


def test_only_accepted_pairs_are_exported(dataset, tmp_path):
    """A wrong program (every stored value scaled by 1.5) and an unsupported one are counted, never
    exported."""
    out, _ = dataset
    entries = [e for e in read_manifest(out) if e["level"] == 1][:3]
    items = lower_entries(out, entries)
    (e0, t0, p0), (e1, t1, _), rest = items[0], items[1], items[2:]
    broken = re.sub(r"tl\.store\(([^,]+), ", r"tl.store(\1, 1.5 * ", p0)
    assert broken != p0
    items = [(e0, t0, broken), (e1, t1, Unsupported(e1["ops"][0], "withheld by the test")), *rest]
    summary = write_pairs(tmp_path, items, {"workers": 2, "progress": False}, PromptTemplate())
    assert (summary["accepted"], summary["rejected"], summary["unsupported"]) == (len(rest), 1, 1)
    assert summary["unsupported_by"] == {e1["ops"][0]: 1}
    assert summary["rejections"][0]["task_id"] == e0["id"] and summary["rejections"][0]["stage"] == "correct"
    pairs = pd.read_parquet(tmp_path / PAIRS)
    assert sorted(pairs["task_id"]) == sorted(e["id"] for e, _, _ in rest)
