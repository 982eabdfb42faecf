"""Operators added for KernelBench levels 1-2 (issue 22), lowered by the teacher and checked by the real
verifier in interpreter mode, each in the pattern of the KernelBench tasks that need it."""
import pytest

from synth.ir import Graph
from synth.teacher import lower
from verify import Verifier, VerifyConfig


@pytest.fixture(scope="module")
def verifier():
    with Verifier(VerifyConfig(trials=5, timing=False), workers=2, cache=False) as v:
        yield v


def norms_graph() -> Graph:
    """Level 1, 36-39: x / sqrt(mean(x ** 2) + eps) over the channels (RMS norm written out), x / mean(|x|),
    x / ||x||_2 over dim 1, and a layer norm over the three trailing dims (40)."""
    g = Graph()
    x = g.input((4, 6, 5))
    ms = g.add("mean", [g.add("pow", [x], exponent=2.0)], dim=1, keepdim=True)
    rms = g.add("div", [x, g.add("sqrt", [g.add("shift", [ms], value=1e-5)])])
    y = g.input((5, 33))
    l1 = g.add("div", [y, g.add("mean", [g.add("abs", [y])], dim=1, keepdim=True)])
    l2 = g.add("div", [y, g.add("norm", [y], dim=1, keepdim=True)])
    ln = g.add("layer_norm", [g.input((3, 4, 5, 6))], features=(4, 5, 6))
    g.outputs = [rms, l1, l2, ln]
    return g


def pointwise_graph() -> Graph:
    """Level 1, 88 (MinGPT's new GELU: pow 3 inside a tanh), 98 (log of a softmax); level 2, 68 (the minimum
    with a 0-d parameter) and 100 (clamp with one bound)."""
    g = Graph()
    x = g.input((8, 40))
    cubic = g.add("scale", [g.add("pow", [x], exponent=3.0)], factor=0.044715)
    inner = g.add("scale", [g.add("add", [x, cubic])], factor=0.7978845608)
    half = g.add("scale", [x], factor=0.5)
    gelu = g.add("mul", [half, g.add("shift", [g.add("tanh", [inner])], value=1.0)])
    logp = g.add("log", [g.add("softmax", [g.input((6, 7))], dim=1)])
    low = g.add("clamp", [g.add("minimum", [x, g.parameter(())])], min=-0.25, max=None)
    g.outputs = [gelu, logp, low]
    return g


def scan_pool_graph() -> Graph:
    """Level 1, 90 (cumprod along dim 1), 41 and 43 (max pooling with dilation); level 2, 55 and 98 (a pool
    over an unsqueezed row, squeezed back)."""
    g = Graph()
    cp = g.add("cumprod", [g.input((5, 12), uniform=True)], dim=1)
    p1 = g.add("max_pool1d", [g.input((2, 3, 20))], kernel_size=4, stride=1, padding=2, dilation=3)
    p3 = g.add("max_pool3d", [g.input((2, 2, 9, 8, 7))], kernel_size=3, stride=2, padding=1, dilation=2)
    row = g.add("relu", [g.input((4, 16))])
    sq = g.add("squeeze", [g.add("avg_pool1d", [g.add("unsqueeze", [row], dim=1)], kernel_size=2, stride=2)],
               dim=1)
    g.outputs = [cp, p1, p3, g.add("sum", [sq], dim=1, keepdim=False)]
    return g


def index_triangle_graph() -> Graph:
    """Level 1, 51 and 52 (argmax / argmin over a dim, int64 indices; one read in place with an inner stride,
    one after an erf prologue), 14 and 15 (triu / tril of a matmul, the tril with a fused epilogue)."""
    g = Graph()
    x = g.input((4, 9, 6))
    am = g.add("argmax", [x], dim=1, keepdim=False)
    an = g.add("argmin", [g.add("erf", [x])], dim=2, keepdim=True)
    a, b = g.input((12, 12)), g.input((12, 12))
    up = g.add("triu", [g.add("matmul", [a, b])], diagonal=0)
    low = g.add("relu", [g.add("tril", [g.add("mm", [a, b])], diagonal=-1)])
    g.outputs = [am, an, up, low]
    return g


