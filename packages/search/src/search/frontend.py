"""The program frontend: any Task's `Model` as a flat, ordered graph in synth's operator IR.

    from search.frontend import trace
    program = trace(task)                     # UnsupportedConstruct names what it cannot map
    program.op_names                          # ['conv2d', 'add', 'relu']
    fragment = program.fragment(0, 2)         # ops [0, 2) as a standalone Task (see search.fragments)

The Model is exported with `torch.export` (ATen ops, shapes made concrete from `get_inputs()`), then each
ATen call is mapped to registered synth operators (`synth.ops`) by the table in `search.aten_table`:
modules whose weights live in the Model (linear, conv, norms) become module operators that remember which
of the Model's state_dict keys they read, other weights (and tensors the Model holds as plain attributes)
become `parameter` leaves, scalar operands (Python numbers, 0-d constants) become parameters of the
operator (`x * 0.5` is `scale`), and copies/views that change nothing are dropped. In-place calls
(`relu_`) map like their functional form. A call the table cannot map stays PyTorch: an opaque `aten` node
(`synth.ops.opaque`) that prints as the ATen call itself (`trace(task, opaque=False)` raises
`UnsupportedConstruct` instead, naming the ATen op and the source line). What even an opaque node cannot
hold (a Python-level call, a non-tensor result, a forward that returns an input) raises.
"""

from __future__ import annotations

import math
import operator
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

# torch.export imports torch._dynamo on its first call, which takes seconds: import it with this module, so
# that a caller's timeout around the first trace cannot interrupt the import and leave it half-initialised
import torch._dynamo

from search.aten_table import ATEN
from search.fragments import make_fragment
from synth.ir import Graph
from synth.ops import REGISTRY
from verify.inputs import load_module, seed_everything
from verify.pyparse import PARSE_LOCK
from verify.task import Task, TaskError


class UnsupportedConstruct(ValueError):
    """The program uses something the operator IR cannot express; the message names it."""


@dataclass
class Program:
    """A task traced into the IR. Operator i of the search is compute node `ops[i]` of `graph`."""

    task: Task
    graph: Graph
    # tensor forward argument names, in order, and the IR input node of each
    arg_names: list[str]
    inputs: list[int]
    # compute and opaque nodes in topological order (the search's operators)
    ops: list[int]
    # per IR node: {state suffix ("" for a parameter leaf, "weight", ...) -> key in Model.state_dict()}
    state: dict[int, dict[str, str]]
    # per IR node: dtype of the tensor it makes ("float32", "float16", ...)
    dtypes: dict[int, str]
    # per IR node: name of the ATen node it came from (for tests and error messages)
    fx_names: dict[int, str] = field(default_factory=dict)
    # every forward argument name in order, scalars included (a scalar's traced value is baked in)
    signature: list[str] = field(default_factory=list)
    # parameter leaves that are plain tensor attributes of the Model, not in its state_dict
    constants: set[int] = field(default_factory=set)

    @property
    def op_names(self) -> list[str]:
        return [self.graph.op_name(n) for n in self.ops]

    @property
    def opaque(self) -> list[int]:
        """Positions (in `ops`) of the ATen calls that stay PyTorch."""
        return [i for i, n in enumerate(self.ops) if is_opaque(self.graph, n)]

    def __len__(self) -> int:
        return len(self.ops)

    def fragment(self, start: int, stop: int):
        """Operators [start, stop) as a standalone Task with its wiring (see `search.fragments`)."""
        return make_fragment(self, start, stop)


def is_opaque(graph: Graph, node: int) -> bool:
    """Whether IR node `node` is an ATen call that stays PyTorch."""
    return graph.op(node).kind == "opaque"


def load_task_module(task: Task, name: str = "_search_task"):
    """Import a task's code as a module (the reference program is trusted code)."""
    tmp = Path(tempfile.mkdtemp(prefix="search_task_"))
    path = tmp / f"{name}.py"
    path.write_text(task.code)
    return load_module(path, f"{name}_{abs(hash(task.digest)) % 10**8}")


def trace(task: Task, seed: int = 0, opaque: bool = True) -> Program:
    """Export `task`'s Model and map it into the IR; with `opaque`, calls the table cannot map stay PyTorch.

    Raises UnsupportedConstruct for what the IR cannot express, TaskError for a task that does not run.
    """
    # torch.export keeps global tracing state and builds ASTs (CPython 3.11's AST constructor is not
    # thread-safe): tracing, fragment printing and assembly hold verify's parse lock, so that concurrent
    # searches (bench's tasks_in_flight) and the verifier's parsing never overlap
    with PARSE_LOCK:
        return _trace(task, seed, opaque)


