"""The frontend: every fixture and synthetic program traces into the IR and every fragment task computes
exactly the original program's slice; an ATen call the table cannot map stays PyTorch as an opaque `aten`
node (or, with opaque=False, fails with an error naming it)."""

import pytest
import torch

from search.assembly import enumerate_spans
from search.frontend import UnsupportedConstruct, trace
from tests.search.search_helpers import check_fragment, original_values, synthetic_tasks
from verify.fixtures import fixture_names, fixture_task
from verify.task import Task, TaskError

# fixtures using operators synth's IR does not have, and the construct the error must name (opaque=False)
UNSUPPORTED_FIXTURES = {"rmsnorm": "rsqrt"}


def roundtrip(task):
    program = trace(task)
    model, values = original_values(program)
    spans = enumerate_spans(len(program), 5)
    for start, stop in spans:
        check_fragment(program, program.fragment(start, stop), model, values)
    return program, len(spans)


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_round_trips(name):
    task = fixture_task(name)
    try:
        trace(task, opaque=False)
        mapped = True
    except UnsupportedConstruct as e:
        mapped = False
        assert name not in UNSUPPORTED_FIXTURES or UNSUPPORTED_FIXTURES[name] in str(e)
    program, n_spans = roundtrip(task)
    assert n_spans >= 1 and len(program.ops) == len(program.op_names)
    assert bool(program.opaque) != mapped and not (mapped and name in UNSUPPORTED_FIXTURES)


def test_synthetic_programs_round_trip():
    traced, reasons = 0, []
    for task in synthetic_tasks(24, seed=7):
        try:
            roundtrip(task)
            traced += 1
        except UnsupportedConstruct as e:
            reasons.append(str(e))
    # softsign and normalize (a division by a tensor in ATen) are recognised as patterns: all must trace
    assert traced == 24, reasons
    assert all(r.startswith("synth/") for r in reasons)


def test_fixture_structure_is_recovered():
    program = trace(fixture_task("conv2d_bias_relu"))
    assert program.op_names == ["conv2d", "add", "relu"]
    assert program.state[program.ops[0]] == {"weight": "conv.weight", "bias": "conv.bias"}
    frag = program.fragment(1, 3)  # bias + relu: the bias parameter travels with the fragment
    assert frag.state_map == {"parameter1": "bias"} and frag.live_ins == (program.ops[0],)
    assert "self.parameter1 = nn.Parameter" in frag.task.code and frag.init_inputs == (16,)


def test_fragment_inputs_keep_their_dtype():
    program = trace(fixture_task("swiglu_fp16"))
    frag = program.fragment(1, 2)
    namespace = {}
    exec(frag.task.code, namespace)
    assert {x.dtype for x in namespace["get_inputs"]()} == {torch.float16}
    assert frag.task.dtype == "float16"


def test_multiple_live_outs_become_a_tuple():
    code = (
        "import torch\nimport torch.nn as nn\nclass Model(nn.Module):\n    def forward(self, x):\n"
        "        a = torch.relu(x)\n        b = torch.sigmoid(a)\n        return a * b, torch.tanh(b)\n"
        "def get_inputs():\n    return [torch.randn(8, 16)]\ndef get_init_inputs():\n    return []\n"
    )
    task = Task.from_code(code, id="multi")
    program, _ = roundtrip(task)
    frag = program.fragment(0, 2)  # relu, sigmoid: both are read later
    assert len(frag.live_outs) == 2 and "return (" in frag.task.code


def _task(body, inputs="torch.randn(8, 16), torch.randn(8, 16)"):
    code = (
        f"import torch\nimport torch.nn as nn\nclass Model(nn.Module):\n    def forward(self, x, y):\n"
        f"        {body}\ndef get_inputs():\n    return [{inputs}]\ndef get_init_inputs():\n    return []\n"
    )
    return Task.from_code(code, id="t")


@pytest.mark.parametrize(
    "body, construct",
    [
        ("return torch.atan2(x, y)", "atan2"),
        ("return torch.exp(x) + y", "exp"),
        ("return torch.cat([x, y, x], dim=1)", "cat of 3 tensors"),
        ("return x", "not computed by an operator"),
        ("return x.relu() if x.sum() > 0 else y", "torch.export"),
    ],
)
def test_unsupported_constructs_are_named(body, construct):
    with pytest.raises(UnsupportedConstruct, match=construct):
        trace(_task(body), opaque=False)


