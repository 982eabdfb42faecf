"""PuLP/CBC solver: the CSP as a mixed-integer linear program.

Linear constraints are native. A product `z = coeff * x1 * ... * xn` becomes a chain of binary products
`w = a * b`, each linearised exactly: `b` is written in binary (`b = sum 2^j beta_j`) and every
`u_j = beta_j * a` gets the four McCormick inequalities. Randomness: minimise the L1 distance to random
targets. CBC works in floating point, so the rounded solution is completed and checked exactly; a
solution that fails the check counts as none.
"""
from __future__ import annotations

import random

from synth.csp import Compiled
from synth.solvers import complete, random_targets


class PulpSolver:
    def __init__(self, time_limit: float = 10.0, gap: float = 1.0) -> None:
        self.time_limit, self.gap = time_limit, gap

    def solve(self, problem: Compiled, rng: random.Random) -> list[int] | None:
        import pulp

        m = pulp.LpProblem("shapes", pulp.LpMinimize)
        x = [pulp.LpVariable(f"v{i}", a, b, cat="Integer")
             for i, (a, b) in enumerate(zip(problem.lo, problem.hi))]
        for terms, const, sense in problem.linears:
            expr = pulp.lpSum(c * x[v] for v, c in terms) + const
            m += (expr == 0) if sense == "==" else (expr <= 0)
        count = 0
        for z, coeff, factors in problem.products:
            bound = max(1, problem.hi[z] // coeff)
            acc, acc_hi = (x[factors[0]], problem.hi[factors[0]]) if factors else (1, 1)
            for f in factors[1:]:
                count += 1
                acc, acc_hi = self._times(m, acc, min(acc_hi, bound), x[f], problem.hi[f], bound, count), \
                    min(bound, acc_hi * problem.hi[f])
            m += x[z] == coeff * acc
        objective = []
        for v, t in random_targets(problem, rng).items():
            dev = pulp.LpVariable(f"d{v}", 0)
            m += dev >= x[v] - t
            m += dev >= t - x[v]
            objective.append(dev)
        m += pulp.lpSum(objective)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=self.time_limit, gapRel=self.gap,
                                   options=[f"randomSeed {rng.randrange(1, 2**30)}"])
        m.solve(solver)
        if pulp.LpStatus[m.status] != "Optimal" and m.sol_status not in (1, 2):
            return None
        values = [int(round(v.value() or 0)) for v in x]
        return complete(problem, values)

    @staticmethod
    def _times(m, a, a_hi: int, b, b_hi: int, bound: int, tag: int):
        """A variable equal to a * b (b in binary, McCormick on each bit)."""
        import pulp

        w = pulp.LpVariable(f"w{tag}", 1, bound)
        bits = max(1, b_hi.bit_length())
        beta = [pulp.LpVariable(f"b{tag}_{j}", cat="Binary") for j in range(bits)]
        u = [pulp.LpVariable(f"u{tag}_{j}", 0, a_hi) for j in range(bits)]
        m += b == pulp.lpSum((1 << j) * beta[j] for j in range(bits))
        for j in range(bits):
            m += u[j] <= a_hi * beta[j]
            m += u[j] <= a
            m += u[j] >= a - a_hi * (1 - beta[j])
        m += w == pulp.lpSum((1 << j) * u[j] for j in range(bits))
        return w
