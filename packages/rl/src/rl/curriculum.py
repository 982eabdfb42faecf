"""Curricula over synthetic difficulty levels (config group `curriculum`: levels, fixed, mixed).

A curriculum is a list of stages. A stage draws its training prompts from one or more levels (a mix of
fractions) and is left when held-out pass@1 at its gate level (by default the highest level it draws from)
exceeds `threshold`. The paper's schedule is `levels`: level 1 (20k programs) -> 2 (60k) -> 5 (20k), 0.5.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# veRL names validation metrics val-core/<data_source>/<var>/mean@<n>; rl's held-out rows use this source
HELD_OUT_SOURCE = "synth/level{level}"
_PASS_METRIC = re.compile(r"^val-(?:core|aux)/synth/level(\d+)/acc/mean@\d+$")


@dataclass
class Stage:
    """One curriculum stage."""

    # level -> fraction of the stage's programs drawn from it (fractions sum to 1)
    mix: dict[int, float]
    # number of training programs in the stage
    programs: int
    # level whose held-out pass@1 decides promotion; null: the highest level of the mix
    gate: int | None = None

    def __post_init__(self):
        self.mix = {int(k): float(v) for k, v in dict(self.mix).items()}
        if not self.mix or abs(sum(self.mix.values()) - 1.0) > 1e-6 or min(self.mix.values()) <= 0:
            raise ValueError(f"curriculum stage mix {self.mix} must have positive fractions summing to 1")
        if self.programs < 1:
            raise ValueError(f"curriculum stage needs programs >= 1, got {self.programs}")
        self.gate = max(self.mix) if self.gate is None else int(self.gate)

    def counts(self) -> dict[int, int]:
        """Programs per level; rounding goes to the last level so the total is exact.

        >>> Stage(mix={1: 0.5, 2: 0.5}, programs=5).counts()
        {1: 2, 2: 3}
        """
        levels = sorted(self.mix)
        out = {lv: int(self.programs * self.mix[lv]) for lv in levels[:-1]}
        out[levels[-1]] = self.programs - sum(out.values())
        return out


@dataclass
class Curriculum:
    """Stages in order, promoted on held-out pass@1 at the current gate level."""

    # the stages, first to last
    stages: list[Stage]
    # promote when pass@1 at the gate level is strictly above this
    threshold: float = 0.5
    # index of the current stage (restored from checkpoints)
    stage: int = 0
    # last pass@1 seen per level
    pass_at_1: dict[int, float] = field(default_factory=dict)
    # training steps taken in each stage so far (restored from checkpoints)
    steps: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.stages = [s if isinstance(s, Stage) else Stage(**s) for s in self.stages]
        if not self.stages:
            raise ValueError("a curriculum needs at least one stage")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"curriculum.threshold must be in [0, 1], got {self.threshold}")
        self.steps = list(self.steps) + [0] * (len(self.stages) - len(self.steps))

    @property
    def current(self) -> Stage:
        return self.stages[self.stage]

    @property
    def levels(self) -> list[int]:
        """Every level any stage draws from (held-out pass@1 is tracked for all of them)."""
        return sorted({lv for s in self.stages for lv in s.mix})

    def planned_steps(self, batch_size: int) -> int:
        """Steps of one pass over every stage's programs (the default of trainer.total_training_steps).

        >>> levels([{"level": 1, "programs": 20000}, {"level": 5, "programs": 20000}]).planned_steps(128)
        312
        """
        return sum(s.programs // batch_size for s in self.stages)

    def record_step(self) -> None:
        """Count one training step in the current stage."""
        self.steps[self.stage] += 1

    def update(self, pass_at_1: dict[int, float]) -> bool:
        """Record pass@1 per level; move to the next stage if the gate level passed. Returns True on
        promotion.

        >>> c = Curriculum(stages=[Stage({1: 1.0}, 10), Stage({2: 1.0}, 10)])
        >>> c.update({1: 0.5}), c.update({1: 0.51}), c.stage, c.update({2: 0.9})
        (False, True, 1, False)
        """
        self.pass_at_1.update({int(k): float(v) for k, v in pass_at_1.items()})
        gate = self.pass_at_1.get(self.current.gate)
        if gate is None or gate <= self.threshold or self.stage == len(self.stages) - 1:
            return False
        self.stage += 1
        return True

    def metrics(self) -> dict[str, float]:
        """What the trainer logs each step."""
        out = {"curriculum/stage": float(self.stage), "curriculum/gate_level": float(self.current.gate),
               "curriculum/steps_in_stage": float(self.steps[self.stage])}
        out.update({f"curriculum/pass@1/level{lv}": p for lv, p in sorted(self.pass_at_1.items())})
        return out

    def state_dict(self) -> dict:
        """What a checkpoint keeps (JSON-able); `load_state_dict` restores it.

        >>> c = levels([{"level": 1, "programs": 8}, {"level": 2, "programs": 8}])
        >>> c.record_step(); _ = c.update({1: 0.9}); c.state_dict()
        {'stage': 1, 'steps': [1, 0], 'pass_at_1': {'1': 0.9}, 'gates': [1, 2]}
        """
        return {"stage": self.stage, "steps": list(self.steps),
                "pass_at_1": {str(k): v for k, v in sorted(self.pass_at_1.items())},
                "gates": [s.gate for s in self.stages]}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`; raises when the checkpoint was written by a curriculum of other stages."""
        gates = [s.gate for s in self.stages]
        if state["gates"] != gates or len(state["steps"]) != len(self.stages):
            raise ValueError(f"the checkpoint's curriculum has stage gates {state['gates']}, this run's has "
                             f"{gates}: resume with the curriculum it was trained with, or start a new "
                             "trainer.default_local_dir")
        self.stage = int(state["stage"])
        self.steps = [int(n) for n in state["steps"]]
        self.pass_at_1 = {int(k): float(v) for k, v in state["pass_at_1"].items()}


def pass_at_1_from_validation(metrics: dict[str, float]) -> dict[int, float]:
    """Held-out pass@1 per level out of veRL's validation metrics (`acc` is the reward's r_c).

    >>> pass_at_1_from_validation({"val-core/synth/level2/acc/mean@1": 0.25, "val-aux/x/y/mean@1": 1.0})
    {2: 0.25}
    """
    out = {}
    for key, value in metrics.items():
        m = _PASS_METRIC.match(key)
        if m:
            out[int(m.group(1))] = float(value)
    return out


def levels(stages: list[dict], threshold: float = 0.5) -> Curriculum:
    """One level per stage, e.g. [{level: 1, programs: 20000}, ...]."""
    return Curriculum(stages=[Stage(mix={s["level"]: 1.0}, programs=s["programs"]) for s in stages],
                      threshold=threshold)
