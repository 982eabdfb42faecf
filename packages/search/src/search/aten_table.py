"""The frontend's table: how each ATen operator becomes synth operators.

`ATEN` maps an ATen op name (the overload packet's name: `relu`, `conv2d`, `max` for `aten.max.dim`) to a
rule `rule(m, node, b)`: `m` is the frontend's mapper (`search.frontend.Mapper`), `node` the FX node, `b`
its arguments by schema name with defaults filled in. A rule emits synth operators through `m.emit`
(several operators: intermediate tensors from `m.temp`), passes a value through with `m.alias`, or rejects
the call with `m.fail` / `m.require` (the frontend then keeps the call as an opaque `aten` node that stays
PyTorch, or raises when opaque nodes are off).

A new operator is one line here (`"sqrt": unary("sqrt"),`) plus its synth operator and lowering. In-place
variants (`relu_`) use their functional rule; the frontend rebinds the mutated tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Rule = Callable[..., None]


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _one(values):
    """A list of equal ints as one int (how nn modules print them), else a tuple."""
    values = list(values)
    return values[0] if len(set(values)) == 1 else tuple(values)


def _per(value, d: int) -> list[int]:
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return []
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value] * (d if len(value) == 1 else 1)
    return [int(value)] * d


def _dims(dim):
    dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    return dims[0] if len(dims) == 1 else dims


_COMMUTATIVE = frozenset({"add", "mul", "maximum", "minimum"})


# rule makers ----------------------------------------------------------------------------------------------
def unary(op: str, **params: Callable[[dict], object]) -> Rule:
    """`op` on `self`, each synth parameter computed from the bound ATen arguments."""

    def rule(m, node, b):
        m.emit(node, op, [b["self"]], **{k: f(b) for k, f in params.items()})

    return rule


def binary(
    op: str, scalar: tuple[str, str, Callable[[float], float]] | None = None, scalar_bound: str | None = None
) -> Rule:
    """`op` on two tensors. A scalar second operand (a Python number or a 0-d constant; the first, for a
    commutative op) becomes the unary `scalar` = (synth op, its parameter, value transform) or a one-sided
    clamp (`scalar_bound`: "min"/"max")."""

    def rule(m, node, b):
        a, other = b["self"], b["other"] if "other" in b else b["mat2"]
        m.require(node, b.get("alpha", 1) == 1, f"{op} with alpha={b.get('alpha')}")
        if m.scalar(a) is not None and op in _COMMUTATIVE:
            a, other = other, a
        m.require(node, m.scalar(a) is None, f"{op} with a scalar first operand")
        value = m.scalar(other)
        if value is None:
            m.emit(node, op, [a, other])
        elif scalar is not None:
            m.emit(node, scalar[0], [a], **{scalar[1]: scalar[2](value)})
        elif scalar_bound is not None:
            m.emit(node, "clamp", [a], **{"min": None, "max": None, scalar_bound: value})
        else:
            m.fail(node, f"{op} with a scalar operand")

    return rule


def reduction(op: str) -> Rule:
    def rule(m, node, b):
        m.require(node, b.get("dtype") is None, "reduction with a dtype= cast")
        m.emit(node, op, [b["self"]], dim=_reduced(m, b), keepdim=bool(b.get("keepdim", False)))

    return rule


def _reduced(m, b):
    """The reduced dims: `dim` as given, every dim when it is None or empty (`x.sum()`, `torch.norm(x)`)."""
    dim = b.get("dim")
    if dim is None or (isinstance(dim, (list, tuple)) and not dim):
        return list(range(len(m.shape(b["self"]))))
    return _dims(dim)


def alias(m, node, b):
    """A copy or a view that changes nothing: the value passes through."""
    m.alias(node, node.args[0])


# modules with weights -----------------------------------------------------------------------------------
def linear(m, node, b):
    w = b["weight"]
    out_f, in_f = m.shape(w)
    m.emit(
        node,
        "linear",
        [b["input"]],
        {"weight": m.key(node, w), "bias": m.key(node, b["bias"])},
        in_features=in_f,
        out_features=out_f,
        bias=b["bias"] is not None,
    )


def conv(d: int, transposed: bool) -> Rule:
    def rule(m, node, b):
        w = b["weight"]
        if isinstance(b["padding"], str):
            m.fail(node, f"padding={b['padding']!r} (only explicit integer padding is supported)")
        ws = m.shape(w)
        groups = int(b["groups"])
        cin = m.shape(b["input"])[1]
        cout = ws[1] * groups if transposed else ws[0]
        params = {
            "in_channels": cin,
            "out_channels": cout,
            "kernel_size": _one(ws[2:]),
            "stride": _one(_per(b["stride"], d)),
            "padding": _one(_per(b["padding"], d)),
            "dilation": _one(_per(b["dilation"], d)),
            "groups": groups,
            "bias": b["bias"] is not None,
        }
        if transposed:
            params["output_padding"] = _one(_per(b["output_padding"], d))
        op = f"conv_transpose{d}d" if transposed else f"conv{d}d"
        m.emit(node, op, [b["input"]], {"weight": m.key(node, w), "bias": m.key(node, b["bias"])}, **params)

    return rule


def batch_norm(m, node, b):
    x = m.shape(b["input"])
    m.require(
        node,
        all(b[k] is not None for k in ("weight", "bias", "running_mean", "running_var")),
        "batch norm without affine weights or running stats",
    )
    m.require(
        node,
        math.isclose(b["eps"], 1e-5) and math.isclose(b["momentum"], 0.1),
        f"batch norm with eps={b['eps']}, momentum={b['momentum']} (IR norms use the defaults)",
    )
    m.require(node, bool(b["training"]), "batch norm in eval mode (the IR's BatchNorm runs in training mode)")
    d = {2: 1, 3: 1, 4: 2, 5: 3}.get(len(x))
    rm = m.key(node, b["running_mean"])
    prefix = rm.rsplit(".", 1)[0] + "." if "." in rm else ""
    state = {
        "weight": m.key(node, b["weight"]),
        "bias": m.key(node, b["bias"]),
        "running_mean": rm,
        "running_var": m.key(node, b["running_var"]),
    }
    if prefix + "num_batches_tracked" in m.state_keys:
        state["num_batches_tracked"] = prefix + "num_batches_tracked"
    m.emit(node, f"batch_norm{d}d", [b["input"]], state, features=x[1])


def group_norm(m, node, b):
    m.require(node, b["weight"] is not None and b["bias"] is not None, "group norm without affine weights")
    m.require(node, math.isclose(b["eps"], 1e-5), f"group norm with eps={b['eps']} (IR uses 1e-5)")
    m.emit(
        node,
        "group_norm",
        [b["input"]],
        {"weight": m.key(node, b["weight"]), "bias": m.key(node, b["bias"])},
        groups=int(b["num_groups"]),
        features=m.shape(b["input"])[1],
    )


def instance_norm(m, node, b):
    x = m.shape(b["input"])
    m.require(
        node,
        all(b[k] is None for k in ("weight", "bias", "running_mean", "running_var")) and b["use_input_stats"],
        "instance norm with affine weights or running stats",
    )
    m.require(node, math.isclose(b["eps"], 1e-5), f"instance norm with eps={b['eps']} (IR uses 1e-5)")
    m.emit(node, f"instance_norm{len(x) - 2}d", [b["input"]], features=x[1])


def layer_norm(m, node, b):
    x = m.shape(b["input"])
    m.require(node, b["weight"] is not None and b["bias"] is not None, "layer norm without affine weights")
    m.require(node, math.isclose(b["eps"], 1e-5), f"layer norm with eps={b['eps']} (IR uses 1e-5)")
    m.emit(
        node,
        "layer_norm",
        [b["input"]],
        {"weight": m.key(node, b["weight"]), "bias": m.key(node, b["bias"])},
        features=_features(b["normalized_shape"], x),
    )


def rms_norm(m, node, b):
    x = m.shape(b["input"])
    m.require(
        node,
        b["weight"] is not None and b["eps"] is None,
        "RMS norm without a weight or with an explicit eps (IR uses nn.RMSNorm defaults)",
    )
    m.emit(
        node,
        "rms_norm",
        [b["input"]],
        {"weight": m.key(node, b["weight"])},
        features=_features(b["normalized_shape"], x),
    )


def _features(normalized_shape, x) -> int | tuple:
    """A norm's `features`: the last dim as an int, several trailing dims as a tuple."""
    dims = tuple(int(d) for d in normalized_shape)
    return dims[0] if len(dims) == 1 else dims


