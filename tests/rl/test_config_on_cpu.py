"""`python -m rl` composes veRL's trainer config with rl's, from any directory, and every experiment passes
veRL's own validation (plus rl's group checks); the ablation sweep expands to its 6 jobs."""
import os
import re
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_module

from rl.cli import check_groups_whole

EXPERIMENTS = ("drtriton_7b", "smoke", "sft_warmup")


def run_rl(args, cwd, env=None):
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", "rl", *args], cwd=cwd, capture_output=True,
                         text=True, timeout=600, env={**os.environ, **(env or {})})
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return out.stdout


@pytest.mark.slow
def test_cfg_job_prints_full_verl_config_from_any_directory(tmp_path):
    out = run_rl(["+experiment=drtriton_7b", "--cfg", "job"], cwd=tmp_path)
    for needle in ("actor_rollout_ref:", "critic:", "transfer_queue:", "loss_mode: drpo", "beta0: 100.0",
                   "kl_bound: 0.001", "speed_temperature: 0.1", "adv_estimator: drpo", "lr: 1.0e-06",
                   "trainer_mode: drtriton_curriculum", "_target_: verify.rewards.Decoupled", "level: 5"):
        assert needle in out, needle


@pytest.mark.slow
def test_every_experiment_validates_including_one_from_a_user_config_dir(tmp_path):
    local = tmp_path / "conf" / "experiment"
    local.mkdir(parents=True)
    (local / "local_tiny.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /algorithm: disco\n"
        "trainer:\n  n_gpus_per_node: 2\nactor_rollout_ref:\n  actor:\n    ppo_mini_batch_size: 8\n"
        "    ppo_micro_batch_size_per_gpu: 8\n  rollout:\n    n: 8\n"
        "    log_prob_micro_batch_size_per_gpu: 8\n"
        "  ref:\n    log_prob_micro_batch_size_per_gpu: 8\ndata:\n  train_batch_size: 16\n")
    # a user's own experiments join through Hydra's documented --config-dir
    experiments = ",".join(EXPERIMENTS + ("local_tiny",))
    out = run_rl(["--config-dir", str(tmp_path / "conf"), "-m", f"+experiment={experiments}",
                  "rl.dry_run=true", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                 cwd=tmp_path, env={"DRTRITON_SFT_CKPT": "/ckpt/sft_7b"})
    assert out.count("[rl] config valid") == 4
    assert "adv_estimator=disco" in out and "sft: " in out


@pytest.mark.slow
def test_ablation_sweep_expands_to_objective_times_transform(tmp_path):
    out = run_rl(["-m", "+experiment=ablation_1p5b", "sweep=ablation_1p5b", "rl.dry_run=true",
                  f"hydra.sweep.dir={tmp_path / 's'}"], cwd=tmp_path)
    jobs = set(re.findall(r"algorithm=(\w+) rl\.reward\.transform\.kind=(\w+)", out))
    assert jobs == {(a, t) for a in ("drpo", "disco", "grpo") for t in ("log", "power")}
    valid = re.findall(r"adv_estimator=(\w+) loss=(\w+) .*reward=([\w.]+) transform=(\w+) score=(\w+)", out)
    assert len(valid) == 6
    for est, loss, reward, _, score in valid:
        if est == "grpo":
            assert (loss, reward, score) == ("vanilla", "verify.rewards.Speedup", "score")
        else:
            assert (loss, reward, score) == ("drpo", "verify.rewards.Decoupled", "packed")


def test_group_checks_name_the_setting_to_fix():
    with initialize_config_module("rl.conf", version_base=None):
        ok = compose("rl", overrides=["+experiment=smoke"])
        bad = compose("rl", overrides=["+experiment=smoke",
                                       "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=3",
                                       "actor_rollout_ref.actor.use_dynamic_bsz=true"])
    check_groups_whole(ok)
    with pytest.raises(ValueError,
                       match="ppo_micro_batch_size_per_gpu .3. must be a multiple of rollout.n .4."):
        check_groups_whole(bad)
