"""Contract tests: every reward decomposition in conf/reward/ scores the whole fixture suite sanely,
and the speed terms follow their formulas on verdicts with timings."""
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import verify
from verify.rewards import Speedup
from verify.verdict import Timing, Verdict

REWARD_DIR = Path(verify.__file__).parent / "conf" / "reward"
REWARDS = sorted(p.stem for p in REWARD_DIR.glob("*.yaml"))
KEYS = {"score", "r_c", "r_s", "compiled", "faithful", "correct", "speedup"}


def make(name):
    return instantiate(OmegaConf.load(REWARD_DIR / f"{name}.yaml"))


def timed_verdict(eager_ms, cand_ms):
    v = Verdict(task_id="t")
    for s in ("format", "compile", "faithful", "correct", "timed"):
        v.passed(s)
    v.eager, v.candidate = (Timing(eager_ms, 0, eager_ms, eager_ms, 10),
                            Timing(cand_ms, 0, cand_ms, cand_ms, 10))
    v.speedup_eager = eager_ms / cand_ms
    return v


def test_all_three_exist():
    assert set(REWARDS) >= {"binary", "speedup", "decoupled"}


@pytest.mark.parametrize("name", REWARDS)
def test_reward_contract_on_suite(name, suite_verdicts):
    reward = make(name)
    for _, v in suite_verdicts["good"]:
        r = reward(v)
        assert set(r) >= KEYS and r["r_c"] == 1.0 and r["score"] >= 1.0 - 1e-9
    for _, v in suite_verdicts["bad"]:
        r = reward(v)
        assert r["r_c"] == 0.0 and r["score"] == 0.0 and r["r_s"] == 0.0


@pytest.mark.parametrize("name", REWARDS)
def test_reward_speed_terms(name):
    import math

    r = make(name)(timed_verdict(2.0, 1.0))
    assert r["r_c"] == 1.0 and r["speedup"] == 2.0
    if name == "binary":
        assert r["score"] == 1.0 and r["r_s"] == 0.0
    elif name == "speedup":
        assert r["score"] == pytest.approx(1 + math.log(2.0)) and r["r_s"] == pytest.approx(math.log(2.0))
    else:
        assert r["score"] == 1.0 and r["r_s"] == pytest.approx(math.log(2.0))
    slow = make(name)(timed_verdict(1.0, 2.0))
    assert slow["r_c"] == 1.0 and slow["score"] >= 0.0  # correct but slow is never scored below wrong


def test_power_transform_override():
    cfg = OmegaConf.load(REWARD_DIR / "decoupled.yaml")
    cfg.transform.kind = "power"
    r = instantiate(cfg)(timed_verdict(16.0, 1.0))
    assert r["r_s"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", REWARDS)
@pytest.mark.parametrize("kind", ["log", "power"])
def test_every_correct_program_scores_above_every_wrong_one(name, kind, suite_verdicts):
    """Issue 25: with score = 1 + log(speedup), correct kernels slower than 0.37x scored below wrong ones."""
    cfg = OmegaConf.load(REWARD_DIR / f"{name}.yaml")
    if "transform" in cfg:
        cfg.transform.kind = kind
    reward = instantiate(cfg)
    speedups = [1e-4, 0.01, 0.1, 0.3678, 0.5, 1.0, 2.0, 100.0]
    correct = [reward(timed_verdict(1.0, 1.0 / s))["score"] for s in speedups]
    correct += [reward(v)["score"] for _, v in suite_verdicts["good"]]
    wrong = [reward(v)["score"] for _, v in suite_verdicts["bad"]]
    assert min(correct) > max(wrong), (min(correct), max(wrong))
    if name == "speedup":
        scores = [reward(timed_verdict(1.0, 1.0 / s))["score"] for s in speedups]
        assert scores == sorted(scores) and scores[-1] > scores[-3]  # never faster-is-worse; fast still pays


def test_speedup_floor_must_keep_correct_above_wrong():
    with pytest.raises(ValueError, match="floor"):
        Speedup(floor=-1.0)
