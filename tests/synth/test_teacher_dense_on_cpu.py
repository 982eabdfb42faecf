"""The teacher's dense lowerings (matmul with fused epilogue, conv + Triton epilogue, pooling, channel norms)
checked by the real verifier in interpreter mode, plus a direct train/eval check of batch norm's running
estimates, which the verifier (training mode, outputs only) does not see."""
import pytest
import torch

from synth.ir import Graph
from synth.ops import REGISTRY
from synth.ops.elementwise import Unary
from synth.teacher import Unsupported, lower
from synth.teacher.tiling import SWEEP, Tiling
from verify import Verifier, VerifyConfig
from verify.inputs import load_module


@pytest.fixture(scope="module")
def verifier():
    with Verifier(VerifyConfig(trials=5, timing=False), workers=2, cache=False) as v:
        yield v


def matmul_graph() -> Graph:
    """relu(linear(x) + p) fused into the linear kernel (also stored: it feeds a bmm); bmm -> gelu -> scale
    fused; mm of a transposed view; a 4-d matmul with no epilogue; linear without bias."""
    g = Graph()
    x = g.input((4, 6, 20))
    p = g.parameter((24,))
    h = g.add("relu", [g.add("add", [g.add("linear", [x], in_features=20, out_features=24), p])])
    y = g.add("scale", [g.add("gelu", [g.add("bmm", [h, g.input((4, 24, 18))])])], factor=0.5)
    mm = g.add("mm", [g.input((17, 33)), g.add("transpose", [g.input((9, 33))], dim0=0, dim1=1)])
    m4 = g.add("matmul", [g.input((2, 3, 9, 5)), g.input((2, 3, 5, 18))])
    lin = g.add("linear", [g.input((5, 70))], in_features=70, out_features=3, bias=False)
    g.outputs = [h, y, mm, m4, lin]
    return g


def conv_graph() -> Graph:
    """conv2d -> (+bias) -> silu -> * x-shaped parameter in one epilogue kernel; a bias-free conv1d and a
    conv_transpose3d with its bias returned straight from PyTorch (the epilogue kernel computes an output)."""
    g = Graph()
    x = g.input((2, 4, 9, 9))
    c = g.add("conv2d", [x], in_channels=4, out_channels=8, kernel_size=3, stride=1, padding=1, dilation=1,
              groups=2, bias=True)
    y = g.add("mul", [g.add("silu", [c]), g.parameter((8, 1, 9))])
    c1 = g.add("conv1d", [g.input((3, 5, 17))], in_channels=5, out_channels=4, kernel_size=3, stride=2,
               padding=0, dilation=2, groups=1, bias=False)
    c3 = g.add("conv_transpose3d", [g.input((2, 4, 3, 4, 5))], in_channels=4, out_channels=2, kernel_size=2,
               stride=2, padding=0, output_padding=0, groups=1, bias=True)
    g.outputs = [y, c1, c3]
    return g


def conv_only_graph() -> Graph:
    """Two returned convolutions and nothing else: the smaller (conv1d, bias-free) keeps a Triton copy so
    that the output depends on a kernel; the larger comes straight from PyTorch with its bias."""
    g = Graph()
    c2 = g.add("conv2d", [g.input((2, 4, 9, 9))], in_channels=4, out_channels=8, kernel_size=3, stride=1,
               padding=1, dilation=1, groups=1, bias=True)
    c1 = g.add("conv1d", [g.input((3, 5, 17))], in_channels=5, out_channels=4, kernel_size=3, stride=2,
               padding=0, dilation=2, groups=1, bias=False)
    g.outputs = [c2, c1]
    return g


def gather_graph() -> Graph:
    """stack -> relu6 and cat (dim 1, uneven halves) -> add a broadcast parameter -> tanh, each read by its
    pointwise kernel from the two inputs; a cat that a row kernel also reads stays a PyTorch cat."""
    g = Graph()
    x, y = g.input((3, 5, 4)), g.input((3, 5, 4))
    st = g.add("relu6", [g.add("stack", [x, y], dim=2)])
    ct = g.add("tanh", [g.add("add", [g.add("cat", [x, g.input((3, 2, 4))], dim=1), g.parameter((7, 1))])])
    kept = g.add("cat", [y, x], dim=0)
    g.outputs = [st, ct, g.add("softmax", [kept], dim=1), g.add("abs", [kept])]
    return g


