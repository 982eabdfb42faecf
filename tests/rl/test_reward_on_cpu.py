"""rl's async reward function scores real completions end to end on CPU (Triton interpreter):
a correct candidate, a wrong one, a hacked one and a completion with no code."""
import asyncio
import math

import pytest
from hydra import compose, initialize_config_module

from rl.drpo import pack_score
from rl.reward import compute_score
from verify.fixtures import adversarial_cases, fixture_candidate, fixture_task

VERIFIER = {"device": "cpu", "trials": 2, "timing": False, "timeout_s": 120}


@pytest.fixture(scope="module")
def rewards():
    """The reward decompositions exactly as `python -m rl` composes them for each algorithm."""
    with initialize_config_module("rl.conf", version_base=None):
        return {"decoupled": compose("rl", overrides=["algorithm=drpo"]).rl.reward,
                "speedup": compose("rl", overrides=["algorithm=grpo"]).rl.reward}


def score(task, text, reward, mode="packed"):
    extra = {"task_id": task.id, "level": task.level, "ops": list(task.ops)}
    return asyncio.run(compute_score("synth/level1", text, task.code, extra, reward=reward, verifier=VERIFIER,
                                     workers=2, score=mode))


def completion(program):
    """An LLM-style completion around a program (fixtures that already are completions pass through)."""
    return program if "```" in program else f"Here is my kernel.\n```python\n{program}\n```\n"


@pytest.mark.slow
def test_scores_correct_wrong_hacked_and_no_code(rewards):
    relu = fixture_task("relu_scale_bias")
    hacked = next(c for c in adversarial_cases() if c["error_class"] == "torch_fallback")
    correct = score(relu, completion(fixture_candidate("relu_scale_bias")), rewards["decoupled"])
    # a correct kernel for another task is a wrong answer to this one
    wrong = score(relu, completion(fixture_candidate("softmax")), rewards["decoupled"])
    hack = score(hacked["task"], completion(hacked["text"]), rewards["decoupled"])
    none = score(relu, "I would write a Triton kernel for this, but here is only prose.",
                 rewards["decoupled"])

    keys = {"score", "acc", "r_c", "r_s", "compiled", "faithful", "correct", "speedup", "error_class"}
    for result in (correct, wrong, hack, none):
        assert keys <= set(result)
    assert (correct["r_c"], correct["acc"], correct["compiled"], correct["faithful"]) == (1.0, 1.0, 1.0, 1.0)
    assert correct["error_class"] == "" and correct["r_s"] == 0.0  # no timing on the interpreter
    assert correct["score"] == pack_score(1, 0.0) == 1.0
    assert wrong["r_c"] == 0.0 and wrong["score"] == 0.0 and wrong["error_class"] != ""
    assert (hack["r_c"], hack["faithful"], hack["error_class"]) == (0.0, 0.0, "torch_fallback")
    assert (none["r_c"], none["compiled"], none["error_class"]) == (0.0, 0.0, "no_code_block")


@pytest.mark.slow
def test_grpo_score_is_the_decompositions_own(rewards):
    relu = fixture_task("relu_scale_bias")
    result = score(relu, completion(fixture_candidate("relu_scale_bias")), rewards["speedup"], mode="score")
    assert result["score"] == 1.0 + result["r_s"] and math.isfinite(result["score"])
