"""DRPO and DisCO (DESIGN.md §6) as a veRL advantage estimator plus a group-aware policy loss.

The math lives in rl.objective (torch only); this module is its veRL face: typed config classes, the
estimator and loss signatures veRL dispatches to.

For prompt q with sampled outputs split into correct S+ and incorrect S-, DRPO maximises

    J = sum_{o in S+} w(o) s(o) - tau * log sum_{o in S-} exp(s(o) / tau)

with s(o) the length-normalised log-likelihood of o, w = softmax over S+ of r_s / lambda (DisCO: w uniform),
groups that are all correct or all wrong dropped, under KL(pi_old || pi_theta) <= delta enforced by the
penalty beta0 * [KL - delta]_+^2 / 2.

veRL splits the work in two places, and so does this module:
- the advantage estimator (`drpo`, `disco`) sees the rewards and the group ids (uid) of the whole batch.
  It writes one code per response, constant over its tokens (see `encode_group_codes`);
- the policy loss (`drpo`) sees one micro-batch of log-probs and those codes. The log-sum-exp and the KL
  hinge couple a group's rows, so every group must sit whole, as rollout.n consecutive rows, in one
  micro-batch (rl's trainer lays batches out so). Incorrect codes carry a group tag and the group's |S-|: a
  block of rows that is not one group raises `GroupSplitError` instead of computing a different objective.
  The conventions (normalisation by kept groups, one KL hinge per group) are in `compute_policy_loss_drpo`.

The reward veRL trains on is `pack_score(r_c, r_s) = r_c * exp(r_s)` (for r_s = log speedup, the speedup of
a correct output and 0 otherwise), so both components travel through veRL's scalar reward unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from verl.trainer.config import AlgoConfig
from verl.workers.config import PolicyLossConfig

from rl.objective import GroupSplitError, drpo_terms, encode_group_codes, pack_score, unpack_scores

__all__ = ["DRPOAlgoConfig", "DRPOLossConfig", "GroupSplitError", "compute_policy_loss_drpo",
           "disco_advantage", "drpo_advantage", "pack_score"]

@dataclass
class DRPOAlgoConfig(AlgoConfig):
    """veRL's algorithm config plus the speed temperature of DRPO's correct-output weights."""

    # temperature lambda of w(o) = softmax(r_s / lambda) over a group's correct outputs (DisCO ignores it)
    speed_temperature: float = 0.1

    def __post_init__(self):
        if self.speed_temperature <= 0:
            raise ValueError(f"algorithm.speed_temperature must be > 0, got {self.speed_temperature}")


@dataclass
class DRPOLossConfig(PolicyLossConfig):
    """veRL's policy-loss config plus DRPO's hyperparameters (loss_mode: drpo)."""

    # temperature tau of the log-sum-exp over incorrect outputs
    tau: float = 5.0
    # penalty coefficient beta0 of the KL constraint
    beta0: float = 100.0
    # KL bound delta: KL(pi_old || pi_theta) above it is penalised
    kl_bound: float = 1e-3

    def __post_init__(self):
        for name in ("tau", "beta0"):
            if getattr(self, name) <= 0:
                raise ValueError(f"policy_loss.{name} must be > 0, got {getattr(self, name)}")
        if self.kl_bound < 0:
            raise ValueError(f"policy_loss.kl_bound must be >= 0, got {self.kl_bound}")


def _group_codes_advantage(token_level_rewards, response_mask, index, config, uniform):
    if index is None:
        raise ValueError("DRPO/DisCO need the group ids (uid) of the batch; veRL passes them as `index`")
    temperature = 1.0 if config is None else config.get("speed_temperature", 0.1)
    with torch.no_grad():
        correct, r_s = unpack_scores(token_level_rewards.sum(dim=-1).double())
        codes = encode_group_codes(correct.cpu().numpy(), r_s.cpu().numpy(), np.asarray(index), uniform,
                                   temperature)
        adv = torch.as_tensor(codes, dtype=torch.float32, device=response_mask.device).unsqueeze(-1)
        adv = adv * response_mask
    return adv, adv


def drpo_advantage(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: np.ndarray = None,
                   config: Optional[AlgoConfig] = None, **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantage estimator `drpo`: correct outputs weighted by softmax(r_s / lambda) within their group."""
    return _group_codes_advantage(token_level_rewards, response_mask, index, config, uniform=False)


def disco_advantage(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: np.ndarray = None,
                    config: Optional[AlgoConfig] = None, **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantage estimator `disco`: correct outputs weighted uniformly within their group."""
    return _group_codes_advantage(token_level_rewards, response_mask, index, config, uniform=True)


def compute_policy_loss_drpo(old_log_prob: torch.Tensor, log_prob: torch.Tensor, advantages: torch.Tensor,
                             response_mask: torch.Tensor, loss_agg_mode: str = "token-mean", config=None,
                             rollout_is_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """Policy loss `drpo` (DRPO and DisCO: the estimator decides the weights). Over one mini-batch of G
    groups and N response tokens, in a step's batch of G_b groups of which K_b are kept:

        loss = -(G_b / K_b) / G * sum_{kept g} J_g  +  beta0/2 * sum_g (n_g / N) [KL_g - delta]_+^2

    - normalisation: with one mini-batch per step (G = G_b) the first term is the mean of J over kept
      groups (dropped ones carry no signal, so they do not dilute it); with several, each mini-batch's term
      is scaled like that mean. It is 0 when no group is kept: rl's trainer then skips the actor update.
    - KL constraint: one squared hinge per group (prompt) on KL_g, the token-mean of log pi_old - log pi_theta
      over its outputs, weighted by its share n_g / N of the mini-batch's tokens. veRL back-propagates each
      micro-batch before computing the next, so a hinge on the mini-batch's KL would need all of them at
      once; the per-group hinge is exact per micro-batch, so neither the loss nor its gradient depends on
      ppo_micro_batch_size_per_gpu or the number of GPUs, and (x -> [x - delta]_+^2 being convex) it bounds
      the hinge on the mini-batch's token-mean KL from above: KL_g <= delta for all groups gives KL <= delta.
    Each micro-batch returns its share, scaled by dp_size like veRL's own losses, so that gradient
    accumulation and the data-parallel average add up to the loss above. `loss_agg_mode` does not apply.
    """
    if config is None:
        raise ValueError("the drpo policy loss needs the actor config (for rollout_n and policy_loss)")
    if rollout_is_weights is not None:
        raise ValueError("the drpo policy loss does not support rollout-correction IS weights; "
                         "set algorithm.rollout_correction to null")
    loss_cfg = config.policy_loss
    n = config.rollout_n
    terms = drpo_terms(log_prob, old_log_prob, advantages, response_mask, loss_cfg.tau, n, loss_cfg.kl_bound)
    info = getattr(config, "global_batch_info", None) or {}
    dp_size = info.get("dp_size") or 1
    groups = (info.get("global_batch_size") or len(log_prob)) / n
    tokens = info.get("batch_num_tokens") or max(terms["tokens"], 1)
    penalty = 0.5 * loss_cfg.beta0 * terms["hinge"] / tokens
    loss = (-terms["objective"] / groups + penalty) * dp_size
    metrics = {
        "actor/drpo_objective": (terms["objective"] / groups).detach().item(),
        "actor/ppo_kl": terms["kl"].detach().item(),
        "actor/drpo_kl_penalty": penalty.detach().item(),
        "actor/drpo_groups": terms["groups"],
    }
    return loss, metrics