# pooling ------------------------------------------------------------------------------------------------
def pool(kind: str, d: int) -> Rule:
    def rule(m, node, b):
        m.require(node, not b.get("ceil_mode"), "pooling with ceil_mode=True")
        extra = {}
        if kind == "avg":
            m.require(
                node,
                b.get("count_include_pad", True) and b.get("divisor_override") is None,
                "avg pooling with count_include_pad=False or divisor_override",
            )
        elif _one(_per(b["dilation"], d)) != 1:
            extra["dilation"] = _one(_per(b["dilation"], d))
        k = _one(_per(b["kernel_size"], d))
        stride = _one(_per(b["stride"], d)) if b["stride"] else k
        m.emit(
            node,
            f"{kind}_pool{d}d",
            [b["self"]],
            kernel_size=k,
            stride=stride,
            padding=_one(_per(b["padding"], d)),
            **extra,
        )

    return rule


def adaptive_pool(d: int) -> Rule:
    def rule(m, node, b):
        m.emit(node, f"adaptive_avg_pool{d}d", [b["self"]], output_size=_one(_per(b["output_size"], d)))

    return rule


# activations with parameters ------------------------------------------------------------------------------
def dropout(m, node, b):
    # the verifier runs Models as constructed (training mode): only p = 0 or eval-mode dropout is the identity
    m.require(node, not b["train"] or b["p"] == 0, f"dropout with p={b['p']} in training mode (random)")
    m.emit(node, "dropout", [b["input"]], p=float(b["p"]))


