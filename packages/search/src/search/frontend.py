"""The program frontend: any Task's `Model` as a flat, ordered graph in synth's operator IR.

    from search.frontend import trace
    program = trace(task)                     # UnsupportedConstruct names what it cannot map
    program.op_names                          # ['conv2d', 'add', 'relu']
    fragment = program.fragment(0, 2)         # ops [0, 2) as a standalone Task (see search.fragments)

The Model is exported with `torch.export` (ATen ops, shapes made concrete from `get_inputs()`), then each
ATen call is mapped to a registered synth operator (`synth.ops`): modules whose weights live in the
Model (linear, conv, norms) become module operators that remember which of the Model's state_dict keys
they read, other weights become `parameter` leaves, scalar operands become parameters of the operator
(`x * 0.5` is `scale`), and copies/views that change nothing are dropped. Anything else raises
`UnsupportedConstruct` naming the ATen op and the source line.
"""

from __future__ import annotations

import math
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from synth.ir import Graph
from synth.ops import REGISTRY
from verify.inputs import load_module, seed_everything
from verify.task import Task, TaskError

# torch.export keeps global tracing state, and CPython 3.11's AST constructor is not thread-safe: tracing,
# fragment printing and assembly take this lock, so concurrent searches (bench's tasks_in_flight) are safe
TRACE_LOCK = threading.RLock()


class UnsupportedConstruct(ValueError):
    """The program uses something the operator IR cannot express; the message names it."""


@dataclass
class Program:
    """A task traced into the IR. Operator i of the search is compute node `ops[i]` of `graph`."""

    task: Task
    graph: Graph
    # forward argument names, in order, and the IR input node of each
    arg_names: list[str]
    inputs: list[int]
    # compute nodes in topological order (the search's operators)
    ops: list[int]
    # per IR node: {state suffix ("" for a parameter leaf, "weight", ...) -> key in Model.state_dict()}
    state: dict[int, dict[str, str]]
    # per IR node: dtype of the tensor it makes ("float32", "float16", ...)
    dtypes: dict[int, str]
    # per IR node: name of the ATen node it came from (for tests and error messages)
    fx_names: dict[int, str] = field(default_factory=dict)

    @property
    def op_names(self) -> list[str]:
        return [self.graph.op_name(n) for n in self.ops]

    def __len__(self) -> int:
        return len(self.ops)

    def fragment(self, start: int, stop: int):
        """Operators [start, stop) as a standalone Task with its wiring (see `search.fragments`)."""
        from search.fragments import make_fragment

        return make_fragment(self, start, stop)


def load_task_module(task: Task, name: str = "_search_task"):
    """Import a task's code as a module (the reference program is trusted code)."""
    tmp = Path(tempfile.mkdtemp(prefix="search_task_"))
    path = tmp / f"{name}.py"
    path.write_text(task.code)
    return load_module(path, f"{name}_{abs(hash(task.digest)) % 10**8}")


def trace(task: Task, seed: int = 0) -> Program:
    """Export `task`'s Model and map it into the IR.

    Raises UnsupportedConstruct for what the IR cannot express, TaskError for a task that does not run.
    """
    with TRACE_LOCK:
        return _trace(task, seed)


def _trace(task: Task, seed: int) -> Program:
    try:
        module = load_task_module(task)
        seed_everything(seed)
        model = module.Model(*module.get_init_inputs())
        inputs = module.get_inputs()
    except Exception as e:
        raise TaskError(f"task {task.id} does not run: {type(e).__name__}: {e}"[:400]) from None
    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor):
            raise UnsupportedConstruct(
                f"{task.id}: forward argument {i} is a {type(x).__name__}, not a tensor "
                "(only tensor arguments can become fragment inputs)"
            )
    try:
        exported = torch.export.export(model, tuple(inputs))
    except Exception as e:  # export errors are many and deep; the first line says what broke
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsupportedConstruct(
            f"{task.id}: torch.export could not capture the Model: {first[:300]}"
        ) from None
    return _Mapper(task, exported, set(model.state_dict())).run()


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


