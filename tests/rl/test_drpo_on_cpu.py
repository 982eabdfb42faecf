"""DRPO / DisCO against an independent computation of DESIGN.md §6 (value and autograd gradient).

The reference below works group by group from (r_c, r_s, per-token log-probs) with plain Python and torch,
never touching rl's codes; the plugin path goes through veRL's registries: the registered advantage
estimator turns packed veRL rewards into codes, the registered policy loss turns codes and log-probs into
the loss.
"""
import math

import numpy as np
import pytest
import torch
from verl.trainer.ppo.core_algos import get_adv_estimator_fn, get_policy_loss_fn
from verl.workers.config import ActorConfig

from rl.drpo import DRPOAlgoConfig, DRPOLossConfig, GroupSplitError, pack_score

TAU, LAM, BETA0, DELTA = 5.0, 0.1, 100.0, 1e-3


def make_batch(seed, group_sizes, n_correct, kl_scale, max_len=7):
    """Random groups: per output a length, log-probs (leaf, requires grad), old log-probs, r_c, r_s."""
    g = torch.Generator().manual_seed(seed)
    rows = sum(group_sizes)
    lengths = torch.randint(1, max_len + 1, (rows,), generator=g)
    mask = (torch.arange(max_len)[None, :] < lengths[:, None]).float()
    log_prob = (-torch.rand(rows, max_len, generator=g) * 3).requires_grad_(True)
    old = (log_prob.detach() + kl_scale * torch.rand(rows, max_len, generator=g)) * mask
    r_c, uids = [], []
    for k, (size, nc) in enumerate(zip(group_sizes, n_correct)):
        r_c += [1] * nc + [0] * (size - nc)
        uids += [f"q{k}"] * size
    # rows of a group need not be adjacent for the estimator
    perm = torch.randperm(rows, generator=g).tolist()
    r_c = [r_c[i] for i in perm]
    uids = np.array([uids[i] for i in perm], dtype=object)
    r_s = (torch.randn(rows, generator=g) * 0.5).tolist()
    return dict(log_prob=log_prob, old=old, mask=mask, lengths=lengths, r_c=r_c, r_s=r_s, uids=uids)


def reference_loss(b, uniform, tau=TAU, lam=LAM, beta0=BETA0, delta=DELTA):
    """-1/K sum_{kept g} J_g + beta0/2 sum_g (n_g/N) [KL_g - delta]_+^2, written directly from DESIGN.md §6
    and the conventions of rl.drpo (K kept groups, n_g tokens of group g, N tokens in all)."""
    groups = {}
    for i, u in enumerate(b["uids"]):
        groups.setdefault(u, []).append(i)
    total, kept, penalty = 0.0, 0, 0.0
    mask = b["mask"]
    for members in groups.values():
        s = {i: b["log_prob"][i, : b["lengths"][i]].sum() / b["lengths"][i] for i in members}
        n_g = mask[members].sum()
        kl_g = ((b["old"][members] - b["log_prob"][members]) * mask[members]).sum() / n_g
        penalty = penalty + beta0 / 2 * n_g / mask.sum() * torch.clamp(kl_g - delta, min=0) ** 2
        pos = [i for i in members if b["r_c"][i]]
        neg = [i for i in members if not b["r_c"][i]]
        if not pos or not neg:
            continue
        if uniform:
            weights = [1.0 / len(pos)] * len(pos)
        else:
            z = [math.exp(b["r_s"][i] / lam) for i in pos]
            weights = [v / sum(z) for v in z]
        j = sum(w * s[i] for w, i in zip(weights, pos))
        j = j - tau * torch.log(sum(torch.exp(s[i] / tau) for i in neg))
        total, kept = total + j, kept + 1
    kl = ((b["old"] - b["log_prob"]) * mask).sum() / mask.sum()
    return -total / kept + penalty, kl


def contiguous(b, adv):
    """Rows of each group next to each other, as rl's trainer lays out batches; log_prob a fresh leaf."""
    order = np.argsort(b["uids"], kind="stable")
    out = {k: (v[order] if isinstance(v, (torch.Tensor, np.ndarray)) else [v[i] for i in order])
           for k, v in b.items()}
    out["log_prob"] = out["log_prob"].detach().requires_grad_(True)
    return out, adv[order]


def actor_config(n, **loss_kwargs):
    return ActorConfig(strategy="fsdp", rollout_n=n, ppo_micro_batch_size_per_gpu=n,
                       policy_loss=DRPOLossConfig(loss_mode="drpo", tau=TAU, beta0=BETA0, kl_bound=DELTA,
                                                  **loss_kwargs))


def plugin_codes(b, estimator):
    scores = torch.zeros_like(b["mask"])
    last = b["lengths"] - 1
    scores[torch.arange(len(last)), last] = torch.tensor(
        [pack_score(c, s) for c, s in zip(b["r_c"], b["r_s"])])
    adv, _ = get_adv_estimator_fn(estimator)(token_level_rewards=scores, response_mask=b["mask"],
                                             index=b["uids"], config=DRPOAlgoConfig(speed_temperature=LAM))
    return adv


def plugin_loss(b, adv, n, rows=None, dp_size=1):
    """The registered loss on `rows` of the batch, told the mini-batch's size as veRL's ppo_loss tells it."""
    rows = slice(None) if rows is None else rows
    cfg = actor_config(n)
    cfg.global_batch_info.update(dp_size=dp_size, global_batch_size=len(b["mask"]),
                                 batch_num_tokens=int(b["mask"].sum()))
    return get_policy_loss_fn("drpo")(old_log_prob=b["old"][rows], log_prob=b["log_prob"][rows],
                                      advantages=adv[rows], response_mask=b["mask"][rows].bool(),
                                      loss_agg_mode="token-mean", config=cfg)


