"""One verifier config for every package (verify's `verifier` group, typed by VerifyConfig), and this
workspace's Hydra groups kept out of other Hydra apps installed in the same environment."""
import os
import subprocess
import sys

import pytest
import yaml
from hydra import compose, initialize
from omegaconf import OmegaConf

from verify.config import VerifyConfig

GROUPS = ("experiment", "reward", "solver", "suite", "strategy", "verifier")


def run(args, cwd, env=None):
    return subprocess.run([sys.executable, "-W", "ignore", *args], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def verify_block(pkg, node, tmp_path):
    out = run(["-m", pkg, "--cfg", "job", "--package", node], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    return yaml.safe_load(out.stdout.split("\n", 1)[1])


@pytest.mark.slow
def test_every_package_prints_the_one_verifier_block_with_its_stated_overrides(tmp_path):
    one = OmegaConf.to_container(OmegaConf.structured(VerifyConfig))
    assert verify_block("verify", "verify", tmp_path) == one
    assert verify_block("search", "verify", tmp_path) == one
    assert verify_block("bench", "verify", tmp_path) == {**one, "compile_baseline": True}
    assert verify_block("synth", "teacher.verify", tmp_path) == {**one, "timing": False}
    assert verify_block("rl", "rl.verifier", tmp_path) == one


def test_wrong_type_or_key_fails_at_composition_naming_the_key(tmp_path):
    with initialize(version_base=None, config_path=None):
        cfg = compose("verify", overrides=["verify.trials=7"])
    assert cfg.verify.trials == 7 and VerifyConfig.from_mapping(cfg.verify).trials == 7
    typed = run(["-m", "verify", "verify.trials=abc"], cwd=tmp_path)
    assert typed.returncode == 2 and "Traceback" not in typed.stderr
    assert "Value 'abc' of type 'str' could not be converted to Integer" in typed.stderr
    assert "full_key: verify.trials" in typed.stderr
    unknown = run(["-m", "search", "verify.trails=3"], cwd=tmp_path)
    assert unknown.returncode != 0 and "Key 'trails' not in 'VerifyConfig'" in unknown.stderr


def test_output_choice_is_checked_before_any_work(tmp_path):
    out = run(["-m", "verify", "output=yaml"], cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: output=yaml is not a choice: use one of text, json"]


FOREIGN_APP = """
import hydra

@hydra.main(version_base=None, config_path="conf", config_name="app")
def main(cfg):
    print("composed:", sorted(cfg))

main()
"""


def test_a_foreign_hydra_app_does_not_see_our_groups(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.yaml").write_text("name: foreign\n")
    (tmp_path / "app.py").write_text(FOREIGN_APP)
    helped = run(["app.py", "--help"], cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    groups = helped.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert not [g for g in GROUPS if f"{g}:" in groups], groups
    # without our `reward` group, +reward=speedup is only a string value in the foreign app's config
    merged = run(["app.py", "+reward=speedup", "--cfg", "job"], cwd=tmp_path)
    assert yaml.safe_load(merged.stdout) == {"name": "foreign", "reward": "speedup"}, merged.stderr
    # the opt-in shows the same app our groups and merges our node, so the checks above are not vacuous
    env = {"DRTRITON_HYDRA_GROUPS": "1"}
    opted = run(["app.py", "--help"], cwd=tmp_path, env=env)
    assert all(f"{g}:" in opted.stdout for g in GROUPS), opted.stdout
    ours = run(["app.py", "+reward=speedup", "--cfg", "job"], cwd=tmp_path, env=env)
    assert yaml.safe_load(ours.stdout)["reward"]["_target_"] == "verify.rewards.Speedup", ours.stderr
