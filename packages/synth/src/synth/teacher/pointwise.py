"""Triton expressions for the pointwise operators (activations, scalar math, broadcasting binary ops).

Each entry maps an operator to a function `(args, params) -> str`: a Triton expression over fp32 values
named in `args`. No libdevice: tanh, gelu-tanh, mish... are written from `tl.exp`, which the CPU
interpreter also runs.
"""
from __future__ import annotations

import math


def _f(v) -> str:
    return repr(float(v))


def _tanh(z: str) -> str:
    # 1 - 2 / (exp(2z) + 1): exact at +-inf, no libdevice
    return f"(1.0 - 2.0 / (tl.exp(2.0 * ({z})) + 1.0))"


def _sigmoid(z: str) -> str:
    return f"(1.0 / (1.0 + tl.exp(-({z}))))"


def _softplus(z: str, beta: float = 1.0) -> str:
    # PyTorch switches to the identity above beta * x > 20
    bz = f"({_f(beta)} * {z})"
    return f"tl.where({bz} > 20.0, {z}, tl.log(1.0 + tl.exp({bz})) / {_f(beta)})"


def _elu(z: str, alpha: float) -> str:
    return f"tl.where({z} > 0.0, {z}, {_f(alpha)} * (tl.exp({z}) - 1.0))"


def _celu(z: str, alpha: float) -> str:
    a = _f(alpha)
    return f"tl.where({z} > 0.0, {z}, {a} * (tl.exp({z} / {a}) - 1.0))"


def _clamp(z: str, lo, hi) -> str:
    # torch.clamp takes one bound as None (clamp_min / clamp_max): that side is left open
    if lo is not None:
        z = f"tl.maximum({z}, {_f(lo)})"
    return z if hi is None else f"tl.minimum({z}, {_f(hi)})"


def _pow(z: str, e: float) -> str:
    # small integer exponents as products (defined for negative bases, as torch.pow is); any other through
    # exp(e * log(z)), which is NaN below 0 like torch.pow with a fractional exponent
    if e.is_integer() and 1 <= abs(e) <= 4:
        product = " * ".join([f"({z})"] * int(abs(e)))
        return product if e > 0 else f"1.0 / ({product})"
    if e == 0:
        return f"tl.zeros_like({z}) + 1.0"
    return f"tl.exp({_f(e)} * tl.log({z}))"


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
_GELU_INNER = _f(math.sqrt(2 / math.pi)) + " * ({x} + 0.044715 * {x} * {x} * {x})"

UNARY = {
    "relu": lambda x, p: f"tl.maximum({x}, 0.0)",
    "relu6": lambda x, p: f"tl.minimum(tl.maximum({x}, 0.0), 6.0)",
    "leaky_relu": lambda x, p: f"tl.where({x} >= 0.0, {x}, {x} * {_f(p['negative_slope'])})",
    "elu": lambda x, p: _elu(x, p["alpha"]),
    "selu": lambda x, p: f"{_f(_SELU_SCALE)} * {_elu(x, _SELU_ALPHA)}",
    "celu": lambda x, p: _celu(x, p["alpha"]),
    "gelu": lambda x, p: f"0.5 * {x} * (1.0 + tl.math.erf({x} * {_f(1 / math.sqrt(2))}))",
    "gelu_tanh": lambda x, p: f"0.5 * {x} * (1.0 + {_tanh(_GELU_INNER.format(x=x))})",
    "silu": lambda x, p: f"{x} * {_sigmoid(x)}",
    "mish": lambda x, p: f"{x} * {_tanh(_softplus(x))}",
    "hardswish": lambda x, p: f"{x} * tl.minimum(tl.maximum({x} + 3.0, 0.0), 6.0) / 6.0",
    "hardsigmoid": lambda x, p: f"tl.minimum(tl.maximum({x} + 3.0, 0.0), 6.0) / 6.0",
    "hardtanh": lambda x, p: f"tl.minimum(tl.maximum({x}, {_f(p['min_val'])}), {_f(p['max_val'])})",
    "sigmoid": lambda x, p: _sigmoid(x),
    "tanh": lambda x, p: _tanh(x),
    "softplus": lambda x, p: _softplus(x, p["beta"]),
    "softsign": lambda x, p: f"{x} / (1.0 + tl.abs({x}))",
    "logsigmoid": lambda x, p: f"tl.minimum({x}, 0.0) - tl.log(1.0 + tl.exp(-tl.abs({x})))",
    "tanhshrink": lambda x, p: f"{x} - {_tanh(x)}",
    "hardshrink": lambda x, p: f"tl.where(tl.abs({x}) > {_f(p['lambd'])}, {x}, 0.0)",
    "softshrink": lambda x, p: (f"tl.where({x} > {_f(p['lambd'])}, {x} - {_f(p['lambd'])}, "
                                f"tl.where({x} < -{_f(p['lambd'])}, {x} + {_f(p['lambd'])}, 0.0))"),
    "clamp": lambda x, p: _clamp(x, p.get("min"), p.get("max")),
    "scale": lambda x, p: f"{x} * {_f(p['factor'])}",
    "shift": lambda x, p: f"{x} + {_f(p['value'])}",
    "abs": lambda x, p: f"tl.abs({x})",
    "erf": lambda x, p: f"tl.math.erf({x})",
    # eval-mode dropout is the identity
    "dropout": lambda x, p: x,
    "sqrt": lambda x, p: f"tl.sqrt({x})",
    "log": lambda x, p: f"tl.log({x})",
    "pow": lambda x, p: _pow(x, float(p["exponent"])),
}

BINARY = {
    "add": lambda a, b: f"{a} + {b}",
    "sub": lambda a, b: f"{a} - {b}",
    "mul": lambda a, b: f"{a} * {b}",
    "maximum": lambda a, b: f"tl.maximum({a}, {b})",
    "minimum": lambda a, b: f"tl.minimum({a}, {b})",
    "div": lambda a, b: f"{a} / {b}",
}


def expression(op: str, args: list[str], params: dict) -> str:
    """The Triton expression of pointwise `op` applied to `args`."""
    if op in BINARY:
        return BINARY[op](*args)
    return UNARY[op](args[0], params)


POINTWISE_OPS = frozenset(UNARY) | frozenset(BINARY)