def pool_prologue_graph() -> Graph:
    """softplus -> avg_pool2d with zero padding (the padding stays 0, not softplus(0)), shift -> max_pool1d
    and sigmoid -> adaptive_avg_pool2d: each one pooling kernel applying the pointwise op on load."""
    g = Graph()
    a = g.add("avg_pool2d", [g.add("softplus", [g.input((2, 3, 9, 8))], beta=1.0)], kernel_size=3, stride=2,
              padding=1)
    b = g.add("max_pool1d", [g.add("shift", [g.input((3, 4, 11))], value=-0.5)], kernel_size=2, stride=2,
              padding=1)
    c = g.add("adaptive_avg_pool2d", [g.add("sigmoid", [g.input((2, 2, 7, 5))])], output_size=3)
    g.outputs = [a, b, c]
    return g


def row_prologue_graph() -> Graph:
    """Row kernels whose prologue reads broadcast inputs besides the tile: x - p -> amax over dim 0 (rows
    read in place with an inner stride), x * y -> softmax over the last dim, x + b -> logsumexp over dims
    1, 2; over dims 0 and 2 (rows permuted into a copy) the add stays a kernel of its own."""
    g = Graph()
    x = g.input((6, 5, 4))
    b = g.add("softmax", [g.add("mul", [x, g.input((6, 5, 4))])], dim=2)
    a = g.add("amax", [g.add("sub", [x, g.parameter((1,))])], dim=0, keepdim=False)
    c = g.add("logsumexp", [g.add("add", [x, g.parameter((5, 1))])], dim=[1, 2], keepdim=True)
    d = g.add("sum", [g.add("add", [g.input((6, 5, 4)), g.parameter((4,))])], dim=[0, 2], keepdim=False)
    g.outputs = [a, b, c, d]
    return g


def gather_prologue_graph() -> Graph:
    """A stack read by a row kernel's prologue (stack -> softplus -> amin) stays a PyTorch stack: the
    prologue loads the stacked tensor."""
    g = Graph()
    st = g.add("stack", [g.input((3, 5)), g.input((3, 5))], dim=1)
    g.outputs = [g.add("amin", [g.add("softplus", [st], beta=1.0)], dim=2, keepdim=False)]
    return g


def pool_graph() -> Graph:
    """Every pooling operator, 1d/2d/3d, with padding, strides and uneven adaptive windows."""
    g = Graph()
    x2 = g.input((2, 3, 11, 10))
    x1 = g.input((3, 5, 17))
    x3 = g.input((2, 2, 5, 6, 7))
    g.outputs = [
        g.add("max_pool2d", [x2], kernel_size=3, stride=2, padding=1),
        g.add("avg_pool2d", [x2], kernel_size=2, stride=2, padding=1),
        g.add("adaptive_avg_pool2d", [x2], output_size=4),
        g.add("max_pool1d", [x1], kernel_size=2, stride=1, padding=1),
        g.add("avg_pool1d", [x1], kernel_size=3, stride=2, padding=1),
        g.add("adaptive_avg_pool1d", [x1], output_size=7),
        g.add("max_pool3d", [x3], kernel_size=2, stride=2, padding=0),
        g.add("avg_pool3d", [x3], kernel_size=3, stride=1, padding=1),
        g.add("adaptive_avg_pool3d", [x3], output_size=2),
    ]
    return g


def global_pool_graph() -> Graph:
    """Adaptive average pools to size 1 (whole planes): 1d with planes long enough to be split into partial
    sums (first, so that the mutants below change its kernels), 2d -> relu -> * a per-channel parameter
    (a strided epilogue operand), 3d; and a non-global adaptive pool, which keeps the windowed kernel."""
    g = Graph()
    split = g.add("adaptive_avg_pool1d", [g.input((1, 3, 9000))], output_size=1)
    x2 = g.input((2, 3, 40, 30))
    pooled = g.add("adaptive_avg_pool2d", [x2], output_size=1)
    g.outputs = [
        split,
        g.add("mul", [g.add("relu", [pooled]), g.parameter((3, 1, 1))]),
        g.add("adaptive_avg_pool3d", [g.input((2, 2, 5, 6, 7))], output_size=1),
        g.add("adaptive_avg_pool2d", [x2], output_size=3),
    ]
    return g


