"""The DRPO/DisCO objective itself (DESIGN.md §6), torch and numpy only: group codes and per-group terms.

rl.drpo wires these into veRL; GPU scripts use them directly (no veRL on the GPU box).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch

# incorrect outputs are coded -(1 + group * TAG_BASE + |S-|); groups may hold up to TAG_BASE - 1 outputs
TAG_BASE = 1024
# largest integer float32 holds exactly: bounds the number of groups in one batch
_FLOAT32_EXACT = 2**24


class GroupSplitError(RuntimeError):
    """A group's incorrect outputs are not all in one micro-batch, so the log-sum-exp term would be wrong."""


def pack_score(r_c: float, r_s: float) -> float:
    """The scalar reward veRL carries for DRPO/DisCO: exp(r_s) for a correct output, 0 otherwise.

    >>> pack_score(1, math.log(2.0)), pack_score(0, 3.0)
    (2.0, 0.0)
    """
    return float(math.exp(r_s)) if r_c else 0.0


def unpack_scores(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `pack_score` on a tensor: (r_c as bool, r_s with 0 where incorrect)."""
    correct = scores > 0
    r_s = torch.where(correct, torch.log(torch.where(correct, scores, torch.ones_like(scores))), 0.0)
    return correct, r_s


def encode_group_codes(correct: np.ndarray, r_s: np.ndarray, index: np.ndarray, uniform: bool,
                       speed_temperature: float) -> np.ndarray:
    """One float per output: 0 (dropped group), w in (0, 1] (correct), -(1 + g*TAG_BASE + |S-|) (incorrect).

    >>> encode_group_codes(np.array([1, 0, 1, 1]), np.zeros(4), np.array(list("aabb")), True, 0.1).tolist()
    [1.0, -2.0, 0.0, 0.0]
    """
    rows: dict[Any, list[int]] = defaultdict(list)
    for i, uid in enumerate(index):
        rows[uid].append(i)
    if len(rows) * TAG_BASE >= _FLOAT32_EXACT:
        raise ValueError(f"{len(rows)} groups in one batch: DRPO codes hold at most "
                         f"{_FLOAT32_EXACT // TAG_BASE - 1}; use a smaller train_batch_size")
    codes = np.zeros(len(index), dtype=np.float64)
    for g, members in enumerate(rows.values()):
        members = np.asarray(members)
        if len(members) >= TAG_BASE:
            raise ValueError(f"group of {len(members)} outputs: DRPO supports at most {TAG_BASE - 1} per prompt")
        pos = members[correct[members].astype(bool)]
        neg = members[~correct[members].astype(bool)]
        if len(pos) == 0 or len(neg) == 0:
            continue
        if uniform:
            codes[pos] = 1.0 / len(pos)
        else:
            z = r_s[pos] / speed_temperature
            w = np.exp(z - z.max())
            codes[pos] = w / w.sum()
        codes[neg] = -(1.0 + g * TAG_BASE + len(neg))
    return codes


def _row_codes(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The code of each row, read at its first valid token (rows are constant over valid tokens)."""
    first = mask.float().argmax(dim=-1, keepdim=True)
    return advantages.gather(-1, first).squeeze(-1) * (mask.sum(-1) > 0)


def drpo_terms(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
               response_mask: torch.Tensor, tau: float) -> dict[str, torch.Tensor]:
    """Sum over this micro-batch of each group's J, the KL estimate, and counts. Raises GroupSplitError."""
    mask = response_mask.to(log_prob.dtype)
    lengths = mask.sum(-1).clamp(min=1)
    scores = (log_prob * mask).sum(-1) / lengths
    codes = _row_codes(advantages, response_mask)
    pos = codes > 0
    objective = (codes[pos] * scores[pos]).sum()
    neg_rows = torch.nonzero(codes < 0).squeeze(-1)
    tags = (-codes[neg_rows] - 1).round().long()
    n_groups = 0
    for tag in torch.unique(tags).tolist():
        members = neg_rows[tags == tag]
        expected = tag % TAG_BASE
        if len(members) != expected:
            raise GroupSplitError(
                f"group {tag // TAG_BASE} has {expected} incorrect outputs but {len(members)} in this "
                "micro-batch: keep groups whole (rl's trainer balances whole groups; ppo_micro_batch_size_per_gpu "
                "and the per-GPU mini-batch must be multiples of rollout.n, use_dynamic_bsz=False, shuffle=False)")
        objective = objective - tau * torch.logsumexp(scores[members] / tau, dim=0)
        n_groups += 1
    kl = ((old_log_prob - log_prob) * mask).sum() / mask.sum().clamp(min=1)
    return {"objective": objective, "kl": kl, "groups": n_groups, "rows": int((response_mask.sum(-1) > 0).sum())}


