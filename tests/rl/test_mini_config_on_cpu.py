"""The miniature pipeline's experiments (issue 7) compose, pass veRL's validation and rl's group checks, and
put every path (model, data, checkpoints, logs) where scripts/mini_pipeline.sh reads and writes it."""
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from rl.cli import sft_config, validate_ppo, validate_sft


@pytest.fixture
def mini_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MINI_DIR", str(tmp_path))
    monkeypatch.delenv("MINI_MODEL", raising=False)
    monkeypatch.delenv("MINI_SFT_MODEL", raising=False)
    return tmp_path


def test_mini_drpo_validates_and_resumes_from_its_own_checkpoints(mini_env):
    with initialize_config_module("rl.conf", version_base=None):
        cfg = compose("rl", overrides=["+experiment=mini_drpo"])
    validate_ppo(cfg)
    c = OmegaConf.to_container(cfg, resolve=True)
    actor, rollout, trainer = c["actor_rollout_ref"]["actor"], c["actor_rollout_ref"]["rollout"], c["trainer"]
    assert c["actor_rollout_ref"]["model"]["path"] == f"{mini_env}/models/sft"
    assert (c["algorithm"]["adv_estimator"], actor["policy_loss"]["loss_mode"]) == ("drpo", "drpo")
    assert c["reward"]["custom_reward_function"]["path"] == "pkg://rl.reward"
    assert (c["reward"]["custom_reward_function"]["reward_kwargs"]["reward"]["_target_"]
            == "verify.rewards.Decoupled")
    assert rollout["n"] == 8 and actor["ppo_micro_batch_size_per_gpu"] % rollout["n"] == 0
    # gpu-kit's ovr.txt: what fits one H100 without flash-attn
    assert c["actor_rollout_ref"]["model"]["override_config"]["attn_implementation"] == "sdpa"
    assert c["actor_rollout_ref"]["model"]["use_remove_padding"] is False
    assert ((rollout["name"], rollout["gpu_memory_utilization"], rollout["enforce_eager"])
            == ("vllm", 0.3, True))
    assert trainer["n_gpus_per_node"] == 1 and "console" in trainer["logger"] and "wandb" in trainer["logger"]
    assert (trainer["resume_mode"], trainer["save_freq"]) == ("auto", 1)
    assert trainer["default_local_dir"] == f"{mini_env}/ckpt/drpo"
    assert trainer["rollout_data_dir"] == f"{mini_env}/drpo/rollouts"
    assert "hf_model" in actor["checkpoint"]["save_contents"]
    assert c["rl"]["data"]["train"] == f"{mini_env}/data/train/train.parquet"
    assert c["rl"]["data"]["held_out"] == f"{mini_env}/data/heldout/heldout.parquet"
    assert [s for s in c["curriculum"]["stages"]] == [{"level": 1, "programs": 256}]


def test_mini_drpo_model_path_follows_mini_sft_model(mini_env, monkeypatch):
    monkeypatch.setenv("MINI_SFT_MODEL", "/ckpt/sft/global_step_9/huggingface")
    with initialize_config_module("rl.conf", version_base=None):
        cfg = compose("rl", overrides=["+experiment=mini_drpo"])
    assert cfg.actor_rollout_ref.model.path == "/ckpt/sft/global_step_9/huggingface"


def test_mini_sft_validates_with_sdpa_and_saves_hf_checkpoints(mini_env):
    with initialize_config_module("rl.conf", version_base=None):
        cfg = compose("rl", overrides=["+experiment=mini_sft"])
        sft = sft_config(cfg)
    validate_sft(sft)
    assert cfg.rl.mode == "sft" and cfg.rl.sft_pairs == f"{mini_env}/data/sft_pairs_fit.parquet"
    assert sft.model.path == "/tmp/smol" and sft.model.override_config.attn_implementation == "sdpa"
    assert sft.model.use_remove_padding is False
    assert sft.data.train_files == f"{mini_env}/sft/sft_messages.parquet"
    assert sft.data.max_length == 3072 and sft.data.truncation == "error"
    assert "hf_model" in sft.checkpoint.save_contents
    assert (sft.trainer.resume_mode, sft.trainer.default_local_dir) == ("auto", f"{mini_env}/ckpt/sft")
    assert "console" in sft.trainer.logger and sft.trainer.n_gpus_per_node == 1
    # veRL's other free-form keys stay strict: a typo still fails
    with initialize_config_module("rl.conf", version_base=None):
        bad = compose("rl", overrides=["+experiment=mini_sft", "+sft.data.max_lenght=1"])
        with pytest.raises(Exception, match="max_lenght"):
            sft_config(bad)
