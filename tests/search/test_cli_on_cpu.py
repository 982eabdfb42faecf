"""`python -m search`: configs compose for every strategy and generator, and a run writes its outputs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import search
from search.strategies import Strategy
from verify.config import VerifyConfig

GENERATORS = ["replay", "transformers", "openai", "vllm"]


@pytest.mark.parametrize("strategy", ["fragments", "best_of_n", "refine"])
@pytest.mark.parametrize("generator", GENERATORS)
def test_every_strategy_and_generator_composes(strategy, generator):
    with initialize_config_dir(str(Path(search.__file__).parent / "conf"), version_base=None):
        cfg = compose("search", overrides=[f"strategy={strategy}", f"generator={generator}", "task=x.py"])
    assert isinstance(instantiate(cfg.strategy), Strategy)
    assert cfg.generator._target_.startswith("search.generators.")
    # search overrides nothing of verify's one verifier group
    assert VerifyConfig.from_mapping(cfg.verify) == VerifyConfig()


def test_cli_writes_best_program_and_log(tmp_path, replay_all):
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "search",
            "task=fixtures/swish_residual",
            "strategy=fragments",
            f"generator.path={replay_all}",
            f"out_dir={out}",
            "workers=1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "best: whole" in proc.stdout and "cost model: launch count" in proc.stdout
    log = json.loads((out / "search.json").read_text())
    assert log["best"]["accepted"] and log["config"]["strategy"]["_target_"].endswith("FragmentSearch")
    assert {a["kind"] for a in log["attempts"]} == {"fragment", "whole"}
    assert all("verdict" in a and "text" in a for a in log["attempts"])
    assert "ModelNew" in (out / "best.py").read_text()


def test_cli_names_a_missing_task(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "search", f"task={tmp_path}/nope.py", "generator.path=x"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "task file not found" in proc.stderr
