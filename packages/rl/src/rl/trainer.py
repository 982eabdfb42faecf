"""rl's veRL trainer (trainer.v1.trainer_mode=drtriton_curriculum): veRL's synchronous PPO trainer plus
- whole groups per data-parallel rank and micro-batch (rl.balance), which DRPO's loss requires;
- the curriculum: per-stage training prompts, promotion on held-out pass@1 after each validation; the run
  ends on trainer.total_training_steps whatever the stage sizes and promotion times (an "epoch" of a
  curriculum run is 1/total_epochs of its steps), and veRL's checkpoints also hold the curriculum
  (stage, steps per stage, pass@1: `curriculum.json`) next to the sampler position of its stage (`data.pt`);
- DRPO/DisCO: a step whose batch keeps no group (all outputs of every prompt correct, or all wrong) skips the
  actor update: its gradient is zero, but AdamW's momentum would still move the weights (and the KL penalty,
  inactive before the first update of a step, adds nothing). The LR schedule then advances one step less;
- W&B metrics: curriculum stage and pass@1 per level, and the reward components of each step's rollouts.

Imported by rl.cli's task runner inside its Ray actor, which registers the trainer there.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import torch
import transfer_queue as tq
from hydra.utils import instantiate
from omegaconf import open_dict
from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path

from rl.balance import group_whole_order
from rl.curriculum import pass_at_1_from_validation
from rl.data import held_out_file, read_rows, stage_train_file
from rl.plugin import ADVANTAGE_ESTIMATORS

# numeric reward components averaged into `reward/<name>` each step
REWARD_COMPONENTS = ("r_c", "r_s", "compiled", "faithful", "correct", "speedup")
# the curriculum's state in each of veRL's global_step_<N> checkpoint folders
CURRICULUM_STATE = "curriculum.json"
# veRL's file of the train dataloader's state (the sampler position) in the same folder
SAMPLER_STATE = "data.pt"


def reward_infos(fields) -> list[dict]:
    """Each rollout's reward_extra_info from transfer_queue's ``extra_fields`` column: a numpy object array,
    or a tensordict ``LinkedList`` (a list subclass without ``tolist``; seen with veRL 0.9.1 on the H200,
    2026-12-02)."""
    fields = fields.tolist() if hasattr(fields, "tolist") else list(fields)
    return [f.get("reward_extra_info", {}) if isinstance(f, dict) else {} for f in fields]


@register_trainer("drtriton_curriculum")
class CurriculumTrainer(PPOTrainerSync):
    def __init__(self, config):
        super().__init__(config)
        self.curriculum = instantiate(config.curriculum, _convert_="all")
        if config.trainer.total_training_steps is None:
            with open_dict(config):
                config.trainer.total_training_steps = (
                    self.curriculum.planned_steps(config.data.train_batch_size) * config.trainer.total_epochs)
        self._train_rows = read_rows(config.rl.data.train)
        self._held_out_rows = read_rows(config.rl.data.held_out)
        self._point_data_at_stage()

    def _point_data_at_stage(self) -> None:
        stage_dir = self.config.rl.data.stage_dir
        with open_dict(self.config):
            self.config.data.train_files = str(stage_train_file(self.curriculum, self._train_rows, stage_dir))
            self.config.data.val_files = str(held_out_file(
                self.curriculum, self._held_out_rows, stage_dir, self.config.rl.data.held_out_per_level))

    def _init_dataloader(self) -> None:
        super()._init_dataloader()
        # veRL ends the run once (step - 1) // steps_per_epoch reaches total_epochs, with steps_per_epoch
        # from the train set: recomputed from each new stage's size at promotion, that stopped the paper's
        # run before level 5
        self.steps_per_epoch = math.ceil(self.total_training_steps / self.config.trainer.total_epochs)

    def step(self, metrics, timing_raw):
        batch = super().step(metrics, timing_raw)
        self.curriculum.record_step()
        return batch

    def _validate(self) -> dict:
        metrics = super()._validate()
        if self.curriculum.update(pass_at_1_from_validation(metrics)):
            self._point_data_at_stage()
            self._init_dataloader()
            # veRL saves a step's checkpoint before validating it: that folder must resume in the new stage
            folder = self._step_folder(self.global_steps)
            if os.path.isfile(os.path.join(folder, CURRICULUM_STATE)):
                self._save_curriculum(folder, with_sampler=True)
        metrics.update(self.curriculum.metrics())
        return metrics

    def _step_folder(self, step: int) -> str:
        return os.path.join(self.config.trainer.default_local_dir, f"global_step_{step}")

    def _save_curriculum(self, folder: str, with_sampler: bool) -> None:
        if with_sampler:
            torch.save(self.train_dataloader.state_dict(), os.path.join(folder, SAMPLER_STATE))
        with open(os.path.join(folder, CURRICULUM_STATE), "w") as f:
            json.dump(self.curriculum.state_dict(), f)

    def _save_checkpoint(self) -> None:
        super()._save_checkpoint()
        self._save_curriculum(self._step_folder(self.global_steps), with_sampler=False)

    def _resume_folder(self) -> str | None:
        """The checkpoint veRL's _load_checkpoint resumes from (same rules), or None."""
        trainer = self.config.trainer
        if trainer.resume_mode == "auto":
            return find_latest_ckpt_path(os.path.abspath(trainer.default_local_dir))
        if trainer.resume_mode == "resume_path":
            return os.path.abspath(trainer.resume_from_path)
        return None

    def _load_checkpoint(self) -> None:
        """Restore the curriculum and its stage's train set, then veRL loads the sampler position into it."""
        folder = self._resume_folder()
        if folder is not None:
            path = os.path.join(folder, CURRICULUM_STATE)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"checkpoint {folder} has no {CURRICULUM_STATE}, so its curriculum stage is unknown "
                    "(written before rl saved it): set trainer.resume_mode=disable or a new "
                    "trainer.default_local_dir")
            with open(path) as f:
                self.curriculum.load_state_dict(json.load(f))
            self._point_data_at_stage()
            self._init_dataloader()
        super()._load_checkpoint()

    def _update_actor(self, batch, metrics):
        if self.config.algorithm.adv_estimator in ADVANTAGE_ESTIMATORS:
            advantages = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                                         select_fields=["advantages"])["advantages"]
            kept = any(bool(row.any()) for row in advantages.unbind(0))
            metrics["actor/update_skipped"] = float(not kept)
            if not kept:
                return batch
        return super()._update_actor(batch, metrics)

    def _balance_batch(self, batch, metrics, logging_prefix="global_seqlen", keep_minibatch=False):
        role, wg = "actor", self.actor_rollout_wg
        if role not in wg._dispatch_info:
            wg._dispatch_info[role] = wg._query_dispatch_info(role)
        dp_size = max(wg._dispatch_info[role]) + 1
        batch = upsample_batch_to_divisible_size(batch, self._get_required_batch_multiple(dp_size),
                                                 self.tokenizer.eos_token_id)
        uids = [key.rsplit("_", 2)[0] for key in batch.keys]
        padding = [bool(tag.get("is_padding", False)) for tag in batch.tags]
        workloads = [int(tag["seq_len"]) for tag in batch.tags]
        batch.reorder(group_whole_order(uids, workloads, dp_size, padding))
        return batch

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        rows = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                               select_fields=["extra_fields"])
        infos = reward_infos(rows["extra_fields"])
        for name in REWARD_COMPONENTS:
            values = [float(i[name]) for i in infos if i.get(name) is not None]
            if values:
                metrics[f"reward/{name}"] = float(np.mean(values))
        metrics.update(self.curriculum.metrics())
