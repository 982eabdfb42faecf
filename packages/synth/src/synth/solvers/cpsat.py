"""OR-Tools CP-SAT solver (the paper's choice): native linear and multiplication constraints.

A product of n factors is a chain of binary `AddMultiplicationEquality` constraints whose intermediate
bounds come from the target's bound. Randomness: minimise the L1 distance to random targets, stopping at
the first solution found after `time_limit` seconds or at optimality.
"""
from __future__ import annotations

import random

from synth.csp import Compiled
from synth.solvers import complete, random_targets


class CpSatSolver:
    def __init__(self, time_limit: float = 2.0, workers: int = 1) -> None:
        self.time_limit, self.workers = time_limit, workers

    def solve(self, problem: Compiled, rng: random.Random) -> list[int] | None:
        from ortools.sat.python import cp_model

        m = cp_model.CpModel()
        x = [m.new_int_var(a, b, f"v{i}") for i, (a, b) in enumerate(zip(problem.lo, problem.hi))]
        for terms, const, sense in problem.linears:
            expr = sum(c * x[v] for v, c in terms) + const
            m.add(expr == 0 if sense == "==" else expr <= 0)
        for z, coeff, factors in problem.products:
            bound = max(1, problem.hi[z] // coeff)
            acc = x[factors[0]] if factors else 1
            for f in factors[1:]:
                w = m.new_int_var(1, bound, "")
                m.add_multiplication_equality(w, [acc, x[f]])
                acc = w
            m.add(x[z] == coeff * acc)
        deviations = []
        for v, t in random_targets(problem, rng).items():
            d = m.new_int_var(0, problem.hi[v], "")
            m.add_abs_equality(d, x[v] - t)
            deviations.append(d)
        m.minimize(sum(deviations))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = self.time_limit
        solver.parameters.num_workers = self.workers
        solver.parameters.random_seed = rng.randrange(2**31)
        status = solver.solve(m)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        return complete(problem, [solver.value(v) for v in x])
