"""Uniformity, coverage, exact level, determinism, and that emitted programs run.

The chi-square test covers 20k programs through operator sampling, wiring and shape solving (no
validation run, to fit the test budget); the pair-coverage test covers 30k level-5 wirings (the stage
that decides which operator feeds which) without solving. A further chi-square runs the full pipeline,
validation included, on 1200 programs. benchmarks/synth/stats_100k.json has the same statistics for
100k fully generated programs.
"""
import random
from collections import Counter

import pytest
import torch

from synth.generate import make_program
from synth.ops import compute_ops, get_op
from synth.sampler import ConfigError, Sampler
from synth.solvers.propagation import PropagationSolver
from synth.stats import chi_square, feasible_pairs
from synth.validate import Validator, load, run

NAMES = [op.name for op in compute_ops()]


@pytest.fixture(scope="module")
def sampler():
    return Sampler(PropagationSolver())


def wired(sampler, level, count, tag):
    for i in range(count):
        rng = random.Random(f"{tag}:{level}:{i}")
        graph, _ = sampler.wire(sampler.op_sequence(rng, level), rng)
        yield graph


def test_operator_frequencies_of_20k_solved_programs_are_uniform(sampler):
    counts = Counter()
    for level, count in [(1, 10_000), (2, 10_000)]:
        for i in range(count):
            graph, _ = sampler.sample(random.Random(f"chi:{level}:{i}"), level)
            counts.update(graph.op_names())
    assert sum(counts.values()) == 30_000 and set(counts) == set(NAMES)
    _, p = chi_square([counts[n] for n in NAMES])
    assert p > 0.01


def test_every_feasible_ordered_pair_appears(sampler):
    seen = set()
    for graph in wired(sampler, 5, 30_000, "pairs"):
        seen.update(graph.op_edges())
    # feasible_pairs leaves out what synthesis never wires: reads of a terminal operator's output (argmax's
    # int64 indices) and into sqrt / log, whose input is always a fresh positive leaf
    feasible = feasible_pairs(NAMES)
    assert not any(get_op(a).terminal or get_op(b).positive_slots == {0} for a, b in feasible)
    assert len(feasible) > 0.6 * len(NAMES) ** 2
    assert not (feasible - seen), sorted(feasible - seen)[:20]
    assert seen <= feasible


def test_terminal_outputs_stay_unread_and_positive_inputs_are_fresh(sampler):
    """argmax / argmin (int64 indices) feed nothing; sqrt / log and div's divisor always read a fresh
    positive leaf."""
    pool = [get_op(n) for n in ["argmax", "argmin", "sqrt", "log", "div", "relu", "softmax"]]
    counts = Counter()
    for i in range(300):
        rng = random.Random(f"terminal:{i}")
        graph, _ = sampler.wire([rng.choice(pool) for _ in range(5)], rng)
        for n in graph.compute_nodes():
            op = graph.op(n)
            if op.terminal:
                assert not graph.consumers(n) and n in graph.outputs
                counts["terminal"] += 1
            for slot in op.positive_slots:
                leaf = graph.inputs_of(n)[slot]
                assert graph.op_name(leaf) == "input_positive" and graph.consumers(leaf) == [n]
                counts["positive"] += 1
    assert counts["terminal"] > 100 and counts["positive"] > 50


def test_full_pipeline_frequencies_are_uniform(sampler):
    """Solved and validated programs: the solver never changes which operators a program holds."""
    validator = Validator()
    counts = Counter()
    for i in range(1200):
        rec = make_program(sampler, validator, seed=7, level=3, index=i)
        counts.update(rec.ops)
    assert set(counts) == set(NAMES)
    _, p = chi_square([counts[n] for n in NAMES])
    assert p > 0.01


@pytest.mark.parametrize("level", [1, 2, 5, 20])
def test_level_k_has_exactly_k_compute_operators(sampler, level):
    validator = Validator()
    for i in range(5):
        rec = make_program(sampler, validator, seed=1, level=level, index=i)
        assert len(rec.ops) == level
        forward = rec.code.split("def forward")[1].split("return")[0]
        assert sum(line.strip().startswith("t") for line in forward.splitlines()) == level


def test_program_is_deterministic_given_seed_and_index(sampler):
    validator = Validator()
    a = make_program(sampler, validator, seed=3, level=5, index=42)
    b = make_program(Sampler(PropagationSolver()), Validator(), seed=3, level=5, index=42)
    c = make_program(sampler, validator, seed=3, level=5, index=43)
    assert (a.code, a.hash) == (b.code, b.hash)
    assert a.hash != c.hash


def test_large_programs_run_for_real_on_cpu(sampler):
    """Programs above the CPU-run cap are only run on meta during generation: run a sample of them."""
    validator = Validator()
    checked = 0
    for i in range(200):
        rec = make_program(sampler, validator, seed=11, level=2, index=i)
        if rec.ran_cpu or rec.flops > 2**31 or rec.elements > 2**24:
            continue
        torch.manual_seed(0)
        outs = run(load(rec.code), "cpu")
        assert all(torch.isfinite(o).all() for o in outs)
        checked += 1
        if checked == 4:
            break
    assert checked == 4


def test_level_zero_and_bad_bounds_are_config_errors():
    s = Sampler(PropagationSolver())
    with pytest.raises(ConfigError, match="level must be >= 1"):
        s.op_sequence(random.Random(0), 0)
    with pytest.raises(ConfigError, match="impossible bounds"):
        Sampler(PropagationSolver(), max_elements=10)
    with pytest.raises(ConfigError, match="creation operators"):
        Sampler(PropagationSolver(), ops=["input"])
