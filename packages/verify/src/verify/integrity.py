"""Detect monkey-patching: did loading or running the candidate replace anything we rely on?

A snapshot keeps a reference to every function, class and module reachable as an attribute of the
watched objects (torch, its functional API, the Tensor and Module classes, CUDA events and sync, time,
Triton's launchers and testing helpers, builtins) plus the numeric-precision flags. A later snapshot
that differs in any of them (compared by identity) means the candidate patched the verifier's world.
"""
from __future__ import annotations

import types

import torch

WATCHED = (
    "torch", "torch.nn", "torch.nn.functional", "torch.cuda", "torch.Tensor", "torch.nn.Module",
    "torch.cuda.Event", "time", "math", "builtins", "triton", "triton.testing",
    "triton.runtime.jit.JITFunction", "triton.runtime.jit.KernelInterface",
    "triton.runtime.interpreter.InterpretedFunction",
    "triton.runtime.interpreter.GridExecutor", "torch.testing", "torch.utils._python_dispatch",
)
_KINDS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType, type,
          types.MethodDescriptorType, types.WrapperDescriptorType, classmethod, staticmethod, property)


def _resolve(path: str):
    import importlib

    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def _flags() -> dict:
    return {
        "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "default_dtype": str(torch.get_default_dtype()),
    }


def snapshot() -> dict:
    snap = {}
    for path in WATCHED:
        try:
            obj = _resolve(path)
        except (ImportError, AttributeError):
            continue
        for attr, val in list(vars(obj).items()):
            if isinstance(val, _KINDS):
                snap[f"{path}.{attr}"] = val
    snap.update({f"flag:{k}": v for k, v in _flags().items()})
    return snap


def changed(before: dict, after: dict) -> list[str]:
    """Keys whose object (or flag value) differs between two snapshots."""
    out = []
    for key, val in before.items():
        now = after.get(key, _MISSING)
        if key.startswith("flag:"):
            if now != val:
                out.append(key)
        elif now is not val:
            out.append(key)
    return out


_MISSING = object()
