"""Async reward function for veRL: completion text -> verifier verdict -> reward and its components.

veRL loads it from `reward.custom_reward_function` (path pkg://rl.reward, name compute_score) and calls it
with the row's ground truth (the reference program) plus `reward_kwargs` from rl.yaml: the reward
decomposition (verify's `reward` group), the verifier settings and which score veRL trains on. The
verifier extracts the last fenced Python block itself; no code is a format verdict like any other.

Returned keys become veRL's reward extra info (validation metrics, dumped generations, rl's trainer logs):
score, acc (= r_c: veRL's pass@1), r_c, r_s, compiled, faithful, correct, speedup, error_class.
"""
from __future__ import annotations

import json
import threading

from rl.objective import pack_score
from verify import Task, Verifier
from verify.task import TaskError

SCORES = ("packed", "score")
_verifiers: dict[str, Verifier] = {}
_lock = threading.Lock()


def _plain(node):
    if isinstance(node, dict) or node is None:
        return node
    from omegaconf import OmegaConf  # config nodes come from veRL's reward_kwargs; plain dicts need no Hydra

    return OmegaConf.to_container(node, resolve=True)


def verifier_for(settings: dict | None, workers: int | None) -> Verifier:
    """One verifier pool per reward-worker process and settings (GPU pool with CUDA, interpreter without)."""
    settings = dict(_plain(settings) or {})
    key = json.dumps([settings, workers], sort_keys=True)
    with _lock:
        if key not in _verifiers:
            _verifiers[key] = Verifier(settings, workers=workers)
        return _verifiers[key]


def _decomposition(reward):
    if reward is None:
        raise ValueError("rl's reward function needs `reward` (verify's reward group) in reward_kwargs")
    if callable(reward):
        return reward
    from hydra.utils import instantiate

    return instantiate(reward)


def _task(ground_truth: str, extra_info: dict | None) -> Task:
    info = dict(extra_info or {})
    return Task.from_code(ground_truth, id=str(info.get("task_id", info.get("id", "task"))), source="synth",
                level=int(info.get("level") or 0), ops=tuple(info.get("ops") or ()))


def score_verdict(verdict, reward, score: str = "packed") -> dict:
    """The dict veRL gets for one verdict: the trained-on score plus every component."""
    if score not in SCORES:
        raise ValueError(f"rl.score must be one of {SCORES}, got {score!r}")
    parts = dict(_decomposition(reward)(verdict))
    out = {k: float(v) for k, v in parts.items()}
    if score == "packed":
        out["score"] = pack_score(out["r_c"], out["r_s"])
    out["acc"] = out["r_c"]
    out["error_class"] = verdict.error_class or ""
    return out


async def compute_score(data_source: str, solution_str: str, ground_truth: str,
                        extra_info: dict | None = None, reward=None, verifier: dict | None = None,
                        workers: int | None = None, score: str = "packed", **_: object) -> dict:
    """veRL's reward-function signature, async: verify `solution_str` against the reference program."""
    try:
        task = _task(ground_truth, extra_info)
    except TaskError as e:
        raise ValueError(f"row of {data_source} has an unusable reference program: {e}") from e
    verdict = await verifier_for(verifier, workers).verify_async(task, solution_str)
    return score_verdict(verdict, reward, score)
