"""Contract suite: every solver in the `solver` config group must pass all of these."""
import random

import pytest

from synth.csp import Infeasible, Problem
from synth.sampler import Sampler
from synth.validate import Validator


def test_linear_with_remainder(solver):
    # conv-like: L + 2 - 3 = 2 * (o - 1) + r, r in [0, 1], with L <= 100
    p = Problem()
    L, o, r = p.var(1, 100), p.var(1, 100), p.var(0, 1)
    p.linear({L: 1, o: -2, r: -1}, -1 + 2)
    c = p.compile()
    for seed in range(3):
        values = solver.solve(c, random.Random(seed))
        assert values is not None and c.check(values) is None
        assert (values[c.of[L]] - 1) // 2 + 1 == values[c.of[o]]


def test_product_and_budget(solver):
    # a * b = n (unflatten), n * m = z (element count), z + m <= 5000
    p = Problem()
    a, b, n, m = (p.var(1, 1000) for _ in range(4))
    z = p.var(1, 10**6, decision=False)
    p.product(n, [a, b])
    p.product(z, [n, m])
    p.linear({z: 1, m: 1}, -5000, "<=")
    p.at_least(n, 12)
    c = p.compile()
    values = solver.solve(c, random.Random(0))
    assert values is not None and c.check(values) is None
    assert values[c.of[a]] * values[c.of[b]] == values[c.of[n]] >= 12


def test_infeasible_returns_none(solver):
    p = Problem()
    x, y = p.var(1, 10), p.var(1, 10)
    p.linear({x: 1, y: 1}, -25)  # x + y == 25 cannot hold
    assert solver.solve(p.compile(), random.Random(0)) is None


def test_contradiction_is_caught_before_solving():
    p = Problem()
    x, y = p.var(1, 4), p.var(5, 9)
    p.equal(x, y)
    with pytest.raises(Infeasible):
        p.compile()


@pytest.mark.parametrize("level", [1, 2, 5])
def test_sampled_programs_are_valid(solver, level):
    sampler = Sampler(solver)
    validator = Validator()
    n = 2 if type(solver).__name__ == "PulpSolver" and level == 5 else 6
    for i in range(n):
        graph, _ = sampler.sample(random.Random(f"contract:{level}:{i}"), level, check=validator.check)
        assert len(graph.compute_nodes()) == level
        assert graph.elements() <= sampler.max_elements and graph.flops() <= sampler.max_flops
        assert max(max(graph.shape(v)) for v in graph.nodes()) <= sampler.max_dim


def test_solutions_are_random(solver):
    p = Problem()
    xs = [p.var(1, 2**15) for _ in range(3)]
    z = p.var(1, 2**26, decision=False)
    p.product(z, xs)
    c = p.compile()
    solutions = {tuple(solver.solve(c, random.Random(seed))) for seed in range(5)}
    assert len(solutions) >= 3
