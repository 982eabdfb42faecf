"""The curriculum through veRL's own training loop (issue 25), on CPU.

`PPOTrainer.fit` of veRL 0.9.1 runs unchanged with rl's CurriculumTrainer, its real train and held-out
files, veRL's RLHFDataset and StatefulDataLoader. What needs GPUs is stood in for below `CurriculumTrainer`
in the class hierarchy (`GpuFree`): a step fetches its prompts from the dataloader (veRL's
`_next_train_batch`) instead of generating and training on them, validation reports a scripted held-out
pass@1, the actor worker group writes an empty checkpoint folder, and transfer_queue (Ray actors) is an
in-memory dict.
"""
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_module
from tokenizers import Tokenizer, models, pre_tokenizers
from transfer_queue import KVBatchMeta
from transformers import PreTrainedTokenizerFast
from verl.trainer.ppo.v1 import trainer_base
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

import rl.trainer
from rl.trainer import CURRICULUM_STATE, CurriculumTrainer
from synth.export import split_file

REFERENCE = ("import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n"
             "        return x.relu()\ndef get_inputs():\n    return [torch.randn(8)]\n"
             "def get_init_inputs():\n    return []\n")


def export(path: Path, counts: dict[int, int]) -> None:
    """A parquet in synth's export format (DESIGN.md §3) with `counts[level]` programs per level."""
    levels = np.concatenate([np.full(n, lv) for lv, n in counts.items()])
    pd.DataFrame({
        "data_source": "drtriton/synth",
        "prompt": [[{"role": "user", "content": "kernel"}]] * len(levels),
        "ability": "triton",
        "reward_model": [{"style": "rule", "ground_truth": REFERENCE}] * len(levels),
        "extra_info": [{"task_id": f"l{lv}/{i}", "level": int(lv), "ops": ["relu"], "index": i}
                       for i, lv in enumerate(levels)],
    }).to_parquet(path)


