"""Pooling lowerings compile for a GPU, not only in the interpreter. Triton's front end (Python AST to
Triton IR, for an sm_90 target) runs without a GPU, in a process without TRITON_INTERPRET. On the H100
the 2-d and 3-d pooling kernels were rejected (a name reused inside the window loop with another shape is
a loop-carried variable whose type changes) while the interpreter ran them correctly."""
import json
import os
import subprocess
import sys

import pytest

from synth.generate import graph_at
from synth.sampler import Sampler
from synth.solvers.propagation import PropagationSolver
from synth.teacher import lower
from synth.validate import Validator
from verify import extract_program

POOLS = ["avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d",
         "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"]

# pointers are fp32 (the programs are float32), every other runtime argument of these kernels is a size
COMPILE = r'''
import importlib.util, json, sys
import triton
from triton._C.libtriton import ir
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import CUDABackend
from triton.compiler import ASTSource
from triton.runtime.jit import JITFunction

target = GPUTarget("cuda", 90, 32)
backend = CUDABackend(target)
options = backend.parse_options({})
report = {}
for path in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location(f"prog_{len(report)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, fn in vars(module).items():
        if not isinstance(fn, JITFunction):
            continue
        signature = {p.name: "constexpr" if p.is_constexpr else ("*fp32" if p.name.endswith("_ptr") else "i32")
                     for p in fn.params}
        constexprs = {p.name: 16 for p in fn.params if p.is_constexpr}
        context = ir.context()
        ir.load_dialects(context)
        backend.load_dialects(context)
        try:
            ASTSource(fn=fn, signature=signature, constexprs=constexprs).make_ir(
                target, options, backend.get_codegen_implementation(options), backend.get_module_map(), context)
            report[f"{path}:{name}"] = None
        except Exception as e:
            report[f"{path}:{name}"] = str(e).strip().splitlines()[-1][:300]
print(json.dumps(report))
'''


def _program(op: str) -> str:
    sampler = Sampler(PropagationSolver(), ops=[op], max_dim=64, max_elements=32768, max_flops=2**21)
    for index in range(20):
        graph = graph_at(sampler, Validator(), 20260321, 1, index)
        if graph is not None:
            return extract_program(lower(graph))
    pytest.fail(f"no level-1 program with {op} synthesized")


def test_pooling_kernels_compile_for_sm90(tmp_path):
    paths = []
    for op in POOLS:
        path = tmp_path / f"{op}.py"
        path.write_text(_program(op))
        paths.append(str(path))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-c", COMPILE, *paths], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(report) >= len(POOLS), report
    failed = {k: v for k, v in report.items() if v is not None}
    assert not failed, failed