@pytest.mark.parametrize("estimator", ["drpo", "disco"])
@pytest.mark.parametrize("kl_scale", [0.0, 0.3], ids=["kl-inactive", "kl-penalty"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_value_and_gradient_match_reference(estimator, kl_scale, seed):
    n = 6
    # groups: mixed, mixed, all correct (dropped), all wrong (dropped), one correct, one wrong
    b = make_batch(seed, [n] * 6, [3, 2, n, 0, 1, n - 1], kl_scale)
    b, adv = contiguous(b, plugin_codes(b, estimator))
    ref, kl = reference_loss(b, uniform=estimator == "disco")
    (ref_grad,) = torch.autograd.grad(ref, b["log_prob"])
    loss, metrics = plugin_loss(b, adv, n)
    (grad,) = torch.autograd.grad(loss, b["log_prob"])
    assert (kl.item() > DELTA) == (kl_scale > 0), "the case must exercise the intended KL branch"
    assert metrics["actor/drpo_groups"] == 4
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-7)


def test_dropped_groups_get_no_gradient():
    n = 4
    b, adv = contiguous(*(lambda b: (b, plugin_codes(b, "drpo")))(make_batch(3, [n, n, n], [n, 0, 2], 0.0)))
    loss, _ = plugin_loss(b, adv, n)
    (grad,) = torch.autograd.grad(loss, b["log_prob"])
    dropped = [i for i, u in enumerate(b["uids"]) if u in ("q0", "q1")]
    kept = [i for i, u in enumerate(b["uids"]) if u == "q2"]
    assert grad[dropped].abs().max() == 0
    assert grad[kept].abs().max() > 0


def test_speed_only_reweights_correct_outputs():
    """A correct-but-slow output is still pushed up (positive weight); only the weights change with r_s."""
    n = 4
    b = make_batch(4, [n], [3], 0.0)
    b["r_s"] = [math.log(v) for v in (0.5, 1.0, 4.0, 1.0)]
    adv = plugin_codes(b, "drpo")
    loss, _ = plugin_loss(b, adv, n)
    (grad,) = torch.autograd.grad(loss, b["log_prob"])
    correct = [i for i in range(n) if b["r_c"][i]]
    per_row = -(grad * b["mask"]).sum(-1)  # ascent direction on each output's tokens
    assert all(per_row[i] > 0 for i in correct)
    fastest = max(correct, key=lambda i: b["r_s"][i])
    assert adv[fastest, 0] == max(adv[i, 0] for i in correct)


@pytest.mark.parametrize("kl_scale", [0.0, 0.3], ids=["kl-inactive", "kl-penalty"])
def test_loss_and_gradient_do_not_depend_on_micro_batch_size_or_gpus(kl_scale):
    """ppo_micro_batch_size_per_gpu = n, 2n, 4n (the whole mini-batch), or two ranks: the same loss."""
    n = 4
    b = make_batch(5, [n] * 4, [1, 2, 3, n], kl_scale)
    b, adv = contiguous(b, plugin_codes(b, "drpo"))
    full, _ = plugin_loss(b, adv, n)
    (full_grad,) = torch.autograd.grad(full, b["log_prob"])
    for micro in (n, 2 * n):
        total = sum(plugin_loss(b, adv, n, rows=slice(i, i + micro))[0] for i in range(0, 4 * n, micro))
        (grad,) = torch.autograd.grad(total, b["log_prob"])
        torch.testing.assert_close(total, full)
        torch.testing.assert_close(grad, full_grad)
    # two ranks of two groups each; FSDP averages their gradients
    ranks = [plugin_loss(b, adv, n, rows=slice(r * 2 * n, (r + 1) * 2 * n), dp_size=2)[0] for r in (0, 1)]
    (grad,) = torch.autograd.grad(sum(ranks) / 2, b["log_prob"])
    torch.testing.assert_close(sum(ranks) / 2, full)
    torch.testing.assert_close(grad, full_grad)
    if kl_scale:
        assert plugin_loss(b, adv, n)[1]["actor/drpo_kl_penalty"] > 0


def test_no_kept_group_gives_zero_objective():
    n = 4
    b = make_batch(7, [n] * 2, [0, n], 0.0)
    b, adv = contiguous(b, plugin_codes(b, "drpo"))
    assert not adv.any()
    loss, metrics = plugin_loss(b, adv, n)
    (grad,) = torch.autograd.grad(loss, b["log_prob"])
    assert loss.item() == 0.0 and metrics["actor/drpo_groups"] == 0 and not grad.any()


def test_a_group_split_across_micro_batches_fails():
    n = 4
    b = make_batch(6, [n] * 2, [1, 1], 0.0)
    b, adv = contiguous(b, plugin_codes(b, "drpo"))
    # each group is 1 correct + 3 wrong: a micro-batch boundary inside a group cuts it apart
    with pytest.raises(GroupSplitError, match="keep groups whole"):
        plugin_loss(b, adv, n, rows=slice(0, n + 2))
    with pytest.raises(GroupSplitError, match="not one kept group"):
        plugin_loss(b, adv, n, rows=slice(2, 2 + n))
    interleaved = [0, 4, 1, 5, 2, 6, 3, 7]  # whole groups in the micro-batch, but not contiguous
    with pytest.raises(GroupSplitError, match="not one kept group"):
        plugin_loss({k: v[interleaved] if isinstance(v, torch.Tensor) else v for k, v in b.items()},
                    adv[interleaved], n)


def test_config_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match="tau"):
        DRPOLossConfig(loss_mode="drpo", tau=0.0)
    with pytest.raises(ValueError, match="speed_temperature"):
        DRPOAlgoConfig(speed_temperature=-1.0)
