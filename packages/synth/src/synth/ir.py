"""The operator graph: the one program IR that synthesis, the FX frontend and the teacher share.

A `Graph` is a networkx `MultiDiGraph` whose nodes are operators and whose edges are tensors. Every
operator makes exactly one tensor, so a tensor is named by the id of the node that makes it. A node holds
`op` (a registered operator name, see `synth.ops`), `params` (a dict) and `shape` (a tuple, or None
until known); an edge `producer -> consumer` holds `slot`, the consumer's input position. Node ids are
ints given in insertion order, which is always a topological order. `outputs` lists the returned tensors.

Build one by hand (shapes are inferred as you go when the inputs' shapes are known):

    from synth.ir import Graph
    g = Graph()
    x = g.input((16, 32))                           # creation op "input": an argument of forward
    b = g.parameter((64,))                          # creation op "parameter": an nn.Parameter
    h = g.add("linear", [x], in_features=32, out_features=64)
    y = g.add("add", [g.add("relu", [h]), b])       # broadcasting add
    g.outputs = [y]
    g.shape(y)                                      # (16, 64)
    task = g.to_task(id="demo", level=2)            # verify.task.Task in KernelBench form
    print(task.code)

Ops whose size parameters follow from shapes (linear's `in_features`, conv's `in_channels`...) can take
them from `g.fill_size_params()` instead; `g.structural_hash()` identifies the program up to renaming.
"""
from __future__ import annotations

import hashlib
import json
from typing import Sequence

import networkx as nx

from synth.ops import Op, ShapeError, get_op
from synth.ops.base import Shape, numel
from synth.printer import to_code


