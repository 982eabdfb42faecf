"""Record, in the candidate's worker, the program one forward actually ran, as data (the `replayed` check).

A Recorder, attached to the torch audit (every ATen op it sees outside kernels) and the launch tracker (every
Triton launch), writes down in order: each op as `aten::<op>.<overload>` with its arguments, each launch as
its kernel's name, resolved grid, scalar arguments and keyword arguments (block sizes and num_warps as they
reached `JITFunction.run`, so autotune and heuristics choices are frozen). Tensors are view descriptors over
storages named by where they came from: `input:i`, `param:<name>` / `buffer:<name>` (snapshots of the
model's), `op:<k>:<j>` (output j of step k) or `const:<k>` (any other storage: its bytes when first seen).
verify/replay.py runs the recording again in a clean process on inputs the candidate never saw.

The recording is plain data (strings, numbers, lists, dicts, tensors) loaded with `weights_only=True`.
Anything that cannot be written down as such ends the recording with an `error`, which the judge rejects;
the forward itself is never disturbed.
"""
from __future__ import annotations

import torch

_ENUMS = {torch.layout: "layout", torch.memory_format: "memory_format"}


class Unrecordable(Exception):
    pass


def dtype_name(dtype: torch.dtype) -> str:
    """The dtype's name as `getattr(torch, name)` finds it.

    >>> dtype_name(torch.float16)
    'float16'
    """
    return str(dtype).removeprefix("torch.")