def layout_graph() -> Graph:
    """Views with computed shapes: level 2, 89 (a bias reshaped to (1, C, 1, 1)), a channel-shuffle style
    reshape after a transpose, narrow (a slice of one dim) and expand (a stride-0 view) read by kernels."""
    g = Graph()
    x = g.input((2, 6, 4, 5))
    bias = g.add("reshape", [g.parameter((6,))], sizes=(1, 6, 1, 1))
    shifted = g.add("sub", [x, bias])
    shuffled = g.add("reshape", [g.add("transpose", [g.add("reshape", [shifted], sizes=(2, 2, 3, 4, 5))],
                                       dim0=1, dim1=2)], sizes=(2, 6, 4, 5))
    part = g.add("sigmoid", [g.add("narrow", [x], dim=2, start=1, length=2)])
    wide = g.add("mul", [g.add("expand", [g.input((2, 1, 4, 1))], sizes=(2, 6, 4, 5)), x])
    g.outputs = [g.add("relu", [shuffled]), part, wide]
    return g


def losses_graph() -> Graph:
    """Reductions over every dim (0-d results): level 1, 94 (MSE: mean((p - t) ** 2)), 100 (hinge:
    mean(clamp(1 - p * t, min=0)), here scaled after), 37 (x / its Frobenius norm)."""
    g = Graph()
    p, t = g.input((16, 40)), g.input((16, 40))
    mse = g.add("mean", [g.add("pow", [g.add("sub", [p, t])], exponent=2.0)], dim=[0, 1], keepdim=False)
    margin = g.add("shift", [g.add("scale", [g.add("mul", [p, t])], factor=-1.0)], value=1.0)
    hinge = g.add("mean", [g.add("clamp", [margin], min=0.0, max=None)], dim=[0, 1], keepdim=False)
    x = g.input((3, 4, 5, 6))
    fro = g.add("div", [x, g.add("norm", [x], dim=[0, 1, 2, 3], keepdim=False)])
    g.outputs = [mse, g.add("scale", [hinge], factor=2.0), fro]
    return g


def flip_graph() -> Graph:
    """Level 1, 91 (a reverse cumsum: flip, cumsum, flip back); a flip of two dims of a transposed (strided)
    view with a relu epilogue fused, and a flip of the batch dim read by a broadcast add."""
    g = Graph()
    x = g.input((3, 4, 5))
    reverse = g.add("flip", [g.add("cumsum", [g.add("flip", [x], dims=[1])], dim=1)], dims=[1])
    strided = g.add("relu", [g.add("flip", [g.add("transpose", [x], dim0=0, dim1=2)], dims=[0, -1])])
    batch = g.add("add", [g.add("flip", [g.input((6, 7))], dims=[0]), g.parameter((7,))])
    g.outputs = [reverse, strided, batch]
    return g


@pytest.mark.parametrize("graph", [norms_graph, pointwise_graph, scan_pool_graph, index_triangle_graph,
                                   layout_graph, losses_graph, flip_graph])
def test_kernelbench_operators_are_accepted(verifier, graph):
    g = graph()
    program = lower(g)
    verdict = verifier.verify(g.to_task(id=f"teacher_{graph.__name__}", level=6), program)
    assert verdict.accepted, verdict.summary()


@pytest.mark.parametrize("graph, old, new", [
    (index_triangle_graph, "tl.where(col - row >= 0", "tl.where(col - row > 0"),  # triu loses its diagonal
    (index_triangle_graph, "tl.argmax(x, axis=1", "tl.argmin(x, axis=1"),  # the wrong extreme
    (scan_pool_graph, "i0 = o0 * 1 - 2 + k0 * 3", "i0 = o0 * 1 - 2 + k0 * 2"),  # dilation 3 read as 2
    (scan_pool_graph, "tl.cumprod(x, axis=1)", "tl.cumsum(x, axis=1)"),  # a scan of the wrong operator
    (flip_graph, "(xsize1 - 1 - j1) * xstride1", "j1 * xstride1"),  # the flip forgotten
    (flip_graph, "(xsize2 - 1 - j2) * xstride2", "j2 * xstride2"),  # one of two flipped dims forgotten
])
def test_mutated_kernelbench_lowering_is_rejected(verifier, graph, old, new):
    g = graph()
    program = lower(g)
    assert old in program
    verdict = verifier.verify(g.to_task(id="teacher_mutant", level=6), program.replace(old, new, 1))
    assert not verdict.accepted
    assert verdict.stage == "correct", verdict.summary()
