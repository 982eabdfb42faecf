"""Does a program's Triton code compile for a GPU? Checked on a machine without one.

Triton's interpreter runs some kernels that the GPU compiler rejects, such as a loop-carried variable
whose shape changes inside the loop. The compiler's front end (Python AST to Triton IR, for an sm_90
target) needs no GPU, but it does not work in a process with `TRITON_INTERPRET=1`. So the check runs in
its own process without the interpreter. There `ModelNew.forward` runs on the task's CPU inputs, and
every kernel launch is replaced by a front-end compile with that launch's argument types. No kernel
runs, so values computed after a launch are garbage, but every launch the forward makes is reached. The
launches of the forward's second call are also reported as launch_specs (verify/launch_spec.py): the
judge compares them with the replay's under the interpreter, so a program that runs differently when the
interpreter is off is rejected (`interpreter_divergence`).

    python -m verify.gpu_frontend TASK.py PROGRAM.py [TASK.py PROGRAM.py ...]   # one JSON list of reports
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

_DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64", "int8": "i8",
           "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8", "bool": "i1"}


def front_end_reports(pairs, timeout_s: float = 600.0) -> list[dict]:
    """Per (task code, program source) pair: {"kernels": distinct launches compiled, "errors": ["kernel:
    reason"], "forward_error": str | None, "launches": the launch_specs of the second forward (or of the
    one that raised)}. One process for all pairs."""
    with tempfile.TemporaryDirectory(prefix="drt_frontend_") as tmp:
        paths = []
        for i, (task_code, program) in enumerate(pairs):
            for name, code in ((f"task_{i}.py", task_code), (f"program_{i}.py", program)):
                paths.append(os.path.join(tmp, name))
                with open(paths[-1], "w") as f:
                    f.write(code)
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        run = subprocess.run([sys.executable, "-m", "verify.gpu_frontend", *paths], env=env, cwd=tmp,
                             capture_output=True, text=True, timeout=timeout_s)
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        raise RuntimeError(f"the front-end check did not finish (exit {run.returncode}): {run.stderr[-800:]}")
    return json.loads(lines[-1])


def front_end_report(task_code: str, program: str, timeout_s: float = 300.0) -> dict:
    """front_end_reports for one program."""
    return front_end_reports([(task_code, program)], timeout_s)[0]


def _arg_type(value):
    import torch

    if isinstance(value, torch.Tensor):
        return "*" + _DTYPES.get(str(value.dtype).replace("torch.", ""), "fp32")
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -2**31 <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    return None


def _compile(fn, args: tuple, kwargs: dict) -> str | None:
    """The front end's compilation error for launching JITFunction `fn` with these arguments, or None (also
    when an argument's type is not one this check models, or the check itself breaks: only a real
    compilation error in the kernel may reject a program)."""
    from triton._C.libtriton import ir
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import CUDABackend
    from triton.compiler import ASTSource
    from triton.compiler.errors import CompilationError

    values = dict(zip([p.name for p in fn.params], args))
    values.update({k: v for k, v in kwargs.items() if k in {p.name for p in fn.params}})
    signature, constexprs = {}, {}
    for p in fn.params:
        v = values.get(p.name, p.default)
        kind = None if p.is_constexpr or v is None else _arg_type(v)
        if kind is None and not (p.is_constexpr or v is None):
            return None  # e.g. a numpy scalar: not modelled here
        signature[p.name] = kind or "constexpr"
        if kind is None:
            constexprs[p.name] = v
    target = GPUTarget("cuda", 90, 32)
    backend = CUDABackend(target)
    options = backend.parse_options({})
    context = ir.context()
    ir.load_dialects(context)
    backend.load_dialects(context)
    try:
        ASTSource(fn=fn, signature=signature, constexprs=constexprs).make_ir(
            target, options, backend.get_codegen_implementation(options), backend.get_module_map(), context)
    except CompilationError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        return (f"{lines[0]} {lines[-1]}"[:500] if len(lines) > 1
                else (lines[0] if lines else type(e).__name__))
    except Exception:
        return None
    return None


def _install() -> dict:
    """Replace every kernel launch in this process by a front-end compile; returns {launch key: (kernel
    name, error or None)}, filled as the forward launches, and under the key `_SPECS` the set of
    launch_specs of the calls since it was last cleared. Only for a process of its own (a forked job or
    the CLI): launches never run afterwards."""
    from triton.runtime.jit import JITFunction

    from verify.launch_spec import launch_spec

    seen: dict = {_SPECS: set()}

    def run(self, *args, grid, warmup, **kwargs):
        key = (self.fn.__qualname__, tuple(_arg_type(a) or repr(a) for a in args),
               tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
        if key not in seen:
            seen[key] = (self.fn.__name__, _compile(self, args, kwargs))
        seen[_SPECS].add(launch_spec(self, args, kwargs, grid))
        return None

    JITFunction.run = run
    return seen


# the key of `_install`'s dict that holds the launch specs (no launch key is a string)
_SPECS = "specs"


def _check(seen: dict, task_path: str, program_path: str, tag: str) -> dict:
    # in the checking process only (torch and triton are imported there, without the interpreter)
    import torch

    from verify.inputs import load_module

    seen.clear()
    seen[_SPECS] = set()
    forward_error = None
    try:
        task = load_module(task_path, f"_frontend_task_{tag}")
        program = load_module(program_path, f"_frontend_program_{tag}")
        model = program.ModelNew(*task.get_init_inputs())
        inputs = task.get_inputs()
        # twice, as the verifier records a later call: one-time work of a first call is in neither
        for _ in range(2):
            seen[_SPECS].clear()
            with torch.no_grad():
                model(*inputs)
    except Exception as e:  # values after a launch are garbage here; what was launched is still checked
        forward_error = f"{type(e).__name__}: {e}"[:300]
    specs = seen.pop(_SPECS)
    errors = [f"{name}: {err}" for name, err in seen.values() if err]
    return {"kernels": len(seen), "errors": errors, "forward_error": forward_error,
            "launches": sorted(([n, [list(p) for p in values], g if isinstance(g, str) else list(g)]
                                for n, values, g in specs), key=repr)}


def frontend_job(job: dict) -> dict:
    """The check as a sandbox job (verify.zygote, a worker server without the interpreter): job["code"]
    is the task, job["program"] the candidate program."""
    with tempfile.TemporaryDirectory(prefix="drt_frontend_") as tmp:
        paths = []
        for name in ("code", "program"):
            paths.append(os.path.join(tmp, f"{name}.py"))
            with open(paths[-1], "w") as f:
                f.write(job[name])
        return _check(_install(), *paths, tag=str(os.getpid()))


def _main(paths: list[str]) -> None:
    seen = _install()
    print(json.dumps([_check(seen, paths[i], paths[i + 1], str(i)) for i in range(0, len(paths), 2)]))


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        sys.exit("run without TRITON_INTERPRET: the front end does not work in interpreter mode")
    _main(sys.argv[1:])
