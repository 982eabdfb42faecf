"""Fragments: contiguous runs of a traced program's operators, each a standalone Task.

A fragment [start, stop) reads its *live-ins* (tensors made before it: forward arguments or earlier
operators' outputs) and returns its *live-outs* (its tensors read after it, or returned by the program).
Its Task is printed by synth's printer: its own `Model` with the fragment's operators, `get_inputs()` making
live-ins of the right shapes and dtypes, `get_init_inputs()` for the module sizes. Weights are carried
over: `state_map` maps each key of the fragment Model's state_dict to the original Model's key, so
`fragment.load_weights(fragment_model, original_model)` makes the fragment compute the original's slice.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import torch

from synth.ir import Graph
from verify.pyparse import PARSE_LOCK
from verify.task import Task

_FLOAT_DTYPES = ("float16", "bfloat16", "float64")


@dataclass(frozen=True)
class Fragment:
    start: int
    stop: int
    task: Task
    # IR tensors of the whole program read by the fragment (in its forward-argument order) and returned by it
    live_ins: tuple[int, ...]
    live_outs: tuple[int, ...]
    # fragment Model state_dict key -> original Model state_dict key
    state_map: dict
    # get_init_inputs() of the fragment task (plain Python values)
    init_inputs: tuple
    # the fragment's own IR graph (its task's code is this graph printed), for the teacher to lower
    graph: Graph | None = field(default=None, compare=False, repr=False)

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.stop)

    def load_weights(self, fragment_model: torch.nn.Module, original_model: torch.nn.Module) -> None:
        """Copy the original Model's weights (and tensors it holds as attributes) into a Model built from
        this fragment's task."""
        original = original_model.state_dict()
        fragment_model.load_state_dict(
            {
                k: (original[v] if v in original else _attribute(original_model, v)).clone()
                for k, v in self.state_map.items()
            },
            strict=True,
        )


def _attribute(model: torch.nn.Module, path: str) -> torch.Tensor:
    for part in path.split("."):
        model = getattr(model, part)
    return model


def make_fragment(program, start: int, stop: int) -> Fragment:
    """Operators [start, stop) of `program` (a `search.frontend.Program`) as a Fragment."""
    with PARSE_LOCK:
        return _make_fragment(program, start, stop)


def _make_fragment(program, start: int, stop: int) -> Fragment:
    n = len(program.ops)
    if not 0 <= start < stop <= n:
        raise ValueError(f"fragment [{start}, {stop}) is outside the program's {n} operators")
    g = program.graph
    inside = program.ops[start:stop]
    inside_set = set(inside)
    live_ins: list[int] = []
    for node in inside:
        for t in g.inputs_of(node):
            if t not in inside_set and t not in live_ins and g.op_name(t) != "parameter":
                live_ins.append(t)
    later = set(program.ops[stop:])
    live_outs = [
        node for node in inside if node in program.graph.outputs or any(c in later for c in g.consumers(node))
    ]

    sub, new_id, state_map = Graph(), {}, {}
    for t in live_ins:
        new_id[t] = sub.input(g.shape(t))
    for node in inside:
        for t in g.inputs_of(node):
            if t not in new_id:  # a parameter leaf
                new_id[t] = sub.parameter(g.shape(t))
                state_map[f"parameter{new_id[t]}"] = program.state[t][""]
        m = sub.add(
            g.op_name(node),
            [new_id[t] for t in g.inputs_of(node)],
            shape=g.shape(node),
            **dict(g.params(node)),
        )
        new_id[node] = m
        for suffix, key in program.state.get(node, {}).items():
            state_map[f"{g.op_name(node)}{m}.{suffix}"] = key
    sub.outputs = [new_id[t] for t in live_outs]
    code = _set_input_dtypes(sub.to_code(), [program.dtypes[t] for t in live_ins])
    dtype = next(
        (program.dtypes[t] for t in live_ins if program.dtypes[t] in _FLOAT_DTYPES), program.task.dtype
    )
    task = Task.from_code(
        code,
        id=f"{program.task.id}#ops{start}-{stop}",
        source="fragment",
        level=stop - start,
        ops=tuple(sub.op_names()),
        dtype=dtype,
        meta={"parent": program.task.id, "span": [start, stop]},
    )
    return Fragment(
        start, stop, task, tuple(live_ins), tuple(live_outs), state_map, tuple(_init_inputs(code)), sub
    )


def _set_input_dtypes(code: str, dtypes: list[str]) -> str:
    """Give `get_inputs()`'s tensors the live-ins' dtypes (synth prints float32 `randn` inputs): other
    floats keep randn, integer live-ins (indices an opaque call returned) are small random integers and
    boolean ones random masks."""
    if all(d == "float32" for d in dtypes):
        return code
    tree = ast.parse(code)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_inputs")
    ret = fn.body[-1]
    for i, (call, dtype) in enumerate(zip(ret.value.elts, dtypes)):
        shape = ", ".join(ast.unparse(a) for a in call.args)
        if dtype == "bool":
            ret.value.elts[i] = ast.parse(f"torch.rand(({shape},)) > 0.5", mode="eval").body
        elif dtype.startswith(("int", "uint")):
            ret.value.elts[i] = ast.parse(
                f"torch.randint(0, 4, ({shape},), dtype=torch.{dtype})", mode="eval"
            ).body
        elif dtype != "float32":
            call.keywords.append(ast.keyword("dtype", ast.parse(f"torch.{dtype}", mode="eval").body))
    return ast.unparse(tree) + "\n"


def _init_inputs(code: str) -> list:
    """Evaluate get_init_inputs() of printed fragment code (our own code: constants only)."""
    namespace: dict = {}
    # S102 (exec): code printed by synth, not a candidate
    exec(compile(code, "<fragment>", "exec"), namespace)  # noqa: S102
    return list(namespace["get_init_inputs"]())
