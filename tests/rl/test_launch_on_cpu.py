"""`python -m rl` stops before Ray when this machine cannot run the experiment (issue 28), and drtriton_7b
will not train the base model unless told to (issue 25); rl and synth share the parquet file names."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from rl.cli import validate_ppo
from synth.export import split_file


def compose_rl(overrides):
    with initialize_config_module("rl.conf", version_base=None):
        return compose("rl", overrides=overrides)


def test_smoke_without_gpu_or_data_exits_before_ray_and_names_the_fixes(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DRTRITON_DATA", "HYDRA_FULL_ERROR")}
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", "rl", "+experiment=smoke"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env={**env, "CUDA_VISIBLE_DEVICES": ""})
    seconds = time.monotonic() - start
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-2000:]
    assert "smoke cannot start on this machine" in text and "no CUDA GPU" in text, text[-2000:]
    assert f"rl.data.train: no file {tmp_path}/data/synth/train.parquet" in text
    assert f"rl.data.held_out: no file {tmp_path}/data/synth/{split_file('heldout')}" in text
    assert "DRTRITON_DATA" in text and "Traceback" not in text
    assert "ray init kwargs" not in text and "Started a local Ray instance" not in text
    print(f"\n[rl] +experiment=smoke without GPU or data exited in {seconds:.1f} s")


def test_held_out_file_is_the_one_synth_writes():
    for experiment, folder in (("smoke", ""), ("mini_drpo", "heldout/")):
        cfg = compose_rl([f"+experiment={experiment}", "rl.data.dir=/data"])
        held_out = f"/data/{folder}{split_file('heldout')}"
        assert cfg.rl.data.held_out == held_out == f"/data/{folder}heldout.parquet"
        assert Path(cfg.rl.data.train).name == split_file("train")


def test_drtriton_7b_refuses_the_base_model_and_names_the_sft_experiment(monkeypatch):
    monkeypatch.delenv("DRTRITON_SFT_CKPT", raising=False)
    with pytest.raises(ValueError, match=r"drtriton_7b starts RL from the SFT warm-up.*"
                                         r"\+experiment=sft_warmup.*rl.require_sft=false"):
        validate_ppo(compose_rl(["+experiment=drtriton_7b"]))
    validate_ppo(compose_rl(["+experiment=drtriton_7b", "rl.require_sft=false"]))  # on purpose
    validate_ppo(compose_rl(["+experiment=drtriton_7b",
                             "actor_rollout_ref.model.path=/ckpt/sft/huggingface"]))
    monkeypatch.setenv("DRTRITON_SFT_CKPT", "/ckpt/sft/huggingface")
    cfg = compose_rl(["+experiment=drtriton_7b"])
    validate_ppo(cfg)
    assert cfg.actor_rollout_ref.model.path == "/ckpt/sft/huggingface"
