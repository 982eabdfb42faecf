"""Mutants of teacher programs (benchmarks/teacher/mutations.py) are valid programs the verifier rejects."""
import ast
import importlib.util
import random
from pathlib import Path

import pytest

from synth.ir import Graph
from synth.teacher import lower
from verify import Verifier, VerifyConfig

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "teacher" / "mutations.py"


@pytest.fixture(scope="module")
def mutations():
    spec = importlib.util.spec_from_file_location("teacher_mutations", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def graph() -> Graph:
    """A fused pointwise chain (x + p, gelu, scale) feeding a row softmax: both kernel families."""
    g = Graph()
    x = g.input((6, 40))
    p = g.parameter((40,))
    h = g.add("scale", [g.add("gelu", [g.add("add", [x, p])])], factor=0.5)
    g.outputs = [g.add("softmax", [h], dim=-1)]
    return g


def test_every_kind_mutates_and_the_verifier_rejects_the_mutants(mutations):
    g = graph()
    program = lower(g)
    made = mutations.mutants(program, random.Random(0), per_kind=1)
    assert {m["kind"] for m in made} == set(mutations.KINDS)
    for m in made:
        ast.parse(m["text"])
        assert m["text"] != program and "->" in m["change"]
    # every mutant of these kinds except one: dropping the max shift of the softmax (`x - m` -> `x`) keeps
    # the values (softmax is shift-invariant), an equivalent mutant the verifier must accept
    kinds = ("mask_minus_one", "wrong_constant", "dropped_term", "store_intermediate")
    sites = mutations.sites(program)
    wrong = [mutations.apply(program, node, new) for kind in kinds for node, new in sites[kind]
             if ast.get_source_segment(program, node) != "x - m"]
    (equivalent,) = [mutations.apply(program, node, new) for node, new in sites["dropped_term"]
                     if ast.get_source_segment(program, node) == "x - m"]
    assert len(wrong) >= 12
    task = g.to_task(id="teacher_mutation", level=4)
    with Verifier(VerifyConfig(trials=5, timing=False), workers=2, cache=False) as verifier:
        original, same, *verdicts = verifier.verify_many([(task, t) for t in [program, equivalent, *wrong]])
    assert original.accepted, original.summary()
    assert same.accepted, same.summary()
    for text, v in zip(wrong, verdicts):
        assert not v.accepted, f"a mutant survived:\n{text}"
        assert v.stage in ("compile", "correct"), v.summary()