class Recorder:
    """Attach to a TorchAudit (`audit.recorder`) and the launch tracker (`TRACKER.recorder`) for one forward;
    `finish(out)` returns the recording."""

    def __init__(self, inputs, model: torch.nn.Module):
        self.steps: list[dict] = []
        self.snapshots: dict[str, torch.Tensor] = {}
        self.error: str | None = None
        # ops run by Triton itself during a launch (the interpreter's copies) are not the candidate's program
        self.depth = 0
        self._refs: dict[int, str] = {}
        # every storage seen stays alive until the end: a freed one's address must not name a new one
        self._alive: list = []
        for i, x in enumerate(inputs):
            if isinstance(x, torch.Tensor):
                self._name(x, f"input:{i}", snapshot=False)
        for kind, named in (("param", model.named_parameters()), ("buffer", model.named_buffers())):
            for name, t in named:
                self._name(t, f"{kind}:{name}", snapshot=True)

    # ---- what the hooks call ----------------------------------------------------------------------
    def before(self, args, kwargs) -> None:
        """Name the storages of an op's tensor arguments before it runs: one first seen here is snapshotted
        before an in-place op changes it."""
        if self.depth or self.error is not None:
            return
        try:
            for t in _tensors([args, kwargs or {}]):
                self._ref(t)
        except Exception as e:
            self._fail(e)

    def op(self, func, args, kwargs, out) -> None:
        """One ATen op the audit saw (called inside its __torch_dispatch__, modes off)."""
        if self.depth or self.error is not None:
            return
        try:
            name = f"{func.namespace}::{func._schema.name.split('::')[-1]}.{func._overloadname}"
            step = {"kind": "op", "name": name, "args": self._encode(list(args)),
                    "kwargs": {k: self._encode(v) for k, v in (kwargs or {}).items()}}
            k = len(self.steps)
            step["outs"] = [self._produced(t, f"op:{k}:{j}") if isinstance(t, torch.Tensor) else None
                            for j, t in enumerate(_results(out))]
            self.steps.append(step)
        except Exception as e:
            self._fail(e)

    def launch(self, fn, args, grid, kwargs):
        """Write down one launch (before it runs: a storage first seen here is snapshotted unwritten) and
        return the grid to launch with, which notes the grid Triton resolves."""
        if self.depth or self.error is not None:
            return grid
        try:
            from torch.utils._python_dispatch import _disable_current_modes

            with _disable_current_modes():
                step = {"kind": "launch", "kernel": _kernel_name(fn), "grid": None,
                        "args": [self._encode_arg(a) for a in args],
                        "kwargs": {k: self._encode_arg(v) for k, v in kwargs.items()}}
        except Exception as e:
            self._fail(e)
            return grid
        self.steps.append(step)
        if not callable(grid):
            step["grid"] = _grid_tuple(grid)
            return grid

        def resolved(meta, _grid=grid):
            result = _grid(meta)
            try:
                step["grid"] = _grid_tuple(result)
            except Exception as e:
                self._fail(e)
            return result

        return resolved

    def finish(self, out) -> dict:
        """The recording (plain data), with the forward's outputs as view descriptors."""
        result = {"steps": [], "snapshots": {}, "out": None, "error": self.error}
        if self.error is None:
            try:
                result["out"] = self._encode_out(out)
                if any(s["kind"] == "launch" and s["grid"] is None for s in self.steps):
                    raise Unrecordable("a launch whose grid was never resolved")
                result["steps"] = self.steps
                result["snapshots"] = {ref: t.cpu() for ref, t in self.snapshots.items()}
            except Exception as e:
                result["error"] = f"{type(e).__name__}: {e}"[:300]
        self._alive.clear()
        return result

    # ---- internals --------------------------------------------------------------------------------
    def _fail(self, e: Exception) -> None:
        self.error = f"{type(e).__name__}: {e}"[:300]

    def _name(self, t: torch.Tensor, ref: str, snapshot: bool) -> None:
        storage = t.untyped_storage()
        if storage.nbytes() == 0 or storage.data_ptr() in self._refs:
            return
        self._refs[storage.data_ptr()] = ref
        self._alive.append(storage)
        if snapshot:
            self.snapshots[ref] = _bytes_of(storage)

    def _produced(self, t: torch.Tensor, ref: str) -> str:
        """The ref of an op's output: its input's (a view, an in-place op) or a new one."""
        storage = t.untyped_storage()
        if storage.nbytes() == 0:
            return "empty"
        if storage.data_ptr() not in self._refs:
            self._refs[storage.data_ptr()] = ref
            self._alive.append(storage)
        return self._refs[storage.data_ptr()]

    def _ref(self, t: torch.Tensor) -> str:
        storage = t.untyped_storage()
        if storage.nbytes() == 0:
            return "empty"
        if storage.data_ptr() not in self._refs:
            self._name(t, f"const:{len(self.snapshots)}", snapshot=True)
        return self._refs[storage.data_ptr()]

    def _view(self, t: torch.Tensor) -> dict:
        if type(t) not in (torch.Tensor, torch.nn.Parameter):
            raise Unrecordable(f"a tensor of type {type(t).__name__}")
        if t.layout != torch.strided:
            raise Unrecordable(f"a tensor with layout {t.layout}")
        return {"ref": self._ref(t), "dtype": dtype_name(t.dtype), "size": list(t.shape),
                "stride": list(t.stride()), "offset": int(t.storage_offset()), "device": t.device.type}

    def _encode(self, v):
        """An op argument as data: tensors as view descriptors, torch enums by name."""
        if isinstance(v, torch.Tensor):
            return {"tensor": self._view(v)}
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, (list, tuple)):
            return [self._encode(x) for x in v]
        if isinstance(v, torch.dtype):
            return {"dtype": dtype_name(v)}
        if isinstance(v, torch.device):
            return {"device": v.type}
        if type(v) in _ENUMS:
            return {_ENUMS[type(v)]: str(v).removeprefix("torch.")}
        raise Unrecordable(f"an argument of type {type(v).__name__}")

    def _encode_arg(self, v):
        """A launch argument: as `_encode`, plus Triton's constexpr wrappers and dtypes."""
        import triton.language as tl

        if isinstance(v, tl.constexpr):
            return self._encode_arg(v.value)
        if isinstance(v, tl.dtype):
            return {"tl_dtype": v.name}
        if isinstance(v, (list, tuple)):
            raise Unrecordable("a tuple argument to a kernel")
        return self._encode(v)

    def _encode_out(self, out):
        if isinstance(out, (list, tuple)):
            return {"seq": [self._encode_out(o) for o in out], "tuple": isinstance(out, tuple)}
        return self._encode(out)


def _tensors(v) -> list[torch.Tensor]:
    if isinstance(v, torch.Tensor):
        return [v]
    if isinstance(v, dict):
        v = list(v.values())
    return [t for x in v for t in _tensors(x)] if isinstance(v, (list, tuple)) else []


def _results(out) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _bytes_of(storage) -> torch.Tensor:
    return torch.empty(0, dtype=torch.uint8, device=storage.device).set_(storage).clone()


def _kernel_name(fn) -> str:
    inner = getattr(fn, "fn", None)
    name = getattr(inner, "__name__", None)
    if not isinstance(name, str):
        raise Unrecordable("a launch of something other than a @triton.jit function")
    return name


def _grid_tuple(grid) -> list[int]:
    """A resolved grid as a list of 1 to 3 ints."""
    dims = list(grid) if isinstance(grid, (list, tuple)) else [grid]
    if not 1 <= len(dims) <= 3:
        raise Unrecordable(f"a grid of {len(dims)} dimensions")
    return [int(getattr(d, "value", d)) for d in dims]