def norm_graph() -> Graph:
    """Batch norm (rank 4 and rank 2), group norm and instance norm on the same input."""
    g = Graph()
    x = g.input((3, 8, 5, 6))
    v = g.input((6, 4))
    g.outputs = [
        g.add("batch_norm2d", [x], features=8),
        g.add("batch_norm1d", [v], features=4),
        g.add("group_norm", [x], groups=4, features=8),
        g.add("instance_norm2d", [x], features=8),
        g.add("instance_norm1d", [g.input((2, 3, 7))], features=3),
    ]
    return g


def norm_epilogue_graph() -> Graph:
    """batch norm -> celu in one kernel; group norm -> + a broadcast (C, 1, 1) parameter -> relu in one kernel
    that also stores the group norm itself (returned too)."""
    g = Graph()
    x = g.input((3, 8, 5, 6))
    bn = g.add("celu", [g.add("batch_norm2d", [x], features=8)], alpha=2.0)
    gn = g.add("group_norm", [x], groups=4, features=8)
    g.outputs = [bn, gn, g.add("relu", [g.add("add", [gn, g.parameter((8, 1, 1))])])]
    return g


def split_norm_graph() -> Graph:
    """Norms with few long rows take the split form (block statistics, then normalisation), each with a
    fused epilogue and the norm itself returned: group norm, 2 samples x 2 groups of 6,400 elements, times
    a broadcast parameter; batch norm, 3 channels of 3,600 elements, then relu."""
    g = Graph()
    gn = g.add("group_norm", [g.input((2, 8, 40, 40))], groups=2, features=8)
    bn = g.add("batch_norm2d", [g.input((4, 3, 30, 30))], features=3)
    g.outputs = [gn, g.add("mul", [gn, g.parameter((8, 1, 1))]), bn, g.add("relu", [bn])]
    return g


def norm_prologue_graph() -> Graph:
    """A pointwise producer inside the channel-norm kernels: sigmoid -> group norm and shift -> batch norm
    (looped form), softplus -> group norm and relu -> batch norm over few long rows (split form: the
    statistics kernel applies it too)."""
    g = Graph()
    x = g.input((3, 8, 5, 4))
    a = g.add("group_norm", [g.add("sigmoid", [x])], groups=4, features=8)
    b = g.add("batch_norm2d", [g.add("shift", [g.input((3, 8, 5, 4))], value=0.5)], features=8)
    c = g.add("group_norm", [g.add("softplus", [g.input((2, 8, 40, 40))], beta=1.0)], groups=2, features=8)
    d = g.add("batch_norm2d", [g.add("relu", [g.input((4, 3, 30, 30))])], features=3)
    g.outputs = [a, b, c, d]
    return g


def fusion_graph() -> Graph:
    """erf -> amin over a middle dim (prologue fused, rows read in place); softmax over a middle dim with a
    fused epilogue (no permuted copies); hardswish -> flatten returned as a view; conv1d (not returned,
    no pointwise consumer: bias in the PyTorch call) -> sum over the channels; max_pool2d -> clamp in one
    kernel."""
    g = Graph()
    x = g.input((6, 5, 3))
    lo = g.add("amin", [g.add("erf", [x])], dim=1, keepdim=True)
    sm = g.add("scale", [g.add("softmax", [x], dim=1)], factor=2.0)
    fl = g.add("flatten", [g.add("hardswish", [g.input((2, 3, 4, 5))])], start_dim=1)
    c = g.add("conv1d", [g.input((3, 4, 17))], in_channels=4, out_channels=6, kernel_size=3, stride=1,
              padding=1, dilation=1, groups=1, bias=True)
    red = g.add("sum", [c], dim=1, keepdim=False)
    pooled = g.add("clamp",
                   [g.add("max_pool2d", [g.input((2, 3, 9, 8))], kernel_size=2, stride=2, padding=1)],
                   min=-0.5, max=0.5)
    g.outputs = [lo, sm, fl, red, pooled]
    return g


