"""CSP solvers for `synth.csp.Compiled` problems, chosen by the `solver` config group.

Every solver has `solve(problem, rng) -> list[int] | None`: a value per compiled variable satisfying all
bounds and constraints (checked exactly with `Compiled.check`), drawn at random (the `rng` drives the
choice), or None when it found nothing in its budget. Implementations:

* `propagation.PropagationSolver` (default, `solver=fast`): bounds propagation + randomized search;
* `pulp_cbc.PulpSolver` (`solver=pulp`): MILP via PuLP/CBC, products linearised by binary expansion;
* `cpsat.CpSatSolver` (`solver=cpsat`): OR-Tools CP-SAT with native multiplication constraints.

The two exact solvers get randomness from an objective: the L1 distance to random log-uniform targets.
"""
from __future__ import annotations

import math
import random
from typing import Protocol

from synth.csp import Compiled


class Solver(Protocol):
    def solve(self, problem: Compiled, rng: random.Random) -> list[int] | None: ...


def random_targets(problem: Compiled, rng: random.Random) -> dict[int, int]:
    """A log-uniform random target inside the bounds of every decision variable."""
    targets = {}
    for v in range(problem.size):
        if problem.decision[v]:
            a, b = problem.lo[v], problem.hi[v]
            targets[v] = (rng.randint(a, b) if a < 1
                          else min(b, int(math.exp(rng.uniform(math.log(a), math.log(b + 1))))))
    return targets


def complete(problem: Compiled, values: list[int]) -> list[int] | None:
    """Recompute product targets from their factors (exact integers), then check; None if still invalid."""
    values = list(values)
    for _ in range(len(problem.products) + 1):
        changed = False
        for z, coeff, factors in problem.products:
            prod = coeff * math.prod(values[f] for f in factors)
            if values[z] != prod and not problem.decision[z]:
                values[z], changed = prod, True
        if not changed:
            break
    return values if problem.check(values) is None else None