def _trace(task: Task, seed: int, opaque: bool) -> Program:
    try:
        module = load_task_module(task)
        seed_everything(seed)
        model = module.Model(*module.get_init_inputs())
        inputs = module.get_inputs()
    except Exception as e:
        raise TaskError(f"task {task.id} does not run: {type(e).__name__}: {e}"[:400]) from None
    for i, x in enumerate(inputs):
        if not isinstance(x, (torch.Tensor, int, float, bool)):
            raise UnsupportedConstruct(
                f"{task.id}: forward argument {i} is a {type(x).__name__}, not a tensor or a number "
                "(only tensor arguments can become fragment inputs)"
            )
    try:
        exported = torch.export.export(model, tuple(inputs))
    except Exception as e:  # export errors are many and deep; the first line says what broke
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsupportedConstruct(
            f"{task.id}: torch.export could not capture the Model: {first[:300]}"
        ) from None
    return Mapper(task, exported, model, opaque).run()


def _bind(node) -> dict:
    """The node's arguments by schema name, defaults filled in."""
    schema = node.target._schema
    bound = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args):
            bound[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            bound[arg.name] = node.kwargs[arg.name]
        elif arg.has_default_value():
            bound[arg.name] = arg.default_value
        else:
            bound[arg.name] = None
    return bound


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _has_attr(model: torch.nn.Module, path: str) -> bool:
    obj = model
    for part in path.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return isinstance(obj, torch.Tensor)


def _only_user(node, user) -> bool:
    return hasattr(node, "users") and list(node.users) == [user]


def fused_patterns(graph) -> tuple[dict, set]:
    """Python-level functions that export as several ATen ops, one of which (a division by a tensor) the
    IR cannot express alone: F.softsign (x / (1 + |x|)) and F.normalize (x / max(||x||_2, eps) over one
    dim). Returns {name of the division node: (synth op, input node, params)} and the names of the nodes
    it absorbs (each used by the division alone)."""
    aten = torch.ops.aten
    fused, absorbed = {}, set()
    for n in graph.nodes:
        if n.op != "call_function" or n.target is not aten.div.Tensor or n.kwargs.get("rounding_mode"):
            continue
        x, den = n.args[0], n.args[1]
        if not _only_user(den, n):
            continue
        if den.target is aten.add.Tensor and den.kwargs.get("alpha", 1) == 1:
            a, c = den.args if hasattr(den.args[0], "target") else den.args[::-1]
            if (
                c == 1
                and hasattr(a, "target")
                and a.target is aten.abs.default
                and a.args[0] is x
                and _only_user(a, den)
            ):
                fused[n.name] = ("softsign", x, {})
                absorbed |= {a.name, den.name}
        elif den.target is aten.expand_as.default and den.args[1] is x:
            clamp = den.args[0]
            norm = clamp.args[0] if getattr(clamp, "target", None) is aten.clamp_min.default else None
            if (
                norm is not None
                and _only_user(clamp, den)
                and clamp.args[1] == 1e-12
                and _only_user(norm, clamp)
                and norm.target is aten.linalg_vector_norm.default
                and norm.args[0] is x
                and norm.args[1] == 2
                and len(norm.args) > 3
                and norm.args[3]
                and len(norm.args[2]) == 1
                and norm.kwargs.get("dtype") is None
            ):
                fused[n.name] = ("normalize", x, {"dim": int(norm.args[2][0])})
                absorbed |= {norm.name, clamp.name, den.name}
    return fused, absorbed


@dataclass(frozen=True)
class Temp:
    """An intermediate tensor of a rule that maps one ATen call onto several synth operators."""

    id: int
    shape: tuple[int, ...]


class Mapper:
    """One trace's walk over the exported graph; `search.aten_table`'s rules call its methods."""

    def __init__(self, task: Task, exported, model: torch.nn.Module, opaque: bool) -> None:
        self.task, self.ep, self.model, self.opaque = task, exported, model, opaque
        self.state_keys = set(model.state_dict())
        self.g = Graph()
        self.env: dict[str, int] = {}  # fx node name -> IR node id
        self.weights: dict[str, str] = {}  # fx placeholder name -> state_dict key or attribute path
        self.scalars: dict[str, float] = {}  # fx node name -> value of a one-element constant tensor
        # fx node name of a call returning several tensors -> {index: rule emitting that getitem}
        self.tuples: dict[str, dict] = {}
        self.state: dict[int, dict[str, str]] = {}
        self.dtypes: dict[int, str] = {}
        self.fx_names: dict[int, str] = {}
        self.constants: set[int] = set()
        self.fused, self.absorbed = fused_patterns(exported.graph)

    # what rules use -------------------------------------------------------------------------------------
    def fail(self, node, why: str):
        where = ""
        trace_ = node.meta.get("stack_trace") if hasattr(node, "meta") else None
        if trace_:
            lines = [ln.strip() for ln in trace_.strip().splitlines() if ln.strip()]
            if lines:
                where = f" at `{lines[-1][:120]}`"
        target = getattr(node.target, "__name__", str(node.target))
        raise UnsupportedConstruct(f"{self.task.id}: {target}{where}: {why}")

    def require(self, node, ok: bool, why: str) -> None:
        if not ok:
            self.fail(node, why)

    def shape(self, node) -> tuple[int, ...]:
        if isinstance(node, Temp):
            return node.shape
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor):
            self.fail(node, "produces a non-tensor value")
        return tuple(int(s) for s in val.shape)

    def dtype(self, node) -> str:
        return str(node.meta["val"].dtype).replace("torch.", "")

    def scalar(self, value) -> float | None:
        """A Python number or a one-element constant tensor as a float; None for a computed tensor."""
        if _is_scalar(value):
            return float(value)
        return self.scalars.get(getattr(value, "name", None))

    def key(self, node, arg) -> str | None:
        """The state_dict key of a weight operand (None for None); fails for a computed tensor."""
        if arg is None:
            return None
        if not hasattr(arg, "name") or arg.name not in self.weights:
            self.fail(node, f"its weight `{arg}` is computed in forward, not a parameter of the Model")
        return self.weights[arg.name]

    def tensor(self, node, arg, any_dtype: bool = False) -> int:
        """IR id of a tensor operand, making a `parameter` leaf for a weight used directly. Synth operators
        read float32 weights only; an opaque call (`any_dtype`) reads any (an int64 index buffer)."""
        if isinstance(arg, Temp):
            return arg.id
        if not hasattr(arg, "name"):
            self.fail(node, f"operand {arg!r} is not a tensor")
        if arg.name in self.weights:
            if self.dtype(arg) != "float32" and not any_dtype:
                self.fail(
                    node,
                    f"weight {self.weights[arg.name]} has dtype {self.dtype(arg)} (fragments carry "
                    "float32 weights only)",
                )
            if arg.name not in self.env:
                n = self.g.parameter(self.shape(arg))
                self.state[n] = {"": self.weights[arg.name]}
                if self.weights[arg.name] not in self.state_keys:
                    self.constants.add(n)
                self.dtypes[n] = self.dtype(arg)
                self.env[arg.name] = n
        if arg.name in self.env:
            return self.env[arg.name]
        self.fail(node, f"operand {arg.name} is not produced by a mapped operator")

    def emit(self, node, op: str, inputs: list, state: dict | None = None, **params) -> None:
        """Add synth operator `op` for `node`, after checking its shape rule gives the traced shape."""
        ids = self._checked(node, op, inputs, self.shape(node), params)
        self._add(node, op, ids, state, params)

    def temp(self, node, op: str, inputs: list, shape: tuple[int, ...], **params) -> Temp:
        """An intermediate synth operator of `node`'s rule, making `shape` (same dtype as `node`)."""
        ids = self._checked(node, op, inputs, tuple(shape), params)
        n = self.g.add(op, ids, shape=shape, **params)
        self.dtypes[n] = self.dtype(node)
        return Temp(n, tuple(shape))

    def _checked(self, node, op: str, inputs: list, shape: tuple[int, ...], params: dict) -> list[int]:
        if op not in REGISTRY:
            self.fail(node, f"synth has no operator {op!r}")
        ids = [self.tensor(node, a) for a in inputs]
        try:
            inferred = REGISTRY[op].infer([self.g.shape(t) for t in ids], params)
        except Exception as e:  # noqa: BLE001 - any shape-rule error means the mapping does not fit
            self.fail(node, f"mapped to {op} but its shape rule rejects it ({e})")
        if tuple(inferred) != shape:
            self.fail(node, f"mapped to {op} but it would make shape {inferred}, not {shape}")
        return ids

    def _add(self, node, op: str, ids: list[int], state: dict | None, params: dict) -> None:
        n = self.g.add(op, ids, shape=self.shape(node), **params)
        if state:
            self.state[n] = {k: v for k, v in state.items() if v is not None}
        self.dtypes[n] = self.dtype(node)
        self.fx_names[n] = node.name
        self.env[node.name] = n

    def alias(self, node, arg) -> None:
        """`node` is `arg` (a copy or a view that changes nothing)."""
        if getattr(arg, "name", None) in self.scalars:
            self.scalars[node.name] = self.scalars[arg.name]
        else:
            self.env[node.name] = self.tensor(node, arg)

    def reshape(self, node, x) -> None:
        """A view or reshape to `node`'s shape: flatten of trailing dims, a split of one dim, or `reshape`."""
        src, dst = self.shape(x), self.shape(node)
        if src == dst:
            self.alias(node, x)
            return
        for k in range(len(src)):
            if dst == src[:k] + (math.prod(src[k:]),):
                self.emit(node, "flatten", [x], start_dim=k)
                return
        for d in range(len(src)):
            if len(dst) == len(src) + 1 and dst[:d] == src[:d] and dst[d + 2 :] == src[d + 1 :]:
                self.emit(node, "unflatten", [x], dim=d, sizes=[dst[d], dst[d + 1]])
                return
        self.emit(node, "reshape", [x], sizes=list(dst))

    def tuple_result(self, node, rules: dict) -> None:
        """`node` returns several tensors; `rules[i](getitem_node)` emits element i (others stay PyTorch)."""
        self.tuples[node.name] = rules

    # the walk -------------------------------------------------------------------------------------------
    def run(self) -> Program:
        sig = self.ep.graph_signature
        kinds = {spec.arg.name: (spec.kind.name, spec.target) for spec in sig.input_specs}
        arg_names, inputs, signature = [], [], []
        for node in self.ep.graph.nodes:
            if node.op == "placeholder":
                self.placeholder(
                    node, *kinds.get(node.name, ("USER_INPUT", None)), arg_names, inputs, signature
                )
            elif node.op == "call_function":
                self.call(node)
            elif node.op == "output":
                outs = []
                user = [s.arg.name for s in sig.output_specs if s.kind.name == "USER_OUTPUT"]
                for name in user:
                    if name not in self.env or self.g.op(self.env[name]).kind == "creation":
                        raise UnsupportedConstruct(
                            f"{self.task.id}: forward returns `{name}`, which is not "
                            "computed by an operator (an input or a weight)"
                        )
                    outs.append(self.env[name])
                self.g.outputs = outs
        ops = [n for n in self.g.nodes() if self.g.op(n).kind != "creation"]
        if not ops:
            raise UnsupportedConstruct(f"{self.task.id}: forward computes nothing the IR can see")
        return Program(
            self.task,
            self.g,
            arg_names,
            inputs,
            ops,
            self.state,
            self.dtypes,
            self.fx_names,
            signature,
            self.constants,
        )

    def placeholder(self, node, kind, target, arg_names, inputs, signature) -> None:
        if kind in ("PARAMETER", "BUFFER"):
            self.weights[node.name] = target
        elif kind == "CONSTANT_TENSOR":
            value = self.ep.constants.get(target)
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                self.scalars[node.name] = float(value.item())
            elif _has_attr(self.model, target):
                self.weights[node.name] = target
            else:
                self.fail(
                    node,
                    f"forward builds a constant tensor of shape {tuple(value.shape)} (only "
                    "one-element constants, or tensors the Model holds, can be carried)",
                )
        elif kind == "USER_INPUT":
            signature.append(node.name)
            if isinstance(node.meta.get("val"), torch.Tensor):
                n = self.g.input(self.shape(node))
                self.env[node.name] = n
                self.dtypes[n] = self.dtype(node)
                arg_names.append(node.name)
                inputs.append(n)
        else:
            self.fail(
                node,
                f"the Model holds a {kind.lower().replace('_', ' ')} ({target}); only "
                "parameters, buffers and constant tensors can be carried into fragments",
            )

    def call(self, node) -> None:
        if not node.users:
            return  # a value nothing reads (export keeps unused getitems; in-place results are rewired)
        target = node.target
        if target is operator.getitem:
            self.getitem(node)
            return
        if not isinstance(target, torch._ops.OpOverload):
            self.fail(node, "is not an ATen operator (a Python-level call the IR cannot express)")
        name = target._schema.name.split("::")[-1]
        if name.startswith(("_assert", "sym_")) or node.name in self.absorbed:
            return
        if node.name in self.fused:
            op, x, params = self.fused[node.name]
            self.emit(node, op, [x], **params)
            return
        inplace = (
            name.endswith("_") and not name.startswith("_") and node.args and hasattr(node.args[0], "name")
        )
        if self.fold(node):
            return
        rule = ATEN.get(name[:-1] if inplace else name)
        mark = len(self.g)
        try:
            if rule is None:
                self.fail(node, f"ATen op {target} has no synth operator mapping")
            try:
                rule(self, node, _bind(node))
            except UnsupportedConstruct:
                raise
            except (KeyError, TypeError, ValueError) as e:  # an overload whose arguments the rule cannot read
                self.fail(node, f"its table rule cannot read this overload ({type(e).__name__}: {e})")
        except UnsupportedConstruct:
            if not self.opaque:
                raise
            self.rollback(mark)
            self.opaque_call(node)
        if inplace and node.name in self.env:
            self.env[node.args[0].name] = self.env[
                node.name
            ]  # later reads of the mutated tensor see the result

    def fold(self, node) -> bool:
        """Compute a call whose tensor operands are all one-element constants now, as a constant
        (`torch.log(torch.tensor(100.))`); False when it reads anything else."""
        operands = [a for a in [*node.args, *node.kwargs.values()] if isinstance(a, torch.fx.Node)]
        if not operands or any(a.name not in self.scalars for a in operands):
            return False

        def constant(a):
            return torch.tensor(self.scalars[a.name]) if isinstance(a, torch.fx.Node) else a

        try:
            value = node.target(*map(constant, node.args), **{k: constant(v) for k, v in node.kwargs.items()})
        except (RuntimeError, TypeError):  # e.g. a device= argument: left to the table
            return False
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            return False
        self.scalars[node.name] = float(value.item())
        return True

    def rollback(self, mark: int) -> None:
        """Drop the IR nodes a failed rule added (ids >= mark), so none is left without a consumer."""
        dropped = set(range(mark, len(self.g)))
        self.g.g.remove_nodes_from(dropped)
        self.env = {k: v for k, v in self.env.items() if v not in dropped}
        for table in (self.state, self.dtypes, self.fx_names):
            for n in dropped:
                table.pop(n, None)
        self.constants -= dropped

    def getitem(self, node) -> None:
        src, index = node.args
        rules = self.tuples.get(getattr(src, "name", None))
        if rules is None:
            self.fail(node, f"indexes `{src}`, which is not an operator returning several tensors")
        mark = len(self.g)
        try:
            if index not in rules:
                self.fail(node, f"element {index} of {src.target} has no synth operator mapping")
            rules[index](node)
        except UnsupportedConstruct:
            if not self.opaque:
                raise
            self.rollback(mark)
            self.opaque_call(src, index, node)

    def opaque_call(self, node, index: int | None = None, result=None) -> None:
        """Keep ATen call `node` (element `index` of its result, the value of fx node `result`) as PyTorch."""
        result = node if result is None else result
        if index is None and isinstance(node.meta.get("val"), (tuple, list)):
            self.tuples[node.name] = {}  # each element read becomes its own opaque node (see getitem)
            return
        inputs: list[int] = []
        parts = [self._source(node, v, inputs) for v in node.args]
        parts += [f"{k}={self._source(node, v, inputs)}" for k, v in node.kwargs.items()]
        args = ", ".join(parts)
        if "{device}" in args:
            if not inputs and not self.g.data_inputs():
                self.fail(node, "places a new tensor on a device without any tensor to take the device from")
            if not inputs:
                inputs.append(self.g.data_inputs()[0])
            args = args.replace("{device}", "{0}.device")
        shape = self.shape(result)
        params = {"call": str(node.target), "args": args, "index": index, "out": list(shape)}
        self._add(result, "aten", inputs, None, params)

    def _source(self, node, value, inputs: list[int]) -> str:
        """Python source for one argument of an opaque call; tensors become `{slot}` of `inputs`."""
        if isinstance(value, torch.fx.Node):
            if value.name in self.scalars:
                self.fail(node, "an opaque call reads a one-element constant tensor")
            t = self.tensor(node, value, any_dtype=True)
            if t not in inputs:
                inputs.append(t)
            return f"{{{inputs.index(t)}}}"
        if isinstance(value, (list, tuple)):
            return f"[{', '.join(self._source(node, v, inputs) for v in value)}]"
        if isinstance(value, torch.device):
            return "{device}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"float('{value}')"
        if isinstance(value, (bool, int, float, str)) or value is None:
            return repr(value).replace("{", "{{").replace("}", "}}")
        if isinstance(value, (torch.dtype, torch.memory_format, torch.layout)):
            return str(value)
        self.fail(node, f"an opaque call has an argument of type {type(value).__name__}")