@pytest.mark.parametrize("graph, kernels", [
    (fusion_graph, ["erf_amin_rows_kernel", "softmax_rows_scale_kernel", "hardswish_kernel",
                    "sum_rows_kernel", "max_pool2d_clamp_kernel"]),
    # linear+add+relu, bmm+gelu+scale, mm, matmul, linear: one kernel each
    (matmul_graph, ["linear_add_relu_kernel", "bmm_gelu_scale_kernel", "mm_kernel", "matmul_kernel"]),
    (conv_graph, ["conv2d_bias_silu_mul_kernel"]),
    (conv_only_graph, ["copy_kernel"]),
    (gather_prologue_graph, ["softplus_amin_rows_kernel"]),
    (norm_prologue_graph, ["sigmoid_group_norm_kernel", "shift_batch_norm_kernel", "group_norm_stats_kernel",
                           "softplus_group_norm_kernel", "batch_norm_stats_kernel",
                           "relu_batch_norm_kernel"]),
    (row_prologue_graph, ["sub_amax_rows_kernel", "mul_softmax_rows_kernel", "add_logsumexp_rows_kernel",
                          "add_kernel", "sum_rows_kernel"]),
    (pool_prologue_graph, ["softplus_avg_pool2d_kernel", "shift_max_pool1d_kernel",
                           "sigmoid_adaptive_avg_pool2d_kernel"]),
    (gather_graph, ["relu6_kernel", "fused_add_tanh_kernel", "softmax_rows_kernel", "abs_kernel"]),
    (pool_graph, ["max_pool2d_kernel", "avg_pool3d_kernel", "adaptive_avg_pool1d_kernel"]),
    (norm_graph, ["batch_norm_kernel", "group_norm_kernel", "instance_norm2d_rows_kernel"]),
    (norm_epilogue_graph, ["batch_norm_celu_kernel", "group_norm_add_relu_kernel"]),
    (split_norm_graph, ["group_norm_stats_kernel", "group_norm_mul_kernel", "batch_norm_stats_kernel",
                        "batch_norm_relu_kernel"]),
    (global_pool_graph, ["adaptive_avg_pool1d_partial_kernel", "adaptive_avg_pool1d_kernel",
                         "adaptive_avg_pool2d_relu_mul_kernel", "adaptive_avg_pool3d_kernel",
                         "adaptive_avg_pool2d_kernel"]),
])
def test_dense_lowering_is_accepted(verifier, graph, kernels):
    g = graph()
    program = lower(g)
    for name in kernels:
        assert f"def {name}(" in program, name
    if graph is matmul_graph:
        # every epilogue is fused: one kernel per matmul-class operator, nothing else
        # the tuning table's
        assert program.count("@triton.jit") == 5 and 'input_precision="tf32x3"' in program
    if graph is conv_graph:
        assert "F.conv2d(" in program and "F.conv_transpose3d(" in program
        assert program.count("@triton.jit") == 1 and "conv.bias, conv.stride" in program
    if graph is gather_graph:
        assert program.count("= torch.cat(") == 1 and "= torch.stack(" not in program, program
        assert program.count("in0 = tl.where(in0_first, in0_a, in0_b)") == 2, program
    if graph is pool_prologue_graph:
        assert program.count("@triton.jit") == 3, program
    if graph is row_prologue_graph:
        assert program.count("@triton.jit") == 5 and program.count("q0 = tl.load(") == 3, program
    if graph is norm_prologue_graph:  # no pointwise kernel of its own; the split statistics apply it too
        assert program.count("@triton.jit") == 6 and program.count("# pointwise prologue") == 10, program
    if graph is conv_only_graph:
        assert program.count("@triton.jit") == 1 and "conv.bias, conv.stride" in program
        assert "return (t1_conv, t3_out)" in program, program
    if graph is global_pool_graph:
        # the global pools read whole planes; only the size-3 pool walks windows
        assert program.count("for w0 in range(") == 1 and "out_sizes = (3, 3)" in program
    if graph is norm_epilogue_graph:
        assert program.count("@triton.jit") == 2, program
    if graph is split_norm_graph:
        assert program.count("@triton.jit") == 4, program
        assert "[(n_rows, n_splits)]" in program and "[(n_channels, n_splits)]" in program
        assert "for c0 in range(" not in program and "for r0 in range(" not in program
    if graph is fusion_graph:
        # five kernels, no copy kernel, no permuted copy, the conv1d bias inside the PyTorch call
        assert program.count("@triton.jit") == 5 and ".permute(" not in program, program
        assert "conv.bias, conv.stride" in program
    verdict = verifier.verify(g.to_task(id=f"teacher_{graph.__name__}", level=6), program)
    assert verdict.accepted, verdict.summary()