def gelu(m, node, b):
    m.emit(node, "gelu_tanh" if b["approximate"] == "tanh" else "gelu", [b["self"]])


def elu(m, node, b):
    m.require(node, b["scale"] == 1 and b["input_scale"] == 1, "elu with scale or input_scale")
    m.emit(node, "elu", [b["self"]], alpha=float(b["alpha"]))


def hardtanh(m, node, b):
    lo, hi = float(b["min_val"]), float(b["max_val"])
    if (lo, hi) == (0.0, 6.0):
        m.emit(node, "relu6", [b["self"]])
    else:
        m.emit(node, "hardtanh", [b["self"]], min_val=lo, max_val=hi)


def softplus(m, node, b):
    m.require(node, b["threshold"] == 20, "softplus with a threshold other than 20")
    m.emit(node, "softplus", [b["self"]], beta=float(b["beta"]))


def clamp(m, node, b):
    bounds = {k: b.get(k) for k in ("min", "max")}
    values = {k: None if v is None else m.scalar(v) for k, v in bounds.items()}
    m.require(
        node, all(v is None or values[k] is not None for k, v in bounds.items()), "clamp with tensor bounds"
    )
    m.emit(node, "clamp", [b["self"]], **values)


# arithmetic ---------------------------------------------------------------------------------------------
def div(m, node, b):
    m.require(node, b.get("rounding_mode") is None, f"division with rounding_mode={b.get('rounding_mode')!r}")
    binary("div", scalar=("scale", "factor", lambda v: 1.0 / v))(m, node, b)


def rsub(m, node, b):
    """`c - x` (`torch.rsub`, what `1 - x` exports as): -x then + c (negation is exact), or sub(c, x)."""
    x, c = b["self"], b["other"]
    m.require(node, b.get("alpha", 1) == 1, f"rsub with alpha={b.get('alpha')}")
    value = m.scalar(c)
    if value is None:
        m.emit(node, "sub", [c, x])
    else:
        m.emit(node, "shift", [m.temp(node, "scale", [x], m.shape(node), factor=-1.0)], value=value)


