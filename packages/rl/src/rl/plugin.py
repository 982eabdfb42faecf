"""veRL plugin, loaded through the `verl.plugins` entry point by every `import verl` (driver and Ray workers).

Registers, into veRL's own registries: the advantage estimators `drpo` and `disco` and the policy loss
`drpo` (see rl.drpo). Kept light: it imports veRL's core algorithms and nothing of the trainer.
"""
from verl.trainer.ppo.core_algos import (
    ADV_ESTIMATOR_REGISTRY,
    POLICY_LOSS_REGISTRY,
    register_adv_est,
    register_policy_loss,
)

from rl.drpo import compute_policy_loss_drpo, disco_advantage, drpo_advantage

ADVANTAGE_ESTIMATORS = {"drpo": drpo_advantage, "disco": disco_advantage}
POLICY_LOSSES = {"drpo": compute_policy_loss_drpo}


def register() -> None:
    """Register rl's estimators and loss; idempotent, and strict against a foreign entry of the same name."""
    for name, fn in ADVANTAGE_ESTIMATORS.items():
        register_adv_est(name)(fn)
    for name, fn in POLICY_LOSSES.items():
        existing = POLICY_LOSS_REGISTRY.get(name)
        if existing is not None and existing is not fn:
            raise ValueError(
                f"policy loss {name!r} is already registered to {existing}; rl cannot replace it")
        register_policy_loss(name)(fn)


def registered() -> dict[str, bool]:
    """Which of rl's names veRL's registries hold right now (for tests and `python -m rl` diagnostics)."""
    return {**{f"adv_estimator/{n}": ADV_ESTIMATOR_REGISTRY.get(n) is f
               for n, f in ADVANTAGE_ESTIMATORS.items()},
            **{f"policy_loss/{n}": POLICY_LOSS_REGISTRY.get(n) is f for n, f in POLICY_LOSSES.items()}}


register()
