"""The operator registry and the graph IR: building by hand, printing, hashing, round trips."""
import pytest
import torch

from synth.ir import Graph
from synth.ops import ShapeError, UnknownOpError, compute_ops, creation_ops, get_op
from synth.validate import load, run


def demo_graph(order=0):
    g = Graph()
    if order == 0:
        x = g.input((16, 32))
        b = g.parameter((64,))
    else:
        b = g.parameter((64,))
        x = g.input((16, 32))
    h = g.add("linear", [x], in_features=32, out_features=64)
    y = g.add("add", [g.add("relu", [h]), b])
    g.outputs = [y]
    return g


def test_registry_covers_kernelbench_space():
    names = {op.name for op in compute_ops()}
    assert len(names) >= 60
    assert {op.name for op in creation_ops()} == {"input", "input_uniform", "input_positive", "parameter"}
    for required in ["matmul", "linear", "bmm", "conv1d", "conv2d", "conv3d", "conv_transpose2d",
                     "max_pool2d", "avg_pool2d", "batch_norm2d", "layer_norm", "group_norm",
                     "instance_norm2d", "rms_norm", "softmax", "log_softmax", "logsumexp", "sum", "mean",
                     "amax", "relu", "gelu", "silu", "mish", "hardswish", "tanh", "sigmoid", "elu",
                     "softplus", "leaky_relu", "hardtanh", "add", "mul", "clamp", "scale", "dropout", "cat",
                     "flatten", "transpose"]:
        assert required in names
    activations = [op for op in compute_ops() if op.category == "activation"]
    assert len(activations) >= 15


def test_unknown_operator_names_close_matches():
    with pytest.raises(UnknownOpError, match="relux.*did you mean relu"):
        get_op("relux")


def test_hand_built_graph_prints_a_runnable_task():
    g = demo_graph()
    assert g.shape(g.outputs[0]) == (16, 64)
    task = g.to_task(id="demo", level=2)
    assert task.ops == ("linear", "relu", "add")
    ns = load(task.code)
    (out,) = run(ns, "cpu")
    assert tuple(out.shape) == (16, 64)
    assert "nn.Linear(dim1, dim2)" in task.code and "def get_init_inputs" in task.code


def test_infer_rejects_mismatched_shapes():
    g = Graph()
    x = g.input((4, 8))
    with pytest.raises(ShapeError):
        g.add("linear", [x], in_features=9, out_features=3)
    with pytest.raises(ShapeError):
        g.add("mm", [x, g.input((7, 2))])


def test_structural_hash_ignores_insertion_order_and_sees_parameters():
    assert demo_graph(0).structural_hash() == demo_graph(1).structural_hash()
    g = demo_graph()
    g2 = demo_graph()
    g2.params(2)["bias"] = False
    assert g.structural_hash() != g2.structural_hash()
    assert g.structural_hash(shapes=False) == demo_graph(1).structural_hash(shapes=False)


def test_reuse_is_not_confused_with_two_equal_inputs():
    a = Graph()
    x = a.input((4, 4))
    a.outputs = [a.add("add", [x, x])]
    b = Graph()
    x, y = b.input((4, 4)), b.input((4, 4))
    b.outputs = [b.add("add", [x, y])]
    assert a.structural_hash() != b.structural_hash()


def test_dict_round_trip_keeps_program():
    g = demo_graph()
    again = Graph.from_dict(g.to_dict())
    assert again.to_code() == g.to_code()
    assert again.structural_hash() == g.structural_hash()


@pytest.mark.parametrize("op", [op.name for op in compute_ops()])
def test_infer_matches_torch_for_every_operator(op):
    """Sample each operator alone (small caps), then compare our shape rule with a real CPU run."""
    import random

    from synth.sampler import Sampler
    from synth.solvers.propagation import PropagationSolver

    sampler = Sampler(PropagationSolver(), ops=[op], max_elements=2**16, max_flops=2**22)
    for seed in range(3):
        graph, _ = sampler.sample(random.Random(f"ir:{op}:{seed}"), 1)
        outs = run(load(graph.to_code()), "cpu")
        assert [tuple(o.shape) for o in outs] == [graph.shape(n) for n in graph.outputs]
        assert all(torch.isfinite(o).all() for o in outs)