def pow_(m, node, b):
    exponent = m.scalar(b.get("exponent"))
    m.require(
        node,
        exponent is not None and hasattr(b.get("self"), "name"),
        "a power with a tensor exponent or base",
    )
    m.emit(node, "pow", [b["self"]], exponent=exponent)


# softmax, norms, scans ------------------------------------------------------------------------------------
def softmax(op: str) -> Rule:
    def rule(m, node, b):
        m.require(node, b.get("dtype") is None and not b.get("half_to_float"), f"{op} with a dtype cast")
        m.emit(node, op, [b["self"]], dim=int(b["dim"]))

    return rule


def std(m, node, b):
    corr = b.get("correction")
    m.require(node, corr is None or corr == 1, f"std with correction={corr}")
    m.emit(node, "std", [b["self"]], dim=_dims(b["dim"]), keepdim=bool(b["keepdim"]))


def vector_norm(m, node, b):
    m.require(node, b["ord"] == 2 and b.get("dtype") is None, f"vector norm of order {b['ord']}")
    m.emit(node, "norm", [b["self"]], dim=_reduced(m, b), keepdim=bool(b["keepdim"]))


def scan(op: str) -> Rule:
    def rule(m, node, b):
        m.require(node, b.get("dtype") is None, f"{op} with a dtype cast")
        m.emit(node, op, [b["self"]], dim=int(b["dim"]))

    return rule


def arg_reduction(op: str) -> Rule:
    def rule(m, node, b):
        m.require(node, b["dim"] is not None, f"{op} over every element")
        m.emit(node, op, [b["self"]], dim=int(b["dim"]), keepdim=bool(b["keepdim"]))

    return rule


def einsum(m, node, b):
    """`torch.einsum` where it is a matmul: "...ij,jk->...ik" or "...ij,...jk->...ik" (same batch letters)."""
    equation, operands = b["equation"].replace(" ", ""), list(b["tensors"])
    m.require(node, "->" in equation and "." not in equation and len(operands) == 2, f"einsum {equation!r}")
    (x, y), out = equation.split("->")[0].split(","), equation.split("->")[1]
    is_matmul = (
        len(x) >= 2
        and len(y) >= 2
        and x[-1] == y[-2]
        and y[:-2] in ("", x[:-2])
        and out == x[:-1] + y[-1]
        and len(set(x)) == len(x)
        and len(set(y)) == len(y)
        and y[-1] not in x
    )
    m.require(node, is_matmul, f"einsum {equation!r} is not a matmul")
    m.emit(node, "matmul", operands)


def attention(m, node, b):
    """`F.scaled_dot_product_attention` without mask, dropout or causality: softmax(q k^T * scale) v."""
    m.require(
        node,
        b["attn_mask"] is None and not b["dropout_p"] and not b["is_causal"] and not b.get("enable_gqa"),
        "attention with a mask, dropout, causality or grouped queries",
    )
    q, k, v = b["query"], b["key"], b["value"]
    qs, ks = m.shape(q), m.shape(k)
    scores = qs[:-1] + (ks[-2],)
    kt = m.temp(node, "transpose", [k], ks[:-2] + (ks[-1], ks[-2]), dim0=-2, dim1=-1)
    s = m.temp(node, "matmul", [q, kt], scores)
    factor = b["scale"] if b["scale"] is not None else 1.0 / math.sqrt(qs[-1])
    p = m.temp(node, "softmax", [m.temp(node, "scale", [s], scores, factor=float(factor))], scores, dim=-1)
    m.emit(node, "matmul", [p, v])


# layout -------------------------------------------------------------------------------------------------
def flatten(m, node, b):
    rank = len(m.shape(b["self"]))
    start, end = int(b["start_dim"]) % max(rank, 1), int(b["end_dim"]) % max(rank, 1)
    m.require(node, end == rank - 1, "flatten that stops before the last dim")
    m.emit(node, "flatten", [b["self"]], start_dim=start)


