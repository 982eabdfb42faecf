"""What `python -m rl` does with a composed config: validate it, then run veRL's PPO or SFT trainer.

- rl.mode=ppo: veRL's own validation (`validate_config`, the actor/algorithm dataclasses), rl's checks
  (DRPO needs whole groups per micro-batch; an experiment that requires the SFT checkpoint has one), then what
  the run needs from this machine (GPUs, data files, the model), all before Ray starts, then veRL's `run_ppo`
  with a task runner that registers rl's curriculum trainer in its Ray actor. rl's loss and estimators come
  in through the `verl.plugins` entry point.
- rl.mode=sft: the `sft` node is merged over veRL's `sft_trainer_engine` config and run by veRL's SFT trainer.
- rl.dry_run=true: validate and print a summary; nothing starts (used by tests and sweeps).
W&B runs offline unless WANDB_MODE says otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path

import ray
from hydra import compose
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rl.data import sft_messages


def check_groups_whole(cfg: DictConfig) -> None:
    """DRPO/DisCO settings that keep every group inside one micro-batch; raise naming the fix."""
    from rl.plugin import ADVANTAGE_ESTIMATORS  # imports veRL (seconds): for ppo configs only

    if cfg.algorithm.adv_estimator not in ADVANTAGE_ESTIMATORS:
        return
    actor, n = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout.n
    dp = cfg.trainer.n_gpus_per_node * cfg.trainer.nnodes
    problems = []
    if actor.policy_loss.loss_mode != "drpo":
        problems.append(f"policy_loss.loss_mode must be drpo, got {actor.policy_loss.loss_mode}")
    if actor.use_dynamic_bsz:
        problems.append("actor.use_dynamic_bsz must be false (it regroups rows by length)")
    if actor.shuffle:
        problems.append("actor.shuffle must be false")
    if actor.ppo_micro_batch_size_per_gpu is None or actor.ppo_micro_batch_size_per_gpu % n:
        problems.append(f"actor.ppo_micro_batch_size_per_gpu ({actor.ppo_micro_batch_size_per_gpu}) "
                        f"must be a multiple of rollout.n ({n})")
    if actor.ppo_mini_batch_size % dp:
        problems.append(f"actor.ppo_mini_batch_size ({actor.ppo_mini_batch_size}) must be divisible by the "
                        f"{dp} GPUs so each rank's mini-batch holds whole groups")
    if cfg.trainer.v1.trainer_mode != "drtriton_curriculum":
        problems.append("trainer.v1.trainer_mode must be drtriton_curriculum (it balances whole groups)")
    if cfg.algorithm.get("rollout_correction") and cfg.algorithm.rollout_correction.get("bypass_mode"):
        problems.append("algorithm.rollout_correction bypass mode is not supported by the drpo loss")
    if problems:
        raise ValueError(
            f"{cfg.algorithm.adv_estimator} keeps groups whole per micro-batch: " + "; ".join(problems))


def check_sft_start(cfg: DictConfig) -> None:
    """With rl.require_sft the run starts from an SFT checkpoint, not rl.base_model; raise naming the fix."""
    model = cfg.actor_rollout_ref.model.path
    if cfg.rl.require_sft and model == cfg.rl.base_model:
        raise ValueError(
            f"{cfg.trainer.experiment_name} starts RL from the SFT warm-up checkpoint, but "
            f"actor_rollout_ref.model.path is the base model {model}: make the checkpoint with "
            "`python -m rl +experiment=sft_warmup`, then pass its Hugging Face folder as "
            "actor_rollout_ref.model.path=... (or DRTRITON_SFT_CKPT=...); "
            "rl.require_sft=false trains the base model on purpose")


def _model_problem(path: str) -> str | None:
    if "://" in path:
        return None  # remote (hdfs://...): veRL copies it in
    local = Path(path).expanduser()
    if local.exists() or path.startswith((".", "/", "~")):
        return None if (local / "config.json").is_file() else (
            f"actor_rollout_ref.model.path={path}: no Hugging Face model folder (config.json) there")
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(path, "config.json"), str) or not os.environ.get("HF_HUB_OFFLINE"):
        return None  # cached, or downloaded by veRL
    return (f"actor_rollout_ref.model.path={path} is not in the Hugging Face cache and HF_HUB_OFFLINE is "
            "set: download it first or pass a local model folder")


def preflight(cfg: DictConfig) -> list[str]:
    """What a PPO run needs from this machine, checked in seconds before Ray starts: one line per problem."""
    import torch

    problems = []
    need = cfg.trainer.n_gpus_per_node
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cfg.trainer.get("device", "cuda") == "cuda" and have == 0:
        problems.append(f"no CUDA GPU on this machine (trainer.n_gpus_per_node={need}): run on a GPU "
                        "machine; rl.dry_run=true checks the config without one")
    elif cfg.trainer.get("device", "cuda") == "cuda" and have < need:
        problems.append(f"trainer.n_gpus_per_node={need} but this machine has {have} CUDA device(s): run "
                        f"on a machine with {need} GPUs, or lower trainer.n_gpus_per_node (batch sizes must "
                        "divide by it)")
    if cfg.rl.verifier.device == "cuda" and have == 0:
        problems.append("rl.verifier.device=cuda but CUDA is not available: use rl.verifier.device=auto")
    for key in ("train", "held_out"):
        path = Path(cfg.rl.data[key]).absolute()
        if not path.is_file():
            problems.append(f"rl.data.{key}: no file {path}: write synth's export there (`python -m "
                            "synth`, see the README) or point rl.data.dir (env DRTRITON_DATA) at its folder")
    model_problem = _model_problem(str(cfg.actor_rollout_ref.model.path))
    if model_problem:
        problems.append(model_problem)
    return problems


def validate_ppo(cfg: DictConfig) -> None:
    """veRL's own config validation plus rl's: raises on the first problem."""
    from verl.trainer.config import AlgoConfig  # noqa: F401  (the registry of dataclasses _target_ refers to)
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    import rl.plugin  # noqa: F401  (the driver gets the registrations the entry point gives workers)

    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    omega_conf_to_dataclass(cfg.algorithm)
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn, get_policy_loss_fn

    get_adv_estimator_fn(cfg.algorithm.adv_estimator)
    get_policy_loss_fn(cfg.actor_rollout_ref.actor.policy_loss.loss_mode)
    check_groups_whole(cfg)
    check_sft_start(cfg)
    instantiate(cfg.curriculum, _convert_="all")
    instantiate(cfg.rl.reward)


def sft_config(cfg: DictConfig) -> DictConfig:
    """veRL's SFT trainer config with the experiment's `sft` node merged over it."""
    base = compose(config_name="sft_trainer_engine")
    # free-form like its PPO twin: any HF config field, e.g. attn_implementation=sdpa where flash-attn is
    # missing
    OmegaConf.set_struct(base.model.override_config, False)
    # resolved against the rl config first: the experiment's sft node may point at rl.* paths
    return OmegaConf.merge(base, OmegaConf.to_container(cfg.get("sft") or {}, resolve=True))


def validate_sft(sft: DictConfig) -> None:
    from verl.utils.config import omega_conf_to_dataclass

    for node in ("engine", "optim", "checkpoint"):
        omega_conf_to_dataclass(sft[node])
    if not sft.data.train_files:
        raise ValueError("sft.data.train_files must name a parquet of (prompt, response) pairs")


@ray.remote(num_cpus=1)
class CurriculumTaskRunner:
    """veRL's V1 task runner, in an actor that has registered rl's curriculum trainer first."""

    def run(self, config):
        from verl.trainer.main_ppo import TaskRunnerV1

        import rl.trainer  # noqa: F401  (registers trainer_mode drtriton_curriculum in this actor)

        TaskRunnerV1.__ray_actor_class__().run(config)


def run(cfg: DictConfig) -> None:
    """Entry of `python -m rl`."""
    os.environ.setdefault("WANDB_MODE", "offline")
    # veRL's tracker passes no job_type to wandb.init; its workers inherit this (bench's runs are "bench")
    os.environ.setdefault("WANDB_JOB_TYPE", "rl")
    mode = cfg.rl.mode
    if mode == "ppo":
        validate_ppo(cfg)
        summary = (f"ppo: {cfg.actor_rollout_ref.model.path} adv_estimator={cfg.algorithm.adv_estimator} "
                   f"loss={cfg.actor_rollout_ref.actor.policy_loss.loss_mode} "
                   f"n={cfg.actor_rollout_ref.rollout.n} "
                   f"reward={cfg.rl.reward._target_} "
                   f"transform={OmegaConf.select(cfg, 'rl.reward.transform.kind')} "
                   f"score={cfg.rl.score}")
        if cfg.rl.dry_run:
            print(f"[rl] config valid; {summary}")
            return
        problems = preflight(cfg)
        if problems:
            raise SystemExit(f"[rl] {cfg.trainer.experiment_name} cannot start on this machine:\n  - "
                             + "\n  - ".join(problems))
        from verl.trainer.main_ppo import run_ppo

        OmegaConf.resolve(cfg)  # hydra: interpolations only resolve here, not in Ray actors
        run_ppo(cfg, task_runner_class=CurriculumTaskRunner)
    elif mode == "sft":
        sft = sft_config(cfg)
        validate_sft(sft)
        if cfg.rl.dry_run:
            print(f"[rl] config valid; sft: {sft.model.path} on {cfg.rl.sft_pairs}")
            return
        from verl.trainer.sft_trainer import run_sft

        sft_messages(cfg.rl.sft_pairs, sft.data.train_files)
        run_sft(sft)
    else:
        raise ValueError(f"rl.mode must be ppo or sft, got {mode!r}")
