"""Each package's W&B runs carry its name as job_type (issue 28): bench passes it to wandb.init, rl sets
WANDB_JOB_TYPE for veRL's tracker (which passes none); synth logs nothing to W&B."""
import os

from hydra import compose, initialize_config_module

from rl.cli import run


def test_rl_runs_are_job_type_rl(monkeypatch):
    monkeypatch.delenv("WANDB_JOB_TYPE", raising=False)
    with initialize_config_module("rl.conf", version_base=None):
        cfg = compose("rl", overrides=["+experiment=smoke", "rl.dry_run=true"])
    run(cfg)
    assert os.environ["WANDB_JOB_TYPE"] == "rl"