class Graph:
    """An operator graph (see the module docstring)."""

    def __init__(self) -> None:
        self.g = nx.MultiDiGraph()
        self.outputs: list[int] = []

    # building -----------------------------------------------------------------------------------------
    def add(self, op: str, inputs: Sequence[int] = (), shape: Sequence[int] | None = None, **params) -> int:
        """Add operator `op` reading tensors `inputs` (in slot order); returns the new tensor's id.

        The output shape is `shape` if given, else inferred when every input's shape is known.
        """
        spec = get_op(op)
        # arity None: any number of tensor inputs (an opaque ATen call that stays PyTorch)
        if spec.arity is not None and len(inputs) != spec.arity:
            raise ValueError(f"operator {op!r} takes {spec.arity} tensor inputs, got {len(inputs)}")
        for t in inputs:
            if t not in self.g:
                raise KeyError(f"tensor {t} is not in the graph (add its producer first)")
        n = self.g.number_of_nodes()
        params = dict(params)
        if spec.kind == "creation" and shape is not None:
            params["shape"] = tuple(int(s) for s in shape)
        self.g.add_node(n, op=op, params=params, shape=None)
        for slot, t in enumerate(inputs):
            self.g.add_edge(t, n, slot=slot)
        if shape is not None:
            self.g.nodes[n]["shape"] = tuple(int(s) for s in shape)
        elif all(self.shape(t) is not None for t in inputs) and (spec.arity or "shape" in params):
            self.g.nodes[n]["shape"] = spec.infer([self.shape(t) for t in inputs], params)
        return n

    def input(self, shape: Sequence[int], uniform: bool = False) -> int:
        """A data input (an argument of forward, made by get_inputs with randn or, if `uniform`, rand)."""
        return self.add("input_uniform" if uniform else "input", shape=tuple(shape))

    def parameter(self, shape: Sequence[int]) -> int:
        """A learnable `nn.Parameter` of `shape`, made in `__init__`."""
        return self.add("parameter", shape=tuple(shape))

    def set_shape(self, n: int, shape: Sequence[int]) -> None:
        self.g.nodes[n]["shape"] = tuple(int(s) for s in shape)
        if get_op(self.op_name(n)).kind == "creation":
            self.g.nodes[n]["params"]["shape"] = tuple(int(s) for s in shape)

    # reading ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def nodes(self) -> list[int]:
        """All node ids in topological (insertion) order."""
        return list(range(self.g.number_of_nodes()))

    def op_name(self, n: int) -> str:
        return self.g.nodes[n]["op"]

    def op(self, n: int) -> Op:
        return get_op(self.g.nodes[n]["op"])

    def params(self, n: int) -> dict:
        return self.g.nodes[n]["params"]

    def shape(self, n: int) -> Shape | None:
        return self.g.nodes[n]["shape"]

    def inputs_of(self, n: int) -> list[int]:
        """The tensors `n` reads, in slot order."""
        edges = sorted((d["slot"], u) for u, _, d in self.g.in_edges(n, data=True))
        return [u for _, u in edges]

    def consumers(self, n: int) -> list[int]:
        return sorted({v for _, v in self.g.out_edges(n)})

    def compute_nodes(self) -> list[int]:
        return [n for n in self.nodes() if self.op(n).kind == "compute"]

    def creation_nodes(self) -> list[int]:
        return [n for n in self.nodes() if self.op(n).kind == "creation"]

    def data_inputs(self) -> list[int]:
        """Creation nodes that are forward arguments (not parameters), in order."""
        return [n for n in self.creation_nodes() if not self.op(n).module]

    def sinks(self) -> list[int]:
        """Compute tensors nothing reads."""
        return [n for n in self.compute_nodes() if not self.consumers(n)]

    def op_names(self) -> list[str]:
        """Compute operator names in topological order (the task's `ops`)."""
        return [self.op_name(n) for n in self.compute_nodes()]

    def op_edges(self) -> list[tuple[str, str]]:
        """(producer, consumer) operator-name pairs for every compute-to-compute tensor use."""
        compute = set(self.compute_nodes())
        return [(self.op_name(u), self.op_name(v)) for u, v in self.g.edges()
                if u in compute and v in compute]

    # shapes and costs ---------------------------------------------------------------------------------
    def infer_shapes(self) -> None:
        """Recompute every compute node's shape from its inputs, in order; raises ShapeError on a mismatch."""
        for n in self.compute_nodes():
            ins = [self.shape(t) for t in self.inputs_of(n)]
            try:
                self.g.nodes[n]["shape"] = self.op(n).infer(ins, self.params(n))
            except (KeyError, TypeError) as e:
                raise ShapeError(f"node {n} ({self.op_name(n)}): missing parameter {e}") from None

    def fill_size_params(self) -> None:
        """Set size parameters (out_features, channels, ...) from the known shapes of inputs and outputs."""
        for n in self.compute_nodes():
            ins = [self.shape(t) for t in self.inputs_of(n)]
            self.params(n).update(self.op(n).size_params(ins, self.shape(n), self.params(n)))

    def flops(self) -> int:
        return sum(self.op(n).flops([self.shape(t) for t in self.inputs_of(n)], self.shape(n), self.params(n))
                   for n in self.compute_nodes())

    def elements(self) -> int:
        """Elements of every tensor plus every weight: the memory the program touches."""
        tensors = sum(numel(self.shape(n)) for n in self.nodes())
        weights = sum(self.op(n).weight_elements([self.shape(t) for t in self.inputs_of(n)], self.shape(n),
                                                 self.params(n)) for n in self.compute_nodes())
        return tensors + weights

    # identity and printing ----------------------------------------------------------------------------
    def structural_hash(self, shapes: bool = True) -> str:
        """Hash of the program up to renaming: operators, parameters, wiring, outputs (and shapes).

        Each node's label hashes its operator, parameters, shape and its inputs' labels in slot order (a
        Merkle hash of its ancestry); leaves are told apart by their order of first use from the outputs.
        The result hashes the outputs' labels in order and the multiset of all labels.
        """
        leaf_index: dict[int, int] = {}
        seen: set[int] = set()
        stack = list(reversed(self.outputs))
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if self.op(n).kind == "creation":
                leaf_index[n] = len(leaf_index)
            stack.extend(reversed(self.inputs_of(n)))
        labels: dict[int, str] = {}
        for n in self.nodes():
            base = [self.op_name(n),
                    _canon(self.params(n)) if shapes else _canon(_drop_shape(self.params(n))),
                    self.shape(n) if shapes else None, leaf_index.get(n)]
            text = json.dumps([base, [labels[t] for t in self.inputs_of(n)]], default=str)
            labels[n] = hashlib.sha1(text.encode()).hexdigest()
        summary = json.dumps([[labels[n] for n in self.outputs], sorted(labels.values())])
        return hashlib.sha256(summary.encode()).hexdigest()[:32]

    def to_code(self) -> str:
        return to_code(self)

    def to_task(self, **metadata):
        """This graph as a `verify.task.Task` (KernelBench form); `metadata` fills id, source, level, meta."""
        from verify.task import Task  # importing verify loads torch; the IR and the sampler stay without it

        metadata.setdefault("ops", tuple(self.op_names()))
        return Task.from_code(self.to_code(), **metadata)

    def to_dict(self) -> dict:
        """JSON-ready form: nodes (op, params, shape, inputs) in order, and outputs."""
        return {"nodes": [{"op": self.op_name(n), "params": _canon(self.params(n)), "shape": self.shape(n),
                           "inputs": self.inputs_of(n)} for n in self.nodes()],
                "outputs": list(self.outputs)}

    @classmethod
    def from_dict(cls, d: dict) -> "Graph":
        g = cls()
        for node in d["nodes"]:
            params = {k: v for k, v in node["params"].items() if k != "shape"}
            g.add(node["op"], node["inputs"], shape=node["shape"], **params)
        g.outputs = list(d["outputs"])
        return g


def _drop_shape(params: dict) -> dict:
    return {k: v for k, v in params.items() if k != "shape"}


def _canon(params: dict) -> dict:
    """Parameters with tuples as lists and keys sorted, so equal parameters print equally."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return {k: plain(params[k]) for k in sorted(params)}

