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
    """One float per output: 0 (dropped group), w * G/K (correct), -(1 + g*TAG_BASE + |S-|) (incorrect).

    w is the output's weight within its group (softmax of r_s / speed_temperature, or uniform), G the
    number of groups in the batch and K the number kept (neither all correct nor all wrong). The G/K factor
    carries the normalisation by kept groups to the loss, which sees only its micro-batch: a kept group's
    correct codes sum to G/K, and the loss divides by the mini-batch's G.

    >>> encode_group_codes(np.array([1, 0, 1, 1]), np.zeros(4), np.array(list("aabb")), True, 0.1).tolist()
    [2.0, -2.0, 0.0, 0.0]
    """
    rows: dict[Any, list[int]] = defaultdict(list)
    for i, uid in enumerate(index):
        rows[uid].append(i)
    if len(rows) * TAG_BASE >= _FLOAT32_EXACT:
        raise ValueError(f"{len(rows)} groups in one batch: DRPO codes hold at most "
                         f"{_FLOAT32_EXACT // TAG_BASE - 1}; use a smaller train_batch_size")
    codes = np.zeros(len(index), dtype=np.float64)
    kept = 0
    for g, members in enumerate(rows.values()):
        members = np.asarray(members)
        if len(members) >= TAG_BASE:
            raise ValueError(
                f"group of {len(members)} outputs: DRPO supports at most {TAG_BASE - 1} per prompt")
        pos = members[correct[members].astype(bool)]
        neg = members[~correct[members].astype(bool)]
        if len(pos) == 0 or len(neg) == 0:
            continue
        kept += 1
        if uniform:
            codes[pos] = 1.0 / len(pos)
        else:
            z = r_s[pos] / speed_temperature
            w = np.exp(z - z.max())
            codes[pos] = w / w.sum()
        codes[neg] = -(1.0 + g * TAG_BASE + len(neg))
    if kept:
        codes[codes > 0] *= len(rows) / kept
    return codes


def _row_codes(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The code of each row, read at its first valid token (rows are constant over valid tokens)."""
    first = mask.float().argmax(dim=-1, keepdim=True)
    return advantages.gather(-1, first).squeeze(-1) * (mask.sum(-1) > 0)


def drpo_terms(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
               response_mask: torch.Tensor, tau: float, group_size: int,
               kl_bound: float) -> dict[str, torch.Tensor]:
    """Sums over this micro-batch's groups, its consecutive blocks of `group_size` rows (rl's trainer lays
    batches out so; trailing rows of veRL's padding have no tokens). Raises GroupSplitError otherwise.

    - objective: sum over kept groups of (G/K) J_g, from the codes of `encode_group_codes`;
    - hinge: sum over all groups of n_g [KL_g - kl_bound]_+^2, with KL_g the token-mean of log pi_old - log pi
      over the group's n_g tokens (the loss divides it by the tokens of the mini-batch);
    - kl: token-mean KL over the micro-batch, groups: kept groups, tokens: valid tokens (for metrics).
    """
    mask = response_mask.to(log_prob.dtype)
    lengths = mask.sum(-1)
    scores = (log_prob * mask).sum(-1) / lengths.clamp(min=1)
    codes = _row_codes(advantages, response_mask)
    token_kl = ((old_log_prob - log_prob) * mask).sum(-1)
    objective = log_prob.new_zeros(())
    hinge = log_prob.new_zeros(())
    n_groups = 0
    for start in range(0, len(codes), group_size):
        rows = slice(start, start + group_size)
        tokens = lengths[rows].sum()
        if len(codes[rows]) < group_size and tokens > 0:
            raise GroupSplitError(f"the micro-batch ends in {len(codes[rows])} rows of a group of "
                                  f"{group_size}: " + _KEEP_WHOLE)
        if tokens > 0:
            hinge = hinge + tokens * torch.clamp(token_kl[rows].sum() / tokens - kl_bound, min=0.0) ** 2
        objective = objective + _group_objective(codes[rows], scores[rows], tau, start // group_size)
        n_groups += bool((codes[rows] != 0).any())
    kl = token_kl.sum() / mask.sum().clamp(min=1)
    return {"objective": objective, "hinge": hinge, "kl": kl, "groups": n_groups, "tokens": int(mask.sum())}


_KEEP_WHOLE = ("keep groups whole and contiguous (rl's trainer lays them out so; "
               "ppo_micro_batch_size_per_gpu and the per-GPU mini-batch must be multiples of rollout.n, "
               "use_dynamic_bsz=False, shuffle=False)")


def _group_objective(codes: torch.Tensor, scores: torch.Tensor, tau: float, block: int) -> torch.Tensor:
    """(G/K) J_g of one block of rows, 0 for a dropped group; GroupSplitError if it is not one group."""
    pos, neg = codes > 0, codes < 0
    if not neg.any() and not pos.any():
        return scores.new_zeros(())
    tags = torch.unique((-codes[neg] - 1).round().long()).tolist()
    if len(tags) != 1 or not pos.any() or int(neg.sum()) != tags[0] % TAG_BASE or bool((codes == 0).any()):
        first = block * len(codes)
        raise GroupSplitError(f"rows {first}..{first + len(codes) - 1} of the micro-batch are not one kept "
                              f"group (incorrect-output tags {tags}): " + _KEEP_WHOLE)
    scale = codes[pos].sum()  # G/K, see encode_group_codes
    return (codes[pos] * scores[pos]).sum() - scale * tau * torch.logsumexp(scores[neg] / tau, dim=0)