def test_tensor_core_tilings_write_tf32x3_and_are_accepted(verifier):
    """The sweep's tensor-core tilings lower every matmul-class operator with tl.dot(input_precision="tf32x3")
    (the interpreter computes it exactly; sm_90 compiles it: test_teacher_compiles_for_gpu_on_cpu)."""
    tilings = [t for t in SWEEP if t.dot_precision == "tf32x3"]
    assert tilings and SWEEP[0].dot_precision is None  # the default: the tuning table's (tf32x3)
    g = matmul_graph()
    program = lower(g, tilings[0])
    assert program.count('input_precision="tf32x3"') == 5 and 'input_precision="ieee"' not in program
    assert "three TF32 tensor-core products" in program
    verdict = verifier.verify(g.to_task(id="teacher_matmul_tf32x3", level=6), program)
    assert verdict.accepted, verdict.summary()


@pytest.mark.parametrize("graph, old, new", [
    (matmul_graph, "v4 = tl.maximum(v3, 0.0)", "v4 = v3"),  # epilogue activation dropped
    (matmul_graph, "other=0.0)[None, :]", "other=0.0)[None, :] * 0.0"),  # linear bias dropped
    (conv_graph, "v1 = in0 + in1", "v1 = in0"),  # conv bias dropped
    (gather_graph, "in0_pos < in0_split", "in0_pos <= in0_split"),  # off-by-one between the halves
    (pool_prologue_graph, "x = tl.where(valid, p1, 0.0)", "x = p1"),  # padding read as softplus(0)
    (row_prologue_graph, "pidx2 = prest % psize2", "pidx2 = (prest + 1) % psize2"),  # other input misread
    (norm_prologue_graph, "total += tl.where(mask, p1, 0.0)", "total += p1"),  # masked lanes counted
    (fusion_graph, "p1 = tl.math.erf(x)", "p1 = x"),  # prologue dropped
    (fusion_graph, "+ cols * n_inner", "+ cols"),  # inner stride ignored
    (fusion_graph, "tl.maximum(y, -0.5)", "tl.maximum(y, -0.4)"),  # pool epilogue constant changed
    (pool_graph, "/ 4.0", "/ 3.0"),  # avg pool divisor without the padding
    (global_pool_graph, "/ count", "/ row_len"),  # a split plane's mean taken over its partial sums
    # a split plane reads past its end
    (global_pool_graph, "mask=idx < plane_len", "mask=idx < plane_len + 1"),
    # batch norm normalising with the unbiased variance
    # celu's alpha
    (norm_epilogue_graph, "v2 = tl.where(y > 0.0, y, 2.0 *", "v2 = tl.where(y > 0.0, y, 1.0 *"),
    (norm_epilogue_graph, "v5 = y + in0", "v5 = y"),  # the broadcast epilogue operand dropped
    (split_norm_graph, "m2s + counts * dev * dev", "m2s"),  # the spread between block means left out
    (split_norm_graph, "/ tl.minimum(n_cols - block * BLOCK_N, BLOCK_N)", "/ BLOCK_N"),  # short last block
    (norm_graph, "var = tl.sum(total, axis=1, keep_dims=True) / n_red",
     "var = tl.sum(total, axis=1, keep_dims=True) / (n_red - 1)"),
])
def test_mutated_dense_lowering_is_rejected(verifier, graph, old, new):
    g = graph()
    program = lower(g)
    assert old in program
    verdict = verifier.verify(g.to_task(id="teacher_dense_mutant", level=6), program.replace(old, new, 1))
    assert not verdict.accepted
    assert verdict.stage == "correct", verdict.summary()


