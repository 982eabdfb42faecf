"""Seeded inputs and shape variants of a task.

Inputs come from the task's own `get_inputs()` under a per-trial seed, so every trial sees fresh random
data (never zeros). Shape variants re-run the task with its sizes changed: the module-level size constants
`get_inputs` reads and `get_init_inputs` does not (batch, sequence, spatial sizes, not weight shapes), or,
in a task without such constants, the literal sizes of the tensors `get_inputs` makes (those no weight
shape repeats). The first variant grows every size (a grid fixed at the default size leaves the rest of
the output unwritten), the others shrink them, all to odd, unaligned values. A candidate that hard-codes
the default shapes fails there; a variant the task itself cannot run is dropped by the reference job.
"""
from __future__ import annotations

import ast
import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import torch

from verify.pyparse import parse


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def load_module(path: str | Path, name: str):
    """Import a Python file as a fresh module (Triton needs kernels to live in real files)."""
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def to_device(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(o, device) for o in obj)
    return obj


# NaN elements behind every contiguous floating-point input (see guarded)
INPUT_GUARD = 4096


def guarded(t: torch.Tensor) -> torch.Tensor:
    """`t`, copied to the front of a longer buffer whose tail is NaN. A kernel that reads past the end of
    an input (an off-by-one load mask) then reads NaN, which shows in its output, instead of whatever the
    allocator placed there (which made such reads pass or fail by chance).

    >>> x = guarded(torch.arange(4.0))
    >>> x.tolist(), x.is_contiguous()
    ([0.0, 1.0, 2.0, 3.0], True)
    >>> whole = torch.empty(0).set_(x.untyped_storage())
    >>> len(whole) == 4 + INPUT_GUARD and bool(torch.isnan(whole[4:]).all())
    True
    """
    if not (t.is_floating_point() and t.is_contiguous() and t.numel()):
        return t
    buf = torch.full((t.numel() + INPUT_GUARD,), float("nan"), dtype=t.dtype, device=t.device)
    buf[: t.numel()].copy_(t.reshape(-1))
    return buf[: t.numel()].view(t.shape)


def zero_float_inputs(inputs) -> bool:
    """True when the inputs hold floating-point tensors and every one of them is all zeros (tests need
    random data); a task whose inputs are all integers (indices, token ids) is not refused for it.

    >>> zero_float_inputs([torch.zeros(3), 4]), zero_float_inputs([torch.randint(0, 9, (3,))])
    (True, False)
    """
    floats = [t for t in inputs if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return bool(floats) and all(float(t.abs().sum()) == 0 for t in floats)


def make_inputs(module, seed: int, device) -> list:
    """The task's inputs for one trial (seeded), on `device`, floating-point ones NaN-guarded."""
    seed_everything(seed)
    return [guarded(x) if isinstance(x, torch.Tensor) else x for x in to_device(module.get_inputs(), device)]


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


_INT_OPS = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__, ast.FloorDiv: int.__floordiv__}


