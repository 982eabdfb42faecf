"""The teacher lowering (`synth.teacher.lower`) checked by the real verifier in interpreter mode."""
import pytest

from synth.ir import Graph
from synth.ops import compute_ops
from synth.teacher import UNSUPPORTED, lower, supported_ops
from verify import Verifier, VerifyConfig


@pytest.fixture(scope="module")
def verifier():
    with Verifier(VerifyConfig(trials=5, timing=False), workers=2, cache=False) as v:
        yield v


def pointwise_graph() -> Graph:
    """sigmoid(x) * gelu(x + p) clamped, p broadcast over (8, 1); plus a transposed copy of the result."""
    g = Graph()
    x = g.input((4, 8, 16))
    p = g.parameter((8, 1))
    bias = g.parameter((16,))
    h = g.add("gelu", [g.add("add", [x, p])])
    y = g.add("mul", [h, g.add("sigmoid", [x])])
    z = g.add("maximum", [g.add("clamp", [y], min=-0.5, max=1.0), bias])
    t = g.add("transpose", [z], dim0=1, dim1=2)
    g.outputs = [z, t]
    return g


def softmax_graph() -> Graph:
    """softmax over a middle dim with a scale/shift epilogue, then log_softmax and a keepdim sum."""
    g = Graph()
    x = g.input((6, 10, 12))
    s = g.add("shift", [g.add("scale", [g.add("softmax", [x], dim=1)], factor=2.0)], value=0.1)
    ls = g.add("log_softmax", [s], dim=-1)
    total = g.add("sum", [ls], dim=0, keepdim=True)
    ln = g.add("layer_norm", [s], features=12)
    g.outputs = [total, ln]
    return g


def row_epilogue_graph() -> Graph:
    """Row kernels with fused pointwise epilogues: a keepdim sum -> relu -> * broadcast parameter, a plain
    sum -> sigmoid (also returned), log_softmax over the last dim -> + x, rms_norm -> gelu."""
    g = Graph()
    x = g.input((6, 10, 12))
    s = g.add("sum", [x], dim=1, keepdim=True)
    a = g.add("mul", [g.add("relu", [s]), g.parameter((6, 1, 12))])
    m = g.add("sigmoid", [g.add("mean", [x], dim=2, keepdim=False)])
    ls = g.add("add", [g.add("log_softmax", [x], dim=-1), x])
    rn = g.add("gelu", [g.add("rms_norm", [x], features=12)])
    g.outputs = [a, m, ls, rn]
    return g


def test_pointwise_region_fuses_into_one_kernel_and_is_accepted(verifier):
    g = pointwise_graph()
    program = lower(g)
    # one fused pointwise kernel plus the copy kernel for the transposed (view) output
    assert program.count("@triton.jit") == 2
    assert "class ModelNew(nn.Module)" in program and "stride" in program
    verdict = verifier.verify(g.to_task(id="teacher_pointwise", level=6), program)
    assert verdict.accepted, verdict.summary()


def test_row_reductions_with_epilogue_are_accepted(verifier):
    g = softmax_graph()
    program = lower(g)
    assert "softmax_rows_kernel" in program and "layer_norm_rows_kernel" in program
    verdict = verifier.verify(g.to_task(id="teacher_rows", level=6), program)
    assert verdict.accepted, verdict.summary()


def test_row_epilogues_fuse_into_the_row_kernels_and_are_accepted(verifier):
    g = row_epilogue_graph()
    program = lower(g)
    assert program.count("@triton.jit") == 4
    for name in ["sum_rows_relu_mul_kernel", "mean_rows_sigmoid_kernel", "log_softmax_rows_add_kernel",
                 "rms_norm_rows_gelu_kernel"]:
        assert f"def {name}(" in program, name
    verdict = verifier.verify(g.to_task(id="teacher_row_epilogue", level=6), program)
    assert verdict.accepted, verdict.summary()


def test_every_registered_operator_is_supported_or_documented():
    names = {op.name for op in compute_ops()}
    assert names <= supported_ops() | set(UNSUPPORTED)
    assert not supported_ops() & set(UNSUPPORTED)


@pytest.mark.parametrize("graph, old, new", [
    (pointwise_graph, "tl.minimum(tl.maximum(", "tl.minimum(1.01 * tl.maximum("),   # a wrong constant
    (pointwise_graph, "mask = offsets < n_elements", "mask = offsets < n_elements - 1"),  # off-by-one mask
    (softmax_graph, "tl.sqrt(var / n_cols + eps)", "tl.sqrt(var / (n_cols - 1) + eps)"),  # unbiased variance
    (row_epilogue_graph, "v2 = tl.maximum(y, 0.0)", "v2 = y"),  # row epilogue activation dropped
])
def test_mutated_lowering_is_rejected(verifier, graph, old, new):
    g = graph()
    program = lower(g)
    assert old in program
    verdict = verifier.verify(g.to_task(id="teacher_mutant", level=6), program.replace(old, new, 1))
    assert not verdict.accepted
    assert verdict.stage == "correct", verdict.summary()
