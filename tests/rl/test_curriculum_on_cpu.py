"""Curriculum promotion, stage files from synth-style parquet rows (DESIGN.md §3), loading through veRL's
RLHFDataset, group-whole batch layout, and the SFT pairs conversion."""

import pandas as pd
import pytest
from omegaconf import OmegaConf
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from rl.balance import group_whole_order
from rl.curriculum import Curriculum, Stage, levels, pass_at_1_from_validation
from rl.data import held_out_file, read_rows, rl_dataset, sft_messages, stage_train_file

REFERENCE = ("import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n"
             "        return x.relu()\n"
             "def get_inputs():\n    return [torch.randn(8)]\ndef get_init_inputs():\n    return []\n")


def rows(n_per_level, levels_=(1, 2, 5)):
    out = []
    for level in levels_:
        for i in range(n_per_level):
            out.append({
                "data_source": "drtriton/synth",
                "prompt": [{"role": "user", "content": f"Write a Triton kernel for program {level}-{i}"}],
                "ability": "triton",
                "reward_model": {"style": "rule", "ground_truth": REFERENCE},
                "extra_info": {"task_id": f"synth/l{level}/{i:06d}", "level": level, "ops": ["relu"]},
            })
    return pd.DataFrame(out)


def tiny_tokenizer():
    words = sorted({w for r in rows(3)["prompt"] for w in r[0]["content"].split()} | {"user", "assistant"})
    tok = Tokenizer(models.WordLevel({w: i + 2 for i, w in enumerate(words)} | {"<pad>": 0, "<unk>": 1},
                                     unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<pad>",
        chat_template="{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
                      "{% if add_generation_prompt %}assistant{% endif %}")


def test_levels_curriculum_promotes_on_held_out_pass_at_1_above_threshold():
    c = levels([{"level": 1, "programs": 20000}, {"level": 2, "programs": 60000},
                {"level": 5, "programs": 20000}])
    assert [s.mix for s in c.stages] == [{1: 1.0}, {2: 1.0}, {5: 1.0}] and c.threshold == 0.5
    assert not c.update(pass_at_1_from_validation({"val-core/synth/level1/acc/mean@1": 0.5}))
    assert c.update(pass_at_1_from_validation({"val-core/synth/level1/acc/mean@1": 0.6,
                                               "val-core/synth/level2/acc/mean@1": 0.1}))
    assert (c.stage, c.current.gate) == (1, 2)
    assert not c.update({2: 0.4}) and c.update({2: 0.55}) and c.stage == 2
    assert not c.update({5: 0.99}) and c.stage == 2  # last stage stays
    m = c.metrics()
    assert m["curriculum/stage"] == 2.0 and m["curriculum/pass@1/level2"] == 0.55


def test_mixed_and_fixed_stages():
    mixed = Curriculum(stages=[{"mix": {1: 1.0}, "programs": 10}, {"mix": {1: 0.25, 2: 0.75}, "programs": 8}])
    assert mixed.stages[1].counts() == {1: 2, 2: 6} and mixed.stages[1].gate == 2
    fixed = Curriculum(stages=[Stage(mix={1: 0.5, 2: 0.5}, programs=4)])
    assert not fixed.update({2: 1.0})
    with pytest.raises(ValueError, match="sum"):
        Stage(mix={1: 0.5}, programs=3)


def test_stage_files_load_through_verls_rl_dataset(tmp_path):
    (tmp_path / "train.parquet").parent.mkdir(exist_ok=True)
    rows(6).to_parquet(tmp_path / "train.parquet")
    rows(3).to_parquet(tmp_path / "held_out.parquet")
    train, held = read_rows(tmp_path / "train.parquet"), read_rows(tmp_path / "held_out.parquet")
    c = Curriculum(stages=[{"mix": {1: 1.0}, "programs": 4}, {"mix": {1: 0.5, 2: 0.5}, "programs": 4}])
    held_path = held_out_file(c, held, tmp_path / "stages", per_level=2)
    data_cfg = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 64,
                                 "filter_overlong_prompts": True, "return_raw_chat": True,
                                 "cache_dir": str(tmp_path / "cache"), "filter_overlong_prompts_workers": 1})
    tok = tiny_tokenizer()
    for expected_levels in ([1] * 4, [1, 1, 2, 2]):
        ds = rl_dataset([str(stage_train_file(c, train, tmp_path / "stages"))], data_cfg, tok)
        assert sorted(int(ds[i]["extra_info"]["level"]) for i in range(len(ds))) == expected_levels
        assert ds[0]["reward_model"]["ground_truth"] == REFERENCE and ds[0]["raw_prompt"][0]["role"] == "user"
        c.update({c.current.gate: 0.9})
    val = rl_dataset([str(held_path)], data_cfg, tok)
    assert (sorted(val[i]["data_source"] for i in range(len(val)))
            == ["synth/level1"] * 2 + ["synth/level2"] * 2)


def test_rows_without_level_are_rejected(tmp_path):
    bad = rows(1)
    bad["extra_info"] = [{"task_id": "x"}] * len(bad)
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="level"):
        read_rows(tmp_path / "bad.parquet")


def test_group_whole_order_keeps_groups_on_one_rank_and_contiguous():
    uids = [f"g{i % 6}" for i in range(24)]  # 6 groups of 4, interleaved as rollouts finish
    pads = [False] * 24 + [True] * 4
    order = group_whole_order(uids + ["pad"] * 4, list(range(1, 29)), 2, pads)
    assert sorted(order) == list(range(28))
    for rank in (order[:14], order[14:]):
        real = [uids[i] for i in rank if i < 24]
        assert len(real) == 12 and [i >= 24 for i in rank] == [False] * 12 + [True] * 2
        for k in range(0, 12, 4):
            assert len(set(real[k:k + 4])) == 1  # each block of n rows is one group
    with pytest.raises(ValueError, match="sync_refill_failed_groups"):
        group_whole_order([f"g{i % 5}" for i in range(20)], [1] * 20, 2, [False] * 20)


def test_sft_pairs_become_chat_messages(tmp_path):
    pairs = rows(1).assign(response=["```python\nprint(1)\n```"] * 3)[["prompt", "response"]]
    pairs.to_parquet(tmp_path / "pairs.parquet")
    out = pd.read_parquet(sft_messages(tmp_path / "pairs.parquet", tmp_path / "sft.parquet"))
    first = list(out["messages"][0])
    assert [m["role"] for m in first] == ["user", "assistant"] and first[1]["content"].startswith("```python")