def _int_value(node: ast.AST) -> int | None:
    """The value of an int literal or of an arithmetic expression of them (`2048 * 2`), else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _INT_OPS:
        left, right = _int_value(node.left), _int_value(node.right)
        if left is not None and right is not None and not (isinstance(node.op, ast.FloorDiv) and right == 0):
            return _INT_OPS[type(node.op)](left, right)
    return None


def _reach(tree: ast.Module, names: set[str]) -> set[str]:
    """`names` and every module-level name their module-level assignments read, transitively
    (`input_shape = (batch_size, 3)` makes a function that reads input_shape read batch_size too)."""
    assigned = {n.targets[0].id: n.value for n in tree.body
                if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)}
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += _names_in(assigned[name]) if name in assigned else []
    return found


def size_constants(code: str) -> dict[str, int]:
    """Module-level int constants (literals or arithmetic of literals, `N = 2048 * 2`) that `get_inputs`
    reads, directly or through other module-level names, and neither `get_init_inputs` nor Model does.

    >>> size_constants("N = 2048 * 2\\nC = 3\\nshape = (N, C)\\ndef get_inputs():\\n    return [shape]\\n"
    ...                "def get_init_inputs():\\n    return [C]\\n")
    {'N': 4096}
    """
    tree = parse(code)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if "get_inputs" not in funcs:
        return {}
    used = _reach(tree, _names_in(funcs["get_inputs"]))
    model = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model"), None)
    tied = _reach(tree, set().union(*(_names_in(n) for n in (funcs.get("get_init_inputs"), model) if n)))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, _int_value(node.value)
            if value is not None and name in used and name not in tied and value > 2:
                out[name] = value
    return out


def grown(v: int, rng: random.Random | None = None) -> int:
    """A size about a quarter larger, odd; with `rng`, larger by a drawn 1/8 to 3/8 (a size a candidate
    cannot know in advance: a grid fixed at the predictable grown size would pass otherwise).

    >>> grown(64), grown(1024), grown(3)
    (81, 1281, 5)
    >>> 64 + 8 <= grown(64, random.Random(0)) <= 64 + 24 + 1
    True
    """
    extra = max(1, v // 4) if rng is None else rng.randint(max(1, v // 8), max(1, 3 * v // 8))
    return (v + extra) | 1


def shrunk(v: int, k: int = 0) -> int:
    """The k-th smaller size, odd, at least 3.

    >>> shrunk(64), shrunk(64, 1), shrunk(4)
    (33, 23, 3)
    """
    return max(3, v // (2 + k) + 1) | 1


def shape_variants(code: str, n: int, rng: random.Random | None = None) -> list[str]:
    """Up to `n` versions of the task code with its sizes changed: the first grown (by drawn amounts with
    `rng`, the same for equal sizes, so that sizes the task needs equal stay equal), the others shrunk.

    >>> code = ("B = 64\\nD = 8\\ndef get_inputs():\\n    return [B, D]\\n"
    ...         "def get_init_inputs():\\n    return [D]\\n")
    >>> [v.splitlines()[0] for v in shape_variants(code, 2)]
    ['B = 81', 'B = 33']
    >>> literal = ("def get_inputs():\\n    return [torch.randn(48, 1000)]\\n"
    ...            "def get_init_inputs():\\n    return []\\n")
    >>> print(shape_variants(literal, 1)[0].splitlines()[1].strip())
    return [torch.randn(61, 1251)]
    """
    if n <= 0:
        return []
    drawn: dict[int, int] = {}

    def grow(v: int) -> int:
        if v not in drawn:
            drawn[v] = grown(v, rng)
        return drawn[v]

    sizes = [grow] + [lambda v, k=k: shrunk(v, k) for k in range(n - 1)]
    consts = size_constants(code)
    if consts:
        return [with_constants(code, {name: size(v) for name, v in consts.items()}) for size in sizes]
    literals = literal_sizes(code)
    if not literals:
        return []
    return [_with_literals(code, size) for size in sizes]


# tensor factories whose positional int arguments (or first tuple/list argument) are the sizes
_SIZE_FACTORIES = ("randn", "rand", "zeros", "ones", "empty", "full")


def _size_nodes(call: ast.Call) -> list[ast.Constant]:
    """The int literals giving the size of the tensor a factory call makes (none for other calls)."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    args = list(call.args)
    if name == "randint":  # randint(high, size) or randint(low, high, size): only the size
        args = [a for a in args if isinstance(a, (ast.Tuple, ast.List))]
    elif name not in _SIZE_FACTORIES:
        return []
    args += [kw.value for kw in call.keywords if kw.arg == "size"]
    if args and isinstance(args[0], (ast.Tuple, ast.List)):
        args = list(args[0].elts)
    elif name == "full":
        args = []
    return [a for a in args if isinstance(a, ast.Constant) and type(a.value) is int and a.value > 2]


def _tied_values(tree: ast.Module) -> set[int]:
    """Int values that weight shapes may repeat: literals in get_init_inputs and Model, and the values of
    the module-level constants either of them reads."""
    parts = [n for n in tree.body if (isinstance(n, ast.FunctionDef) and n.name == "get_init_inputs")
             or (isinstance(n, ast.ClassDef) and n.name == "Model")]
    names = {n.id for part in parts for n in ast.walk(part) if isinstance(n, ast.Name)}
    values = {n.value for part in parts for n in ast.walk(part)
              if isinstance(n, ast.Constant) and type(n.value) is int}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in names and isinstance(node.value, ast.Constant)):
            values.add(node.value.value)
    return values


def _literal_nodes(tree: ast.Module) -> list[ast.Constant]:
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_inputs"]
    if not funcs:
        return []
    tied = _tied_values(tree)
    return [c for call in ast.walk(funcs[0]) if isinstance(call, ast.Call)
            for c in _size_nodes(call) if c.value not in tied]


def literal_sizes(code: str) -> list[int]:
    """The literal sizes of the tensors `get_inputs` makes that no weight shape repeats, in source order.

    >>> literal_sizes("def get_inputs():\\n    return [torch.randn(16, 512), torch.randint(0, 10, (16,))]\\n"
    ...               "def get_init_inputs():\\n    return [512]\\n")
    [16, 16]
    """
    return [c.value for c in _literal_nodes(parse(code))]


def _with_literals(code: str, size) -> str:
    tree = parse(code)
    for node in _literal_nodes(tree):
        node.value = size(node.value)
    return ast.unparse(tree) + "\n"


def scale_sizes(code: str, factor: int) -> str:
    """The task with its batch-like size constants multiplied by `factor` (bigger GPU workloads).

    >>> code = ("B = 64\\nD = 8\\ndef get_inputs():\\n    return [B, D]\\n"
    ...         "def get_init_inputs():\\n    return [D]\\n")
    >>> print(scale_sizes(code, 4).splitlines()[0])
    B = 256
    """
    return with_constants(code, {name: v * factor for name, v in size_constants(code).items()})


def with_constants(code: str, values: dict[str, int]) -> str:
    """The task code with module-level constants set: each `NAME = ...` assignment whose NAME is a key of
    `values` becomes `NAME = values[NAME]` (the rest of the code is unchanged, re-printed by `ast.unparse`).
    How `shape_variants` and `scale_sizes` change a task's sizes; tests use it to shrink tasks.

    >>> print(with_constants("B = 64\\nD = 8\\ndef get_inputs():\\n    return [B, D]\\n",
    ...                      {"B": 4}).splitlines()[0])
    B = 4
    """
    tree = parse(code)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in values):
            node.value = ast.Constant(values[node.targets[0].id])
    return ast.unparse(tree) + "\n"


# the former private name, kept for callers written before it was public
_with_constants = with_constants