def reshape(m, node, b):
    m.reshape(node, b["self"])


def squeeze(m, node, b):
    dim = b.get("dim")
    if isinstance(dim, int):
        m.emit(node, "squeeze", [b["self"]], dim=dim)
    else:
        m.reshape(node, b["self"])


def narrow(m, node, b):
    """`slice` with step 1 and `narrow`: a window of one dim."""
    x, dim = b["self"], int(b["dim"])
    size = m.shape(x)[dim]
    if "length" in b:
        start, length = int(b["start"]), int(b["length"])
    else:
        m.require(node, b.get("step", 1) == 1, f"a slice with step {b.get('step')}")
        start = 0 if b.get("start") is None else int(b["start"])
        start = max(0, min(size, start + size if start < 0 else start))
        length = m.shape(node)[dim]
    if (start, length) == (0, size):
        m.alias(node, x)
    else:
        m.emit(node, "narrow", [x], dim=dim, start=start, length=length)


def expand(m, node, b):
    m.emit(node, "expand", [b["self"]], sizes=list(m.shape(node)))


def numpy_t(m, node, b):
    rank = len(m.shape(b["self"]))
    if rank == 2:
        m.emit(node, "transpose", [b["self"]], dim0=0, dim1=1)
    else:
        m.emit(node, "permute", [b["self"]], dims=list(reversed(range(rank))))


def t(m, node, b):
    if len(m.shape(b["self"])) < 2:
        m.alias(node, b["self"])
    else:
        m.emit(node, "transpose", [b["self"]], dim0=0, dim1=1)


def cat(op: str) -> Rule:
    """cat/stack of n tensors: synth's operators take two, so n - 1 of them (cat of cats is cat; stack of
    n is a stack of two then cats along the new dim)."""

    def rule(m, node, b):
        parts, dim = list(b["tensors"]), int(b["dim"])
        m.require(node, len(parts) == 2, f"{op} of {len(parts)} tensors (the IR's {op} takes 2)")
        m.emit(node, op, parts, dim=dim)

    return rule


def copy(m, node, b):
    """`dst.copy_(src)` (an attribute reassigned in forward: `self.h = self.h.to(x.device)`): src's value."""
    m.require(
        node,
        m.shape(b["src"]) == m.shape(node) and m.dtype(b["src"]) == m.dtype(node),
        "a copy that broadcasts or casts",
    )
    m.alias(node, b["src"])


def to_copy(m, node, b):
    """`.to(...)`, `.type_as`, `_to_copy`: the identity when the dtype does not change (devices are the
    export's CPU)."""
    x = node.args[0]
    m.require(node, m.dtype(x) == m.dtype(node), f"a cast from {m.dtype(x)} to {m.dtype(node)}")
    m.alias(node, x)


def max_dim(op: str) -> Rule:
    """`torch.max(x, dim)` / `torch.min(x, dim)` return (values, indices): values are amax / amin."""
    ops = {"max": "amax", "min": "amin"}

    def rule(m, node, b):
        if "other" in b:
            binary({"max": "maximum", "min": "minimum"}[op], scalar_bound={"max": "min", "min": "max"}[op])(
                m, node, b
            )
            return
        if "dim" not in b:
            m.fail(node, f"{op} over every element")
        dim, keepdim = int(b["dim"]), bool(b["keepdim"])
        m.tuple_result(
            node,
            {
                0: lambda n: m.emit(n, ops[op], [b["self"]], dim=dim, keepdim=keepdim),
                1: lambda n: m.emit(n, f"arg{op}", [b["self"]], dim=dim, keepdim=keepdim),
            },
        )

    return rule


