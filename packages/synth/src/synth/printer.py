"""Print a `synth.ir.Graph` as a KernelBench-form program.

Sizes that appear in `get_inputs` or in `__init__` become module-level constants (`dim0 = 128`, numbered
by first use; size 1 stays a literal since it usually means broadcasting). Constants used by `__init__`
are its arguments, returned by `get_init_inputs()` in the same order, as in KernelBench.
Data inputs are `x<id>`, intermediate tensors `t<id>`, modules and parameters `self.<op><id>`.
"""
from __future__ import annotations

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


class _Sizes:
    """Names sizes by value, in first-use order."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.used_by_init: list[str] = []
        self._init = False

    def __call__(self, value: int) -> str:
        value = int(value)
        if value == 1:
            return "1"
        if value not in self.names:
            self.names[value] = f"dim{len(self.names)}"
        name = self.names[value]
        if self._init and name not in self.used_by_init:
            self.used_by_init.append(name)
        return name


def to_code(graph) -> str:
    """KernelBench-form source for `graph` (every node needs its shape; see `Graph.fill_size_params`)."""
    missing = [n for n in graph.nodes() if graph.shape(n) is None]
    if missing:
        raise ValueError(
            f"cannot print a graph with unknown shapes (nodes {missing}); solve or infer them first")
    if not graph.outputs:
        raise ValueError("graph has no outputs; set graph.outputs to the returned tensors")
    size = _Sizes()
    inputs = graph.data_inputs()
    make_inputs = [graph.op(n).make_expr(", ".join(size(d) for d in graph.shape(n))) for n in inputs]

    size._init = True
    names, init_lines, body = {}, [], []
    for n in graph.nodes():
        op = graph.op(n)
        attr = f"{op.name}{n}" if op.module else None
        if attr:
            init_lines.append(f"self.{attr} = {op.init_expr(graph.params(n), size)}")
        if op.kind == "creation":
            names[n] = f"self.{attr}" if op.module else f"x{n}"
            continue
        names[n] = f"t{n}"
        args = [names[t] for t in graph.inputs_of(n)]
        body.append(f"t{n} = {op.forward_expr(args, graph.params(n), attr)}")
    size._init = False

    outs = [names[n] for n in graph.outputs]
    body.append(f"return {outs[0]}" if len(outs) == 1 else f"return ({', '.join(outs)})")
    init_args = "".join(f", {a}" for a in size.used_by_init)
    lines = [HEADER, "", "class Model(nn.Module):", f"    def __init__(self{init_args}):",
             "        super().__init__()"]
    lines += [f"        {line}" for line in init_lines]
    lines += ["", f"    def forward(self{''.join(', ' + names[n] for n in inputs)}):"]
    lines += [f"        {line}" for line in body]
    lines += ["", ""]
    lines += [f"{name} = {value}" for value, name in size.names.items()]
    lines += ["", "", "def get_inputs():", f"    return [{', '.join(make_inputs)}]", "", "",
              "def get_init_inputs():", f"    return [{', '.join(size.used_by_init)}]", ""]
    return "\n".join(lines)