# the one-kernel form, and the split form (2 channels of 1,440 elements: two blocks, the second short)
@pytest.mark.parametrize("op, shape", [("batch_norm3d", (3, 4, 2, 3, 5)), ("batch_norm2d", (6, 2, 20, 12))])
def test_batch_norm_running_estimates_follow_the_reference(tmp_path, op, shape):
    """Training-mode forwards update running mean/var/count like nn.BatchNorm; eval mode then uses them."""
    g = Graph()
    g.outputs = [g.add(op, [g.input(shape)], features=shape[1])]
    task = g.to_task(id="teacher_bn_state", level=1)
    (tmp_path / "ref.py").write_text(task.code)
    (tmp_path / "cand.py").write_text(lower(g))
    ref_mod = load_module(tmp_path / "ref.py", f"_teacher_bn_ref_{op}")
    cand_mod = load_module(tmp_path / "cand.py", f"_teacher_bn_cand_{op}")
    assert ("batch_norm_stats_kernel" in cand_mod.__dict__) == (op == "batch_norm2d")
    init = ref_mod.get_init_inputs()
    ref, new = ref_mod.Model(*init), cand_mod.ModelNew(*init)
    new.load_state_dict(ref.state_dict())
    torch.manual_seed(0)
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(shape) * 2 + 1
            torch.testing.assert_close(new(x), ref(x), atol=1e-5, rtol=1e-5)
        for key, value in ref.state_dict().items():
            torch.testing.assert_close(new.state_dict()[key], value, atol=1e-6, rtol=1e-5, msg=key)
        ref.eval(), new.eval()
        x = torch.randn(shape)
        torch.testing.assert_close(new(x), ref(x), atol=1e-5, rtol=1e-5)


class _Launches:
    """Stands in for a kernel in a loaded candidate, recording the grid of every launch."""

    def __init__(self, kernel):
        self.kernel, self.grids = kernel, []

    def __getitem__(self, grid):
        self.grids.append(grid)
        return self.kernel[grid]


@pytest.mark.parametrize("d, shape, split", [
    (2, (16, 64, 8, 8), False),  # many small planes, several per program
    (2, (1, 2, 96, 128), True),  # few long planes, split into 3 chunks each
    (1, (3, 1, 4097), True),  # one element past a block
    (3, (2, 3, 4, 5, 6), False),
])
# the default tiles and the sweep's smallest (1024-element tiles: more, shorter chunks)
@pytest.mark.parametrize("tiling", [Tiling(), SWEEP[2]], ids=["default", "small"])
def test_global_average_pool_matches_torch(tmp_path, d, shape, split, tiling):
    """A global pool is one plane-mean kernel, after a partial-sum kernel where the planes are split."""
    g = Graph()
    g.outputs = [g.add(f"adaptive_avg_pool{d}d", [g.input(shape)], output_size=1)]
    (tmp_path / "cand.py").write_text(lower(g, tiling))
    cand = load_module(tmp_path / "cand.py", f"_teacher_global_pool_{tmp_path.name}")
    partial = cand.__dict__[f"adaptive_avg_pool{d}d_partial_kernel"] = _Launches(
        cand.__dict__[f"adaptive_avg_pool{d}d_partial_kernel"])
    x = torch.randn(shape) + 1
    expected = getattr(torch.nn.functional, f"adaptive_avg_pool{d}d")(x, 1)
    torch.testing.assert_close(cand.ModelNew()(x), expected, atol=1e-5, rtol=1e-5)
    assert bool(partial.grids) == split, partial.grids


@pytest.fixture
def unlowered_op():
    """An operator registered after the teacher's tables (as a new registry entry would be)."""
    op = Unary("teacher_test_square", "{x} * {x}", "pointwise")
    REGISTRY[op.name] = op
    yield op.name
    del REGISTRY[op.name]