ATEN: dict[str, Rule] = {
    # copies, views and casts that change nothing
    **{name: alias for name in ("clone", "contiguous", "alias", "detach", "lift_fresh_copy")},
    "_to_copy": to_copy,
    "copy": copy,
    "to": to_copy,
    "type_as": to_copy,
    # activations
    **{
        name: unary(name)
        for name in (
            "relu",
            "relu6",
            "selu",
            "silu",
            "mish",
            "hardswish",
            "hardsigmoid",
            "sigmoid",
            "tanh",
            "abs",
            "erf",
        )
    },
    "log_sigmoid": unary("logsigmoid"),
    "leaky_relu": unary("leaky_relu", negative_slope=lambda b: float(b["negative_slope"])),
    "celu": unary("celu", alpha=lambda b: float(b["alpha"])),
    "hardshrink": unary("hardshrink", lambd=lambda b: float(b["lambd"])),
    "softshrink": unary("softshrink", lambd=lambda b: float(b["lambd"])),
    "gelu": gelu,
    "elu": elu,
    "hardtanh": hardtanh,
    "softplus": softplus,
    "clamp": clamp,
    "clamp_min": clamp,
    "clamp_max": clamp,
    "dropout": dropout,
    "sqrt": unary("sqrt"),
    "triu": unary("triu", diagonal=lambda b: int(b["diagonal"])),
    "tril": unary("tril", diagonal=lambda b: int(b["diagonal"])),
    "log": unary("log"),
    # arithmetic
    "add": binary("add", scalar=("shift", "value", lambda v: v)),
    "sub": binary("sub", scalar=("shift", "value", lambda v: -v)),
    "mul": binary("mul", scalar=("scale", "factor", lambda v: v)),
    "multiply": binary("mul", scalar=("scale", "factor", lambda v: v)),
    "div": div,
    "rsub": rsub,
    "pow": pow_,
    "maximum": binary("maximum", scalar_bound="min"),
    "minimum": binary("minimum", scalar_bound="max"),
    "max": max_dim("max"),
    "min": max_dim("min"),
    # matmul and modules with weights
    "matmul": binary("matmul"),
    "mm": binary("mm"),
    "bmm": binary("bmm"),
    "einsum": einsum,
    "linear": linear,
    **{f"conv{d}d": conv(d, False) for d in (1, 2, 3)},
    **{f"conv_transpose{d}d": conv(d, True) for d in (1, 2, 3)},
    "batch_norm": batch_norm,
    "group_norm": group_norm,
    "instance_norm": instance_norm,
    "layer_norm": layer_norm,
    "rms_norm": rms_norm,
    # pooling
    **{f"{kind}_pool{d}d": pool(kind, d) for kind in ("max", "avg") for d in (1, 2, 3)},
    **{f"adaptive_avg_pool{d}d": adaptive_pool(d) for d in (1, 2, 3)},
    # reductions, softmax, norms, scans
    **{name: reduction(name) for name in ("sum", "mean", "amax", "amin", "logsumexp")},
    "softmax": softmax("softmax"),
    "_softmax": softmax("softmax"),
    "log_softmax": softmax("log_softmax"),
    "std": std,
    "linalg_vector_norm": vector_norm,
    "cumsum": scan("cumsum"),
    "scaled_dot_product_attention": attention,
    "cumprod": scan("cumprod"),
    "argmax": arg_reduction("argmax"),
    "argmin": arg_reduction("argmin"),
    # layout
    "flatten": flatten,
    "view": reshape,
    "reshape": reshape,
    "_unsafe_view": reshape,
    "squeeze": squeeze,
    "unflatten": lambda m, node, b: m.emit(
        node, "unflatten", [b["self"]], dim=int(b["dim"]), sizes=[int(s) for s in b["sizes"]]
    ),
    "transpose": lambda m, node, b: m.emit(
        node, "transpose", [b["self"]], dim0=int(b["dim0"]), dim1=int(b["dim1"])
    ),
    "t": t,
    "numpy_T": numpy_t,
    "permute": lambda m, node, b: m.emit(node, "permute", [b["self"]], dims=[int(d) for d in b["dims"]]),
    "slice": narrow,
    "narrow": narrow,
    "expand": expand,
    "unsqueeze": lambda m, node, b: m.emit(node, "unsqueeze", [b["self"]], dim=int(b["dim"])),
    "cat": cat("cat"),
    "stack": cat("stack"),
}
