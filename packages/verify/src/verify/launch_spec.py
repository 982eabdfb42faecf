"""A Triton launch as comparable data: the kernel, the value or dtype bound to each parameter, the grid.

The CPU interpreter runs a program with `TRITON_INTERPRET=1`; a GPU runs it without. A program that asks
which one it is (the environment variable, the kernel object's type, the tensors' device) can compute
honestly for the interpreter and do something else on a GPU, and a CPU verdict would say nothing about it.
Two processes launch the program's kernels with the same task and sizes: the replay (verify/replay.py, under
the interpreter, what the candidate's recorded forward ran) and the GPU front-end check
(verify/gpu_frontend.py, without the interpreter, what a GPU would compile). The judge compares the sets of
`launch_spec`s of the two: a kernel, a constexpr, a scalar, a dtype or a grid that differs is a program that
branches on where it runs (`interpreter_divergence`).

Only values that do not depend on the inputs' values may differ between honest runs: the front-end check
runs on other random inputs and an unseeded model, so a scalar computed from data would differ. Kernels are
launched with sizes and constants; a program that passes a data-dependent host scalar is rare and then
rejected with a message that names the parameter.
"""
from __future__ import annotations

import inspect

_SCALARS = (bool, int, float, str, type(None))


def launch_spec(fn, args: tuple, kwargs: dict, grid) -> tuple:
    """(kernel name, ((parameter, value token), ...), grid) of one launch of `fn` (a JITFunction or the
    interpreter's InterpretedFunction: both keep the Python function as `.fn`). `grid`: a tuple or the
    callable Triton calls with the bound arguments; resolved here.

    >>> import types, torch
    >>> def k(x_ptr, n, BLOCK=128): pass
    >>> launch_spec(types.SimpleNamespace(fn=k), (torch.zeros(4), 4), {"num_warps": 4},
    ...             lambda meta: (meta["n"] // 2,))
    ('k', (('BLOCK', '128'), ('n', '4'), ('x_ptr', 'tensor:float32')), (2, 1, 1))
    """
    inner = getattr(fn, "fn", fn)
    params = list(inspect.signature(inner).parameters.values())
    bound = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    bound.update(zip([p.name for p in params], args))
    names = {p.name for p in params}
    bound.update({k: v for k, v in kwargs.items() if k in names})
    if callable(grid):
        try:
            grid = grid(dict(bound))
        except Exception as e:
            grid = f"unresolved ({type(e).__name__})"
    return (getattr(inner, "__name__", "?"), tuple(sorted((k, value_token(v)) for k, v in bound.items())),
            grid_tuple(grid))


def value_token(v) -> str:
    """A launch argument as a string both processes agree on: tensors by dtype (their values and addresses
    differ), Triton dtypes by name, scalars by repr, anything else by type.

    >>> import torch
    >>> value_token(torch.ones(2, dtype=torch.float16)), value_token(True), value_token(0.5)
    ('tensor:float16', 'True', '0.5')
    """
    import torch

    value = getattr(v, "value", v) if type(v).__name__ == "constexpr" else v
    if isinstance(value, torch.Tensor):
        return f"tensor:{str(value.dtype).removeprefix('torch.')}"
    if type(value).__name__ == "dtype" and hasattr(value, "name"):  # triton.language.dtype
        return f"tl:{value.name}"
    if isinstance(value, _SCALARS):
        return repr(value)
    return f"<{type(value).__name__}>"


def grid_tuple(grid):
    """A launch grid as three ints (Triton pads missing dimensions with 1), or a string if it is not one.

    >>> grid_tuple((4,)), grid_tuple([2, 3, 1]), grid_tuple("unresolved")
    ((4, 1, 1), (2, 3, 1), 'unresolved')
    """
    if isinstance(grid, str):
        return grid
    try:
        dims = tuple(int(g) for g in grid)
    except Exception:
        return f"<{type(grid).__name__}>"
    return dims + (1,) * (3 - len(dims)) if len(dims) <= 3 else dims


def as_specs(items) -> set:
    """Launch specs back from plain data (JSON or a payload turns their tuples into lists).

    >>> as_specs([["k", [["n", "4"]], [2, 1, 1]]]) == {("k", (("n", "4"),), (2, 1, 1))}
    True
    """
    return {(str(name), tuple((str(k), str(v)) for k, v in values),
             grid if isinstance(grid, str) else tuple(int(g) for g in grid)) for name, values, grid in items}


def describe_difference(interpreted: set, compiled: set, limit: int = 2) -> str:
    """What differs between the launch specs under the interpreter and without it, for a message.

    >>> a = {("k", (("CLAMP", "True"),), (1, 1, 1))}
    >>> b = {("k", (("CLAMP", "False"),), (1, 1, 1))}
    >>> describe_difference(a, b)
    'k(CLAMP=True) grid (1, 1, 1) only under the interpreter; k(CLAMP=False) grid (1, 1, 1) only without it'
    """
    def show(spec) -> str:
        name, values, grid = spec
        tokens = ", ".join(f"{k}={v}" for k, v in values if not v.startswith("tensor:"))
        return f"{name}({tokens}) grid {grid}"

    parts = []
    only_interp = sorted(interpreted - compiled, key=repr)[:limit]
    only_gpu = sorted(compiled - interpreted, key=repr)[:limit]
    if only_interp:
        parts.append("; ".join(map(show, only_interp)) + " only under the interpreter")
    if only_gpu:
        parts.append("; ".join(map(show, only_gpu)) + " only without it")
    return "; ".join(parts)