def test_operator_without_lowering_raises_unsupported(unlowered_op):
    g = Graph()
    g.outputs = [g.add(unlowered_op, [g.add("relu", [g.input((4, 16))])])]
    with pytest.raises(Unsupported) as info:
        lower(g)
    assert info.value.op == unlowered_op and "no teacher lowering" in info.value.reason


def test_a_dropped_shape_variant_leaves_the_running_statistics_alone(verifier):
    """The reference's shape variant updates batch norm's running mean, then fails in `cat` (the pooled
    size is fixed, the input's is not), so the variant is dropped; the candidate never runs it, so the
    reference's buffers must be as before the variant (once a false `wrong_state` rejection)."""
    g = Graph()
    x = g.input((6, 2, 4))
    bn = g.add("batch_norm1d", [g.add("adaptive_avg_pool1d", [x], output_size=4)], features=2)
    g.outputs = [g.add("cat", [bn, x], dim=1)]
    task = g.to_task(id="teacher_dropped_variant", level=3)
    verdict = verifier.verify(task, lower(g))
    assert verdict.accepted, verdict.summary()


def test_fused_norm_epilogues_compile_for_sm90():
    """The norm kernels with epilogues go through Triton's sm_90 front end too (the interpreter accepts code
    the compiler rejects)."""
    from verify import extract_program
    from verify.gpu_frontend import front_end_reports

    pairs = [(g.to_task(id="t", level=6).code, extract_program(lower(g, tiling)))
             for g in (norm_epilogue_graph(), split_norm_graph()) for tiling in SWEEP]
    for report, kernels in zip(front_end_reports(pairs), [2] * len(SWEEP) + [4] * len(SWEEP)):
        assert not report["errors"] and not report["forward_error"] and report["kernels"] == kernels, report


@pytest.mark.parametrize("tiling", SWEEP)
def test_split_norms_match_torch_for_every_tiling(tmp_path, tiling):
    """The split forms under each tiling of the sweep (1 to 25 blocks per row, a short last block): outputs
    and batch norm's running estimates over two training-mode forwards, then eval mode."""
    g = split_norm_graph()
    program = lower(g, tiling)
    assert "group_norm_stats_kernel[(n_rows, n_splits)]" in program
    assert "batch_norm_stats_kernel[(n_channels, n_splits)]" in program
    (tmp_path / "ref.py").write_text(g.to_task(id="split_norms", level=6).code)
    (tmp_path / "cand.py").write_text(program)
    ref = load_module(tmp_path / "ref.py", f"_teacher_split_ref_{tmp_path.name}")
    new = load_module(tmp_path / "cand.py", f"_teacher_split_cand_{tmp_path.name}")
    model = ref.Model(*ref.get_init_inputs())
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.5, 1.5)
    cand = new.ModelNew(*ref.get_init_inputs())
    cand.load_state_dict(model.state_dict())
    torch.manual_seed(0)
    with torch.no_grad():
        for mode in ("train", "train", "eval"):
            if mode == "eval":
                model.eval(), cand.eval()
            xs = (torch.randn(2, 8, 40, 40) * 3.0 + 5.0, torch.randn(4, 3, 30, 30) * 2.0 - 1.0)
            for want, got in zip(model(*xs), cand(*xs)):
                torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
            for key, value in model.state_dict().items():
                torch.testing.assert_close(cand.state_dict()[key], value, atol=1e-6, rtol=1e-5, msg=key)


def test_gathers_and_tensor_core_dots_compile_for_sm90():
    """The fused cat / stack loads and the tf32x3 matmuls go through Triton's sm_90 front end."""
    from verify import extract_program
    from verify.gpu_frontend import front_end_reports

    graphs = [(gather_graph, 4), (matmul_graph, 5), (conv_only_graph, 1), (pool_prologue_graph, 3),
              (row_prologue_graph, 5), (norm_prologue_graph, 6)]
    pairs = [(graph().to_task(id="t", level=6).code, extract_program(lower(graph(), tiling)))
             for graph, _ in graphs for tiling in SWEEP]
    expected = [kernels for _, kernels in graphs for _ in SWEEP]
    for report, kernels in zip(front_end_reports(pairs), expected):
        assert not report["errors"] and not report["forward_error"] and report["kernels"] == kernels, report
