"""The frontend: every fixture and synthetic program traces into the IR and every fragment task computes
exactly the original program's slice; what the IR cannot express fails with an error naming it."""

import pytest
import torch
from search.assembly import enumerate_spans
from search.frontend import UnsupportedConstruct, trace
from tests.search.search_helpers import check_fragment, original_values, synthetic_tasks
from verify.fixtures import fixture_names, fixture_task
from verify.task import Task, TaskError

# fixtures using operators synth's IR does not have, and the construct the error must name
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
    if name in UNSUPPORTED_FIXTURES:
        with pytest.raises(UnsupportedConstruct, match=UNSUPPORTED_FIXTURES[name]):
            trace(task)
        return
    program, n_spans = roundtrip(task)
    assert n_spans >= 1 and len(program.ops) == len(program.op_names)


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
        ("return x / y", "division by a tensor"),
        ("return torch.exp(x) + y", "exp"),
        ("return torch.cat([x, y, x], dim=1)", "cat of 3 tensors"),
        ("return x", "not computed by an operator"),
        ("return x.relu() if x.sum() > 0 else y", "torch.export"),
    ],
)
def test_unsupported_constructs_are_named(body, construct):
    with pytest.raises(UnsupportedConstruct, match=construct):
        trace(_task(body))


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
        ("return F.normalize(torch.relu(x), dim=-1) + F.softsign(x)", ["relu", "normalize", "softsign", "add"]),
    ],
)
def test_functions_that_export_as_a_division_by_a_tensor_are_recognised(body, ops):
    program, _ = roundtrip(_one_input(body))
    assert program.op_names == ops


@pytest.mark.parametrize("body", ["return x / (x.abs() + 2)", "return F.normalize(x, dim=1, p=1)",
                                  "return F.normalize(x, dim=1, eps=1e-3)"])
def test_near_misses_of_those_patterns_stay_unsupported(body):
    with pytest.raises(UnsupportedConstruct):
        trace(_one_input(body))