def tokenizer():
    tok = Tokenizer(models.WordLevel({"<pad>": 0, "<unk>": 1, "user": 2, "kernel": 3}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   eos_token="<pad>",
                                   chat_template="{% for m in messages %}{{ m['content'] }}{% endfor %}")


class MemoryTransferQueue:
    """transfer_queue's key-value calls that veRL's loop and rl's metrics make, kept in a dict."""

    def __init__(self):
        self.rows = {}

    def kv_batch_get(self, keys, partition_id, select_fields=None):
        if select_fields == ["advantages"]:
            return {"advantages": torch.nested.nested_tensor([self.rows[k]["advantages"] for k in keys])}
        column = np.empty(len(keys), dtype=object)
        column[:] = [self.rows[k] for k in keys]
        return {"extra_fields": column}

    def kv_clear(self, keys, partition_id):
        for k in keys:
            self.rows.pop(k, None)

    def kv_list(self, partition_id=None):
        return {}

    def save_checkpoint(self, path, metadata=None):
        os.makedirs(path, exist_ok=True)

    def load_checkpoint(self, path):
        pass


class ActorWorkers:
    """The actor worker group's calls: checkpoints as empty folders; loads and updates recorded."""

    def __init__(self):
        self.loaded, self.updates = [], 0

    def update_actor(self, batch):
        self.updates += 1
        return {"metrics": {"mfu": [0.5], "pg_loss": [0.0]}}

    def save_checkpoint(self, local_path, remote_path, global_step, max_ckpt_to_keep=None):
        os.makedirs(local_path, exist_ok=True)

    def load_checkpoint(self, local_path, del_local_after_load=False):
        self.loaded.append(local_path)


class GpuFree(PPOTrainerSync):
    """veRL's GPU side, replaced: steps draw their prompts, validation reports `pass_at` at the gate."""

    pass_at = None  # (curriculum, global step) -> held-out pass@1 of the current gate level

    def step(self, metrics, timing_raw):
        batch = self._next_train_batch()
        levels = [int(info["level"]) for info in batch["extra_info"]]
        self.trained.append((self.global_steps, self.curriculum.stage, levels))
        keys = [f"{uid}_0_0" for uid in batch["uid"]]
        for k in keys:
            self.tq.rows[k] = {"reward_extra_info": {"r_c": 1.0, "r_s": 0.0}}
        return KVBatchMeta(partition_id="train", keys=keys, tags=[{} for _ in keys])

    def _validate(self):
        gate = self.curriculum.current.gate
        return {f"val-core/synth/level{gate}/acc/mean@1": self.pass_at(self.curriculum, self.global_steps)}

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        metrics.update({"training/global_step": global_steps, "training/epoch": epoch})

    def on_step_end(self):
        self.logged_epochs.append((self.global_steps - 1) // self.steps_per_epoch)

    def on_sample_end(self):
        pass


class Replay(CurriculumTrainer, GpuFree):
    """rl's trainer over the GPU-free stand-ins (CurriculumTrainer's super() calls reach GpuFree first)."""


def config(tmp_path, experiment, overrides=()):
    with initialize_config_module("rl.conf", version_base=None):
        return compose("rl", overrides=[
            f"+experiment={experiment}", f"rl.data.dir={tmp_path}",
            f"rl.data.stage_dir={tmp_path / 'stages'}", f"trainer.default_local_dir={tmp_path / 'ckpt'}",
            "trainer.logger=[console]", "trainer.test_freq=1",
            "trainer.save_freq=-1", "data.dataloader_num_workers=0", "rl.data.held_out_per_level=2",
            *overrides])


def start(cfg, monkeypatch, pass_at):
    """Construct and initialise the trainer as veRL's task runner would, minus the worker groups."""
    tq = MemoryTransferQueue()
    monkeypatch.setattr(trainer_base, "tq", tq)
    monkeypatch.setattr(rl.trainer, "tq", tq)
    trainer = Replay(cfg)
    trainer.tq, trainer.trained, trainer.logged_epochs, trainer.pass_at = tq, [], [], pass_at
    trainer.tokenizer, trainer.processor = tokenizer(), None
    trainer.actor_rollout_wg = ActorWorkers()
    trainer._init_dataloader()
    trainer._init_dump_executor()
    trainer._load_checkpoint()
    return trainer


def promote_at(steps):
    """pass@1 above the threshold at the validation after each step in `steps` (one promotion each)."""
    return lambda curriculum, step: 0.9 if step in steps else 0.1


def steps_per_stage(trainer):
    stages = [stage for _, stage, _ in trainer.trained]
    return [stages.count(s) for s in range(len(trainer.curriculum.stages))]


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory):
    """The paper's curriculum: 20k level-1, 60k level-2 and 20k level-5 programs (1/16 unless
    RL_REPLAY_FULL_SIZE=1)."""
    d = tmp_path_factory.mktemp("paper")
    div = 1 if os.environ.get("RL_REPLAY_FULL_SIZE") == "1" else 16
    export(d / split_file("train"), {1: 20000 // div, 2: 60000 // div, 5: 20000 // div})
    export(d / split_file("heldout"), {1: 2, 2: 2, 5: 2})
    return d


# drtriton_7b with programs and batch size divided by 16: the same steps per stage (156, 468, 156) and run
# length (800), 16x fewer prompts to draw; RL_REPLAY_FULL_SIZE=1 replays the full size (minutes on CPU)
SCALED = ["curriculum.stages=[{level: 1, programs: 1250}, {level: 2, programs: 3750}, "
          "{level: 5, programs: 1250}]",
          "data.train_batch_size=8", "actor_rollout_ref.actor.ppo_mini_batch_size=8"]


@pytest.mark.slow
@pytest.mark.parametrize("promotions, expected", [
    ((100, 400), [100, 300, 400]),  # issue 25: promoted after 100 and 300 more steps; level 5 used to get 0
    ((156, 157), [156, 1, 643]),  # promoted as stage 1's data runs out, then at once
    ((), [800, 0, 0]),  # never promoted: level 1 for the whole run (it used to end at step 156)
    ((0, 700), [0, 700, 100]),  # the SFT model already passes level 1 in the validation before training
], ids=["issue-25", "at-epoch-end", "never", "before-training"])
def test_paper_run_reaches_every_stage_and_ends_on_total_steps(paper_data, tmp_path, monkeypatch, promotions,
                                                               expected):
    scaled = os.environ.get("RL_REPLAY_FULL_SIZE") != "1"
    cfg = config(paper_data, "drtriton_7b", [f"trainer.default_local_dir={tmp_path / 'ckpt'}",
                                             f"rl.data.stage_dir={tmp_path / 'stages'}",
                                             *(SCALED if scaled else [])])
    trainer = start(cfg, monkeypatch, promote_at(set(promotions)))
    assert trainer.total_training_steps == 800
    trainer.fit(agent_loop_manager=None)
    assert [s for s, _, _ in trainer.trained] == list(range(1, 801))
    assert steps_per_stage(trainer) == expected
    assert trainer.curriculum.steps == expected
    want_levels = (1, 2, 5)
    for step, stage, levels in trainer.trained:
        assert len(levels) == cfg.data.train_batch_size and set(levels) == {want_levels[stage]}, step
    assert trainer.logged_epochs == [0] * 800  # one epoch, whatever the stage sizes
    print(f"\n[replay] drtriton_7b{' (1/16 scale)' if scaled else ''}, promotions after steps {promotions}: "
          f"steps per stage (levels 1, 2, 5) = {steps_per_stage(trainer)}")


def small_data(d):
    export(d / split_file("train"), {1: 40, 2: 40, 5: 40})
    export(d / split_file("heldout"), {1: 2, 2: 2, 5: 2})


SMALL = ["curriculum.stages=[{level: 1, programs: 40}, {level: 2, programs: 40}, {level: 5, programs: 40}]",
         "trainer.total_training_steps=30", "data.train_batch_size=4",
         "actor_rollout_ref.actor.ppo_mini_batch_size=4",
         "trainer.n_gpus_per_node=1", "actor_rollout_ref.rollout.tensor_model_parallel_size=1"]


@pytest.mark.slow
@pytest.mark.parametrize("stop_after, promotions", [(15, {4, 9}), (9, {4, 9}), (3, {4, 9})],
                         ids=["mid-stage", "at-promotion", "before-promotion"])
def test_resume_continues_in_the_saved_stage_at_its_sampler_position(tmp_path, monkeypatch, stop_after,
                                                                     promotions):
    small_data(tmp_path)
    full = start(config(tmp_path, "drtriton_7b", SMALL + [f"trainer.default_local_dir={tmp_path / 'ref'}"]),
                 monkeypatch, promote_at(promotions))
    full.fit(agent_loop_manager=None)

    first = start(config(tmp_path, "drtriton_7b", SMALL + [f"trainer.total_training_steps={stop_after}",
                                                          "trainer.save_freq=1"]),
                  monkeypatch, promote_at(promotions))
    first.fit(agent_loop_manager=None)
    saved = json.loads((tmp_path / "ckpt" / f"global_step_{stop_after}" / CURRICULUM_STATE).read_text())
    assert saved["stage"] == first.curriculum.stage and sum(saved["steps"]) == stop_after

    resumed = start(config(tmp_path, "drtriton_7b", SMALL), monkeypatch, promote_at(promotions))
    assert resumed.global_steps == stop_after
    assert resumed.actor_rollout_wg.loaded == [str(tmp_path / "ckpt" / f"global_step_{stop_after}" / "actor")]
    assert resumed.curriculum.stage == saved["stage"] and resumed.curriculum.steps == saved["steps"]
    resumed.fit(agent_loop_manager=None)
    # the same prompts, in the same order, as the run that never stopped
    assert first.trained + resumed.trained == full.trained
    assert resumed.curriculum.steps == full.curriculum.steps == [4, 5, 21]


def test_resume_from_a_checkpoint_without_curriculum_state_names_the_fix(tmp_path, monkeypatch):
    small_data(tmp_path)
    (tmp_path / "ckpt" / "global_step_3" / "actor").mkdir(parents=True)
    (tmp_path / "ckpt" / "latest_checkpointed_iteration.txt").write_text("3")
    with pytest.raises(FileNotFoundError, match="resume_mode=disable"):
        start(config(tmp_path, "drtriton_7b", SMALL), monkeypatch, promote_at(()))


def test_run_length_defaults_to_one_pass_over_the_stages(tmp_path, monkeypatch):
    small_data(tmp_path)
    trainer = start(config(tmp_path, "drtriton_7b", SMALL + ["trainer.total_training_steps=null",
                                                            "trainer.total_epochs=2"]),
                    monkeypatch, promote_at(()))
    assert trainer.total_training_steps == 2 * (10 + 10 + 10)


@pytest.mark.parametrize("estimator", ["drpo", "disco", "grpo"])
def test_a_step_that_keeps_no_group_skips_the_actor_update(tmp_path, monkeypatch, estimator):
    """All-zero DRPO codes give a zero gradient, but AdamW's momentum would still move the weights."""
    small_data(tmp_path)
    trainer = start(config(tmp_path, "drtriton_7b", SMALL + [f"algorithm={estimator}"]), monkeypatch,
                    promote_at(()))
    lengths = [3, 5, 2, 4]
    for codes, expected_updates in (([0.0] * 4, 0 if estimator != "grpo" else 1), ([2.0, -2.0, 0.0, 0.0], 1)):
        keys = [f"uid{i}_0_0" for i in range(4)]
        for k, code, length in zip(keys, codes, lengths):
            trainer.tq.rows[k] = {"advantages": torch.full((length,), code)}
        trainer.actor_rollout_wg.updates, metrics = 0, {}
        trainer._update_actor(KVBatchMeta(partition_id="train", keys=keys, tags=[{}] * 4), metrics)
        assert trainer.actor_rollout_wg.updates == expected_updates
        if estimator != "grpo":
            assert metrics["actor/update_skipped"] == float(expected_updates == 0)