@pytest.mark.parametrize(
    "body, ops",
    [
        ("return torch.atan2(x, y)", ["aten"]),
        ("return x / y", ["div"]),
        ("return torch.exp(x) + y", ["aten", "add"]),
        ("return torch.sort(x, dim=-1).values * 2.0", ["aten", "scale"]),
        ("return torch.sort(x, dim=-1).indices.float() + y", ["aten", "aten", "add"]),
        ("a, b = torch.max(x, dim=1); return torch.relu(a) * b", ["amax", "argmax", "relu", "mul"]),
        ("x.relu_(); return x.view(16, 8).T + torch.tensor(2.0)", ["relu", "reshape", "transpose", "shift"]),
    ],
)
def test_unmapped_calls_stay_pytorch_as_opaque_nodes(body, ops):
    program, _ = roundtrip(_task(body.replace("; ", "\n        ")))
    assert program.op_names == ops
    assert [program.op_names[i] for i in program.opaque] == ["aten"] * ops.count("aten")


def test_broken_task_is_a_task_error():
    with pytest.raises(TaskError, match="does not run"):
        trace(_task("return x", inputs="torch.randn(8, 16), undefined_name"))


def _one_input(body):
    code = (
        f"import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nclass Model(nn.Module):\n"
        f"    def forward(self, x):\n        {body}\ndef get_inputs():\n    return [torch.randn(8, 16)]\n"
        "def get_init_inputs():\n    return []\n"
    )
    return Task.from_code(code, id="t")


@pytest.mark.parametrize(
    "body, ops",
    [
        ("return F.softsign(x)", ["softsign"]),
        ("return x / (x.abs() + 1)", ["softsign"]),
        ("return F.normalize(x, dim=1)", ["normalize"]),
        (
            "return F.normalize(torch.relu(x), dim=-1) + F.softsign(x)",
            ["relu", "normalize", "softsign", "add"],
        ),
    ],
)
def test_functions_that_export_as_a_division_by_a_tensor_are_recognised(body, ops):
    program, _ = roundtrip(_one_input(body))
    assert program.op_names == ops


@pytest.mark.parametrize(
    "body",
    [
        "return x / (x.abs() + 2)",
        "return F.normalize(x, dim=1, p=1)",
        "return F.normalize(x, dim=1, eps=1e-3)",
    ],
)
def test_near_misses_of_those_patterns_are_not_fused(body):
    program, _ = roundtrip(_one_input(body))
    assert not {"softsign", "normalize"} & set(program.op_names), program.op_names


@pytest.mark.parametrize(
    "equation, shapes, ops",
    [
        ("bijl,lk->bijk", [(2, 3, 4, 5), (5, 6)], ["matmul"]),
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], ["matmul"]),
        ("ij,kj->ik", [(3, 4), (5, 4)], ["aten"]),
        ("ii->i", [(3, 3)], ["aten"]),
    ],
)
def test_einsum_is_a_matmul_where_it_is_one(equation, shapes, ops):
    names = ", ".join(f"a{i}" for i in range(len(shapes)))
    code = (
        f"import torch\nimport torch.nn as nn\nclass Model(nn.Module):\n    def forward(self, {names}):\n"
        f"        return torch.einsum({equation!r}, {names})\ndef get_inputs():\n"
        f"    return [{', '.join(f'torch.randn{s}' for s in shapes)}]\n"
        "def get_init_inputs():\n    return []\n"
    )
    program, _ = roundtrip(Task.from_code(code, id="einsum"))
    assert program.op_names == ops


@pytest.mark.parametrize(
    "body, ops",
    [
        ("return x.sum() + y", ["sum", "add"]),
        ("return x / torch.norm(x)", ["norm", "div"]),
        ("return torch.mean((x - y) ** 2)", ["sub", "pow", "mean"]),
        ("return torch.mean(torch.clamp(1 - x * y, min=0))", ["mul", "scale", "shift", "clamp", "mean"]),
        ("return torch.min(x, torch.tensor(0.5)) * torch.log(torch.tensor(4.0))", ["clamp", "scale"]),
    ],
)
def test_whole_tensor_reductions_rsub_and_constants(body, ops):
    program, _ = roundtrip(_task(body))
    assert program.op_names == ops
