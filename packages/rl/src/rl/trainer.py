"""rl's veRL trainer (trainer.v1.trainer_mode=drtriton_curriculum): veRL's synchronous PPO trainer plus
- whole groups per data-parallel rank and micro-batch (rl.balance), which DRPO's loss requires;
- the curriculum: per-stage training prompts, promotion on held-out pass@1 after each validation;
- W&B metrics: curriculum stage and pass@1 per level, and the reward components of each step's rollouts.

Imported by rl.launch's task runner inside its Ray actor, which registers the trainer there.
"""
from __future__ import annotations

import numpy as np
import transfer_queue as tq
from hydra.utils import instantiate
from omegaconf import open_dict
from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from rl.balance import group_whole_order
from rl.curriculum import pass_at_1_from_validation
from rl.data import held_out_file, read_rows, stage_train_file

# numeric reward components averaged into `reward/<name>` each step
REWARD_COMPONENTS = ("r_c", "r_s", "compiled", "faithful", "correct", "speedup")


def reward_infos(fields) -> list[dict]:
    """Each rollout's reward_extra_info from transfer_queue's ``extra_fields`` column: a numpy object array, or a
    tensordict ``LinkedList`` (a list subclass without ``tolist``; seen with veRL 0.9.1 on the H200, 2026-12-02)."""
    fields = fields.tolist() if hasattr(fields, "tolist") else list(fields)
    return [f.get("reward_extra_info", {}) if isinstance(f, dict) else {} for f in fields]


@register_trainer("drtriton_curriculum")
class CurriculumTrainer(PPOTrainerSync):
    def __init__(self, config):
        super().__init__(config)
        self.curriculum = instantiate(config.curriculum, _convert_="all")
        self._train_rows = read_rows(config.rl.data.train)
        self._held_out_rows = read_rows(config.rl.data.held_out)
        self._point_data_at_stage()

    def _point_data_at_stage(self) -> None:
        stage_dir = self.config.rl.data.stage_dir
        with open_dict(self.config):
            self.config.data.train_files = str(stage_train_file(self.curriculum, self._train_rows, stage_dir))
            self.config.data.val_files = str(held_out_file(
                self.curriculum, self._held_out_rows, stage_dir, self.config.rl.data.held_out_per_level))

    def _validate(self) -> dict:
        metrics = super()._validate()
        if self.curriculum.update(pass_at_1_from_validation(metrics)):
            self._point_data_at_stage()
            self._init_dataloader()
        metrics.update(self.curriculum.metrics())
        return metrics

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
        rows = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
        infos = reward_infos(rows["extra_fields"])
        for name in REWARD_COMPONENTS:
            values = [float(i[name]) for i in infos if i.get(name) is not None]
            if values:
                metrics[f"reward/{name}"] = float(np.mean(values))
        metrics.update(self.curriculum.metrics())
