"""Seeded inputs and shape variants of a task.

Inputs come from the task's own `get_inputs()` under a per-trial seed, so every trial sees fresh random
data (never zeros). Shape variants re-run the task with its module-level size constants changed: the
constants `get_inputs` reads and `get_init_inputs` does not (batch, sequence, spatial sizes, not weight
shapes). A candidate that hard-codes the default shapes fails there.
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


def make_inputs(module, seed: int, device) -> list:
    """The task's inputs for one trial (seeded), on `device`, floating-point ones NaN-guarded."""
    seed_everything(seed)
    return [guarded(x) if isinstance(x, torch.Tensor) else x for x in to_device(module.get_inputs(), device)]


def _names_in(fn: ast.FunctionDef) -> set[str]:
    return {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}


def size_constants(code: str) -> dict[str, int]:
    """Module-level int constants that `get_inputs` uses and `get_init_inputs` does not."""
    tree = parse(code)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if "get_inputs" not in funcs:
        return {}
    used = _names_in(funcs["get_inputs"])
    init_used = _names_in(funcs["get_init_inputs"]) if "get_init_inputs" in funcs else set()
    model = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model"), None)
    model_used = {n.id for n in ast.walk(model) if isinstance(n, ast.Name)} if model else set()
    out = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and type(node.value.value) is int):
            name = node.targets[0].id
            if name in used and name not in init_used and name not in model_used and node.value.value > 2:
                out[name] = node.value.value
    return out


def shape_variants(code: str, n: int) -> list[str]:
    """Up to `n` versions of the task code with its size constants shrunk to odd, unaligned values.

    >>> code = "B = 64\\nD = 8\\ndef get_inputs():\\n    return [B, D]\\ndef get_init_inputs():\\n    return [D]\\n"
    >>> print(shape_variants(code, 1)[0].splitlines()[0])
    B = 33
    """
    consts = size_constants(code)
    if not consts or n <= 0:
        return []
    return [_with_constants(code, {name: max(3, v // (2 + k) + 1) | 1 for name, v in consts.items()})
            for k in range(n)]


def scale_sizes(code: str, factor: int) -> str:
    """The task with its batch-like size constants multiplied by `factor` (bigger GPU workloads).

    >>> code = "B = 64\\nD = 8\\ndef get_inputs():\\n    return [B, D]\\ndef get_init_inputs():\\n    return [D]\\n"
    >>> print(scale_sizes(code, 4).splitlines()[0])
    B = 256
    """
    return _with_constants(code, {name: v * factor for name, v in size_constants(code).items()})


def _with_constants(code: str, values: dict[str, int]) -> str:
    tree = parse(code)
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id in values:
            node.value = ast.Constant(values[node.targets[0].id])
    return ast.unparse(tree) + "\n"