def _one(values):
    """A list of equal ints as one int (how nn modules print them), else a tuple."""
    values = list(values)
    return values[0] if len(set(values)) == 1 else tuple(values)


def _dims(dim):
    dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    return dims[0] if len(dims) == 1 else dims


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_UNARY = {
    "relu": "relu",
    "relu6": "relu6",
    "selu": "selu",
    "silu": "silu",
    "mish": "mish",
    "hardswish": "hardswish",
    "hardsigmoid": "hardsigmoid",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "abs": "abs",
    "erf": "erf",
    "log_sigmoid": "logsigmoid",
}
_BINARY = {"maximum": "maximum", "minimum": "minimum", "matmul": "matmul", "mm": "mm", "bmm": "bmm"}
_REDUCE = {"sum": "sum", "mean": "mean", "amax": "amax", "amin": "amin", "logsumexp": "logsumexp"}
# copies and no-op views: the value passes through unchanged
_ALIAS = {"clone", "contiguous", "alias", "detach", "lift_fresh_copy", "_to_copy_same"}


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
            if (c == 1 and hasattr(a, "target") and a.target is aten.abs.default and a.args[0] is x
                    and _only_user(a, den)):
                fused[n.name] = ("softsign", x, {})
                absorbed |= {a.name, den.name}
        elif den.target is aten.expand_as.default and den.args[1] is x:
            clamp = den.args[0]
            norm = clamp.args[0] if getattr(clamp, "target", None) is aten.clamp_min.default else None
            if (norm is not None and _only_user(clamp, den) and clamp.args[1] == 1e-12 and _only_user(norm, clamp)
                    and norm.target is aten.linalg_vector_norm.default and norm.args[0] is x
                    and norm.args[1] == 2 and len(norm.args) > 3 and norm.args[3] and len(norm.args[2]) == 1
                    and norm.kwargs.get("dtype") is None):
                fused[n.name] = ("normalize", x, {"dim": int(norm.args[2][0])})
                absorbed |= {norm.name, clamp.name, den.name}
    return fused, absorbed


class _Mapper:
    def __init__(self, task: Task, exported, state_keys: set[str]) -> None:
        self.task, self.ep, self.state_keys = task, exported, state_keys
        self.g = Graph()
        self.env: dict[str, int] = {}  # fx node name -> IR node id
        self.weights: dict[str, str] = {}  # fx placeholder name -> state_dict key (parameters, buffers)
        self.state: dict[int, dict[str, str]] = {}
        self.dtypes: dict[int, str] = {}
        self.fx_names: dict[int, str] = {}
        self.fused, self.absorbed = fused_patterns(exported.graph)

    # helpers --------------------------------------------------------------------------------------------
    def fail(self, node, why: str):
        where = ""
        trace_ = node.meta.get("stack_trace") if hasattr(node, "meta") else None
        if trace_:
            lines = [ln.strip() for ln in trace_.strip().splitlines() if ln.strip()]
            if lines:
                where = f" at `{lines[-1][:120]}`"
        target = getattr(node.target, "__name__", str(node.target))
        raise UnsupportedConstruct(f"{self.task.id}: {target}{where}: {why}")

    def shape(self, node) -> tuple[int, ...]:
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor):
            self.fail(node, "produces a non-tensor value")
        return tuple(int(s) for s in val.shape)

    def dtype(self, node) -> str:
        return str(node.meta["val"].dtype).replace("torch.", "")

    def key(self, node, arg) -> str | None:
        """The state_dict key of a weight operand (None for None); fails for a computed tensor."""
        if arg is None:
            return None
        if not hasattr(arg, "name") or arg.name not in self.weights:
            self.fail(node, f"its weight `{arg}` is computed in forward, not a parameter of the Model")
        return self.weights[arg.name]

    def tensor(self, node, arg) -> int:
        """IR id of a tensor operand, making a `parameter` leaf for a weight used directly."""
        if not hasattr(arg, "name"):
            self.fail(node, f"operand {arg!r} is not a tensor")
        if arg.name in self.env:
            return self.env[arg.name]
        if arg.name in self.weights:
            if self.dtype(arg) != "float32":
                self.fail(
                    node,
                    f"weight {self.weights[arg.name]} has dtype {self.dtype(arg)} (fragments carry "
                    "float32 weights only)",
                )
            n = self.g.parameter(self.shape(arg))
            self.state[n] = {"": self.weights[arg.name]}
            self.dtypes[n] = "float32"
            self.env[arg.name] = n
            return n
        self.fail(node, f"operand {arg.name} is not produced by a mapped operator")

    def emit(self, node, op: str, inputs: list, state: dict | None = None, **params) -> None:
        if op not in REGISTRY:
            self.fail(node, f"synth has no operator {op!r}")
        ids = [self.tensor(node, a) for a in inputs]
        n = self.g.add(op, ids, shape=self.shape(node), **params)
        try:
            inferred = self.g.op(n).infer([self.g.shape(t) for t in ids], self.g.params(n))
        except Exception as e:
            self.fail(node, f"mapped to {op} but its shape rule rejects it ({e})")
        if tuple(inferred) != self.shape(node):
            self.fail(node, f"mapped to {op} but it would make shape {inferred}, not {self.shape(node)}")
        if state:
            self.state[n] = {k: v for k, v in state.items() if v is not None}
        self.dtypes[n] = self.dtype(node)
        self.fx_names[n] = node.name
        self.env[node.name] = n

    # the walk -------------------------------------------------------------------------------------------
    def run(self) -> Program:
        sig = self.ep.graph_signature
        kinds = {}
        for spec in sig.input_specs:
            kinds[spec.arg.name] = (spec.kind.name, spec.target)
        arg_names, inputs = [], []
        for node in self.ep.graph.nodes:
            if node.op == "placeholder":
                kind, target = kinds.get(node.name, ("USER_INPUT", None))
                if kind in ("PARAMETER", "BUFFER"):
                    self.weights[node.name] = target
                elif kind == "USER_INPUT":
                    n = self.g.input(self.shape(node))
                    self.env[node.name] = n
                    self.dtypes[n] = self.dtype(node)
                    arg_names.append(node.name)
                    inputs.append(n)
                else:
                    self.fail(
                        node,
                        f"the Model holds a {kind.lower().replace('_', ' ')} ({target}); only "
                        "parameters and buffers can be carried into fragments",
                    )
            elif node.op == "call_function":
                self.call(node)
            elif node.op == "output":
                outs = []
                user = [s.arg.name for s in sig.output_specs if s.kind.name == "USER_OUTPUT"]
                for name in user:
                    if name not in self.env or self.g.op(self.env[name]).kind != "compute":
                        raise UnsupportedConstruct(
                            f"{self.task.id}: forward returns `{name}`, which is not "
                            "computed by an operator (an input or a weight)"
                        )
                    outs.append(self.env[name])
                self.g.outputs = outs
        ops = self.g.compute_nodes()
        if not ops:
            raise UnsupportedConstruct(f"{self.task.id}: forward computes nothing the IR can see")
        return Program(self.task, self.g, arg_names, inputs, ops, self.state, self.dtypes, self.fx_names)

    def call(self, node) -> None:
        target = node.target
        if not isinstance(target, torch._ops.OpOverload):
            self.fail(node, "is not an ATen operator (a Python-level call the IR cannot express)")
        name = target._schema.name.split("::")[-1]
        b = _bind(node)
        if name == "_assert_tensor_metadata" or name.startswith("sym_") or node.name in self.absorbed:
            return
        if node.name in self.fused:
            op, x, params = self.fused[node.name]
            self.emit(node, op, [x], **params)
            return
        if name.endswith("_") and getattr(node.args[0], "name", None) in self.weights:
            return  # in-place bookkeeping on a buffer (BatchNorm's num_batches_tracked)
        if name in _ALIAS:
            self.env[node.name] = self.tensor(node, node.args[0])
            return
        handler = getattr(self, f"op_{name}", None)
        if handler is not None:
            handler(node, b)
        elif name in _UNARY:
            self.emit(node, _UNARY[name], [b["self"]])
        elif name in _BINARY:
            self.emit(node, _BINARY[name], [b["self"], b["other"] if "other" in b else b["mat2"]])
        elif name in _REDUCE:
            if b.get("dtype") is not None:
                self.fail(node, "reduction with a dtype= cast")
            self.emit(node, _REDUCE[name], [b["self"]], dim=_dims(b["dim"]), keepdim=bool(b["keepdim"]))
        else:
            self.fail(node, f"ATen op {target} has no synth operator mapping")

    # modules with weights -------------------------------------------------------------------------------
    def op_linear(self, node, b):
        w = b["weight"]
        out_f, in_f = self.shape(w)
        self.emit(
            node,
            "linear",
            [b["input"]],
            {"weight": self.key(node, w), "bias": self.key(node, b["bias"])},
            in_features=in_f,
            out_features=out_f,
            bias=b["bias"] is not None,
        )

    def _conv(self, node, b, d, transposed):
        w = b["weight"]
        if isinstance(b["padding"], str):
            self.fail(node, f"padding={b['padding']!r} (only explicit integer padding is supported)")
        ws = self.shape(w)
        groups = int(b["groups"])
        cin = self.shape(b["input"])[1]
        cout = ws[1] * groups if transposed else ws[0]
        params = dict(
            in_channels=cin,
            out_channels=cout,
            kernel_size=_one(ws[2:]),
            stride=_one(_per(b["stride"], d)),
            padding=_one(_per(b["padding"], d)),
            dilation=_one(_per(b["dilation"], d)),
            groups=groups,
            bias=b["bias"] is not None,
        )
        if transposed:
            params["output_padding"] = _one(_per(b["output_padding"], d))
        op = f"conv_transpose{d}d" if transposed else f"conv{d}d"
        self.emit(
            node, op, [b["input"]], {"weight": self.key(node, w), "bias": self.key(node, b["bias"])}, **params
        )

    def op_conv1d(self, node, b):
        self._conv(node, b, 1, False)

    def op_conv2d(self, node, b):
        self._conv(node, b, 2, False)

    def op_conv3d(self, node, b):
        self._conv(node, b, 3, False)

    def op_conv_transpose1d(self, node, b):
        self._conv(node, b, 1, True)

    def op_conv_transpose2d(self, node, b):
        self._conv(node, b, 2, True)

    def op_conv_transpose3d(self, node, b):
        self._conv(node, b, 3, True)

    def _require(self, node, ok: bool, why: str):
        if not ok:
            self.fail(node, why)

    def op_batch_norm(self, node, b):
        x = self.shape(b["input"])
        self._require(
            node,
            all(b[k] is not None for k in ("weight", "bias", "running_mean", "running_var")),
            "batch norm without affine weights or running stats",
        )
        self._require(
            node,
            math.isclose(b["eps"], 1e-5) and math.isclose(b["momentum"], 0.1),
            f"batch norm with eps={b['eps']}, momentum={b['momentum']} (IR norms use the defaults)",
        )
        self._require(
            node, bool(b["training"]), "batch norm in eval mode (the IR's BatchNorm runs in training mode)"
        )
        d = {2: 1, 3: 1, 4: 2, 5: 3}.get(len(x))
        rm = self.key(node, b["running_mean"])
        prefix = rm.rsplit(".", 1)[0] + "." if "." in rm else ""
        state = {
            "weight": self.key(node, b["weight"]),
            "bias": self.key(node, b["bias"]),
            "running_mean": rm,
            "running_var": self.key(node, b["running_var"]),
        }
        if prefix + "num_batches_tracked" in self.state_keys:
            state["num_batches_tracked"] = prefix + "num_batches_tracked"
        self.emit(node, f"batch_norm{d}d", [b["input"]], state, features=x[1])

    def op_group_norm(self, node, b):
        self._require(
            node, b["weight"] is not None and b["bias"] is not None, "group norm without affine weights"
        )
        self._require(node, math.isclose(b["eps"], 1e-5), f"group norm with eps={b['eps']} (IR uses 1e-5)")
        self.emit(
            node,
            "group_norm",
            [b["input"]],
            {"weight": self.key(node, b["weight"]), "bias": self.key(node, b["bias"])},
            groups=int(b["num_groups"]),
            features=self.shape(b["input"])[1],
        )

    def op_instance_norm(self, node, b):
        x = self.shape(b["input"])
        self._require(
            node,
            all(b[k] is None for k in ("weight", "bias", "running_mean", "running_var"))
            and b["use_input_stats"],
            "instance norm with affine weights or running stats",
        )
        self._require(node, math.isclose(b["eps"], 1e-5), f"instance norm with eps={b['eps']} (IR uses 1e-5)")
        self.emit(node, f"instance_norm{len(x) - 2}d", [b["input"]], features=x[1])

    def op_layer_norm(self, node, b):
        x = self.shape(b["input"])
        self._require(node, list(b["normalized_shape"]) == [x[-1]], "layer norm over more than the last dim")
        self._require(
            node, b["weight"] is not None and b["bias"] is not None, "layer norm without affine weights"
        )
        self._require(node, math.isclose(b["eps"], 1e-5), f"layer norm with eps={b['eps']} (IR uses 1e-5)")
        self.emit(
            node,
            "layer_norm",
            [b["input"]],
            {"weight": self.key(node, b["weight"]), "bias": self.key(node, b["bias"])},
            features=x[-1],
        )

    def op_rms_norm(self, node, b):
        x = self.shape(b["input"])
        self._require(node, list(b["normalized_shape"]) == [x[-1]], "RMS norm over more than the last dim")
        self._require(
            node,
            b["weight"] is not None and b["eps"] is None,
            "RMS norm without a weight or with an explicit eps (IR uses nn.RMSNorm defaults)",
        )
        self.emit(node, "rms_norm", [b["input"]], {"weight": self.key(node, b["weight"])}, features=x[-1])

    # pooling --------------------------------------------------------------------------------------------
    def _pool(self, node, b, kind, d):
        self._require(node, not b.get("ceil_mode"), "pooling with ceil_mode=True")
        self._require(node, _one(_per(b.get("dilation", 1), d)) == 1, "pooling with dilation")
        if kind == "avg":
            self._require(
                node,
                b.get("count_include_pad", True) and b.get("divisor_override") is None,
                "avg pooling with count_include_pad=False or divisor_override",
            )
        k = _one(_per(b["kernel_size"], d))
        stride = _one(_per(b["stride"], d)) if b["stride"] else k
        self.emit(
            node,
            f"{kind}_pool{d}d",
            [b["self"]],
            kernel_size=k,
            stride=stride,
            padding=_one(_per(b["padding"], d)),
        )

    def op_max_pool1d(self, node, b):
        self._pool(node, b, "max", 1)

    def op_max_pool2d(self, node, b):
        self._pool(node, b, "max", 2)

    def op_max_pool3d(self, node, b):
        self._pool(node, b, "max", 3)

    def op_avg_pool1d(self, node, b):
        self._pool(node, b, "avg", 1)

    def op_avg_pool2d(self, node, b):
        self._pool(node, b, "avg", 2)

    def op_avg_pool3d(self, node, b):
        self._pool(node, b, "avg", 3)

    def _adaptive(self, node, b, d):
        self.emit(node, f"adaptive_avg_pool{d}d", [b["self"]], output_size=_one(_per(b["output_size"], d)))

    def op_adaptive_avg_pool1d(self, node, b):
        self._adaptive(node, b, 1)

    def op_adaptive_avg_pool2d(self, node, b):
        self._adaptive(node, b, 2)

    def op_adaptive_avg_pool3d(self, node, b):
        self._adaptive(node, b, 3)

    # activations with parameters -------------------------------------------------------------------------
    def op_dropout(self, node, b):
        self._require(
            node, not b["train"] or b["p"] == 0, f"dropout with p={b['p']} in training mode (random)"
        )
        self.emit(node, "dropout", [b["input"]], p=float(b["p"]))

    def op_gelu(self, node, b):
        self.emit(node, "gelu_tanh" if b["approximate"] == "tanh" else "gelu", [b["self"]])

    def op_leaky_relu(self, node, b):
        self.emit(node, "leaky_relu", [b["self"]], negative_slope=float(b["negative_slope"]))

    def op_elu(self, node, b):
        self._require(node, b["scale"] == 1 and b["input_scale"] == 1, "elu with scale or input_scale")
        self.emit(node, "elu", [b["self"]], alpha=float(b["alpha"]))

    def op_celu(self, node, b):
        self.emit(node, "celu", [b["self"]], alpha=float(b["alpha"]))

    def op_hardtanh(self, node, b):
        lo, hi = float(b["min_val"]), float(b["max_val"])
        if (lo, hi) == (0.0, 6.0):
            self.emit(node, "relu6", [b["self"]])
        else:
            self.emit(node, "hardtanh", [b["self"]], min_val=lo, max_val=hi)

    def op_softplus(self, node, b):
        self._require(node, b["threshold"] == 20, "softplus with a threshold other than 20")
        self.emit(node, "softplus", [b["self"]], beta=float(b["beta"]))

    def op_hardshrink(self, node, b):
        self.emit(node, "hardshrink", [b["self"]], lambd=float(b["lambd"]))

    def op_softshrink(self, node, b):
        self.emit(node, "softshrink", [b["self"]], lambd=float(b["lambd"]))

    def op_clamp(self, node, b):
        lo, hi = b["min"], b["max"]
        self._require(node, all(v is None or _is_scalar(v) for v in (lo, hi)), "clamp with tensor bounds")
        self.emit(
            node,
            "clamp",
            [b["self"]],
            min=None if lo is None else float(lo),
            max=None if hi is None else float(hi),
        )

    def op_clamp_min(self, node, b):
        self._require(node, _is_scalar(b["min"]), "clamp_min with a tensor bound")
        self.emit(node, "clamp", [b["self"]], min=float(b["min"]), max=None)

    def op_clamp_max(self, node, b):
        self._require(node, _is_scalar(b["max"]), "clamp_max with a tensor bound")
        self.emit(node, "clamp", [b["self"]], min=None, max=float(b["max"]))

    # arithmetic -----------------------------------------------------------------------------------------
    def _arith(self, node, b, op, scalar_op, scalar_fn):
        a, other = b["self"], b["other"]
        if b.get("alpha", 1) != 1:
            self.fail(node, f"{op} with alpha={b['alpha']}")
        if _is_scalar(a):
            self.fail(node, f"{op} with a scalar first operand")
        if _is_scalar(other):
            if scalar_op is None:
                self.fail(node, f"{op} by a scalar")
            self.emit(node, scalar_op[0], [a], **{scalar_op[1]: scalar_fn(float(other))})
        else:
            self.emit(node, op, [a, other])

    def op_add(self, node, b):
        self._arith(node, b, "add", ("shift", "value"), lambda v: v)

    def op_sub(self, node, b):
        self._arith(node, b, "sub", ("shift", "value"), lambda v: -v)

    def op_mul(self, node, b):
        self._arith(node, b, "mul", ("scale", "factor"), lambda v: v)

    def op_div(self, node, b):
        if b.get("rounding_mode") is not None:
            self.fail(node, f"division with rounding_mode={b['rounding_mode']!r}")
        if not _is_scalar(b["other"]):
            self.fail(node, "division by a tensor (synth has no div operator)")
        self._arith(node, {**b, "alpha": 1}, "div", ("scale", "factor"), lambda v: 1.0 / v)

    def op_pow(self, node, b):
        if b.get("exponent") != 2 or not hasattr(b["self"], "name"):
            self.fail(node, f"power {b.get('exponent')!r} (only x ** 2, as x * x, is expressible)")
        self.emit(node, "mul", [b["self"], b["self"]])

    # softmax, norms, scans ------------------------------------------------------------------------------
    def op_softmax(self, node, b):
        self._require(
            node, b.get("dtype") is None and not b.get("half_to_float"), "softmax with a dtype cast"
        )
        self.emit(node, "softmax", [b["self"]], dim=int(b["dim"]))

    def op_log_softmax(self, node, b):
        self._require(
            node, b.get("dtype") is None and not b.get("half_to_float"), "log_softmax with a dtype cast"
        )
        self.emit(node, "log_softmax", [b["self"]], dim=int(b["dim"]))

    def op_std(self, node, b):
        corr = b.get("correction")
        self._require(node, corr is None or corr == 1, f"std with correction={corr}")
        self.emit(node, "std", [b["self"]], dim=_dims(b["dim"]), keepdim=bool(b["keepdim"]))

    def op_linalg_vector_norm(self, node, b):
        self._require(node, b["ord"] == 2 and b.get("dtype") is None, f"vector norm of order {b['ord']}")
        self.emit(node, "norm", [b["self"]], dim=_dims(b["dim"]), keepdim=bool(b["keepdim"]))

    def op_cumsum(self, node, b):
        self._require(node, b.get("dtype") is None, "cumsum with a dtype cast")
        self.emit(node, "cumsum", [b["self"]], dim=int(b["dim"]))

    # layout ---------------------------------------------------------------------------------------------
    def op_flatten(self, node, b):
        rank = len(self.shape(b["self"]))
        start, end = int(b["start_dim"]) % max(rank, 1), int(b["end_dim"]) % max(rank, 1)
        self._require(node, end == rank - 1, "flatten that stops before the last dim")
        self.emit(node, "flatten", [b["self"]], start_dim=start)

    def op_view(self, node, b):
        self._reshape(node, b["self"])

    def op_reshape(self, node, b):
        self._reshape(node, b["self"])

    def op__unsafe_view(self, node, b):
        self._reshape(node, b["self"])

    def _reshape(self, node, x):
        src, dst = self.shape(x), self.shape(node)
        if src == dst:
            self.env[node.name] = self.tensor(node, x)
            return
        for k in range(len(src)):
            if dst == src[:k] + (math.prod(src[k:]),):
                self.emit(node, "flatten", [x], start_dim=k)
                return
        for d in range(len(src)):
            if len(dst) == len(src) + 1 and dst[:d] == src[:d] and dst[d + 2 :] == src[d + 1 :]:
                self.emit(node, "unflatten", [x], dim=d, sizes=[dst[d], dst[d + 1]])
                return
        self.fail(
            node, f"reshape {src} -> {dst} is neither a flatten of trailing dims nor a split of one dim"
        )

    def op_unflatten(self, node, b):
        self.emit(node, "unflatten", [b["self"]], dim=int(b["dim"]), sizes=[int(s) for s in b["sizes"]])

    def op_transpose(self, node, b):
        self.emit(node, "transpose", [b["self"]], dim0=int(b["dim0"]), dim1=int(b["dim1"]))

    def op_t(self, node, b):
        self.emit(node, "transpose", [b["self"]], dim0=0, dim1=1)

    def op_permute(self, node, b):
        self.emit(node, "permute", [b["self"]], dims=[int(d) for d in b["dims"]])

    def op_unsqueeze(self, node, b):
        self.emit(node, "unsqueeze", [b["self"]], dim=int(b["dim"]))

    def op_cat(self, node, b):
        self._require(
            node, len(b["tensors"]) == 2, f"cat of {len(b['tensors'])} tensors (the IR's cat takes 2)"
        )
        self.emit(node, "cat", list(b["tensors"]), dim=int(b["dim"]))

    def op_stack(self, node, b):
        self._require(
            node, len(b["tensors"]) == 2, f"stack of {len(b['tensors'])} tensors (the IR's stack takes 2)"
        )
        self.emit(node, "stack", list(b["tensors"]), dim=int(b["dim"]))


def _per(value, d: int) -> list[int]:
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return []
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value] * (d if len(value) == 1 else 1)
    return [int(value)] * d
