"""KernelBench through the frontend and the teacher, on CPU (the copy in ../shared/KernelBench; skipped
when it is absent).

(a) Every level-1/2/3 task traces and lowers (`teacher_assembly`: kernels where the teacher lowers, opaque
    ATen calls left in PyTorch) into a program whose ModelNew builds, and the counts stay at or above the floors
    measured when this test was written. Tasks are traced with their size constants shrunk (`shrunk`),
    since KernelBench's own sizes allocate gigabytes on CPU; the operator graph does not depend on them.
(b) A deterministic spread of the lowered level-1/2 programs (every SAMPLE_EVERY-th task: all 200 do not fit
    in CI's ten minutes on two cores under Triton's interpreter: these 10 took 10.7 min on two cores shared
    with other jobs) is verified end to end by the CPU verifier at those shrunk sizes, hybrids with
    `allow_torch_compute`, the others strictly. Every program verified must be accepted; one whose
    verification times out under the interpreter is skipped, and at least half the sample must be verified.
"""

from __future__ import annotations

import ast
import importlib.util
import operator
from pathlib import Path

import pytest

from search.frontend import UnsupportedConstruct
from search.generators.teacher import TeacherProgram, teacher_assembly
from verify import Verifier, VerifyConfig
from verify.inputs import shape_variants
from verify.task import Task, TaskError

KERNELBENCH = Path(__file__).parents[2].parent / "shared/KernelBench"
# lowered programs per level when this test was written (2026-12-04; a change must not go under them)
FLOORS = {1: 97, 2: 100, 3: 42}
SAMPLE_EVERY = 20
# shrunk size constants (see `shrunk`)
SHRINK, SMALL = 16, 16

pytestmark = pytest.mark.skipif(not KERNELBENCH.is_dir(), reason=f"no KernelBench checkout at {KERNELBENCH}")


def shrunk(code: str) -> str:
    """The task with every module-level int constant v > SMALL (sizes, channels, features; not kernel sizes or
    strides; `N = 2048 * 2` counts) set to max(SMALL, v // SHRINK). Unlike the verifier's shape-variant trial
    (`shape_variants`: the batch-like constants halved and made odd) this also shrinks the Model's own sizes,
    so that Triton's interpreter runs a forward in seconds; a task whose constraints it breaks falls back
    (see `lowered`)."""
    tree = ast.parse(code)
    for node in tree.body:
        value = _int_literal(node.value) if isinstance(node, ast.Assign) else None
        if value is not None and value > SMALL:
            node.value = ast.Constant(max(SMALL, value // SHRINK))
    return ast.unparse(tree) + "\n"


_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}


def _int_literal(expr: ast.expr) -> int | None:
    """The value of an int literal or of arithmetic on int literals; None for anything else."""
    if isinstance(expr, ast.Constant):
        return expr.value if type(expr.value) is int else None
    if isinstance(expr, ast.BinOp) and type(expr.op) in _ARITHMETIC:
        left, right = _int_literal(expr.left), _int_literal(expr.right)
        if left is not None and right is not None:
            return _ARITHMETIC[type(expr.op)](left, right)
    return None


def tasks(level: int) -> list[Path]:
    return sorted((KERNELBENCH / f"level{level}").glob("*.py"), key=lambda p: int(p.name.split("_")[0]))


def builds(task: Task, program: str, tmp_path: Path) -> None:
    """The program imports (Triton's jit needs a file) and its ModelNew builds from the task's init inputs."""
    path = tmp_path / "candidate_kb.py"
    path.write_text(program)
    spec = importlib.util.spec_from_file_location("candidate_kb", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    namespace: dict = {"__name__": "task"}
    exec(compile(task.code, task.id, "exec"), namespace)  # noqa: S102 - KernelBench's own reference code
    module.ModelNew(*namespace["get_init_inputs"]())


def lowered(path: Path, level: int, full_size: bool = True) -> tuple[Task, TeacherProgram]:
    """The task and the teacher's program for it: shrunk, else with the verifier's shape-variant sizes,
    else (`full_size`) as it is, whichever first traces (a shrink can leave a pooling window bigger than its
    input, or channels that no longer divide into groups)."""
    code = path.read_text()
    variants = [shrunk(code), *shape_variants(code, 1)] + ([code] if full_size else [])
    variants = list(dict.fromkeys(variants))
    for variant in variants:
        task = Task.from_code(variant, id=f"kb{level}/{path.stem}", level=level)
        try:
            return task, teacher_assembly(task)
        except (TaskError, UnsupportedConstruct) as e:
            if variant == variants[-1] or not (isinstance(e, TaskError) or "torch.export" in str(e)):
                raise
    raise AssertionError("unreachable: the last variant raises")


def lower_level(level: int, tmp_path: Path) -> tuple[dict, dict]:
    """({task file: TeacherProgram}, {task file: why not}) for one level."""
    made, failed = {}, {}
    for path in tasks(level):
        try:
            task, made[path.name] = lowered(path, level)
            builds(task, made[path.name].text, tmp_path)
        except Exception as e:  # noqa: BLE001 - a coverage report: every reason is listed
            made.pop(path.name, None)
            failed[path.name] = f"{type(e).__name__}: {str(e)[:200]}"
    return made, failed


@pytest.mark.parametrize("level", [1, 2, 3])
def test_every_task_traces_and_lowers(level, tmp_path):
    made, failed = lower_level(level, tmp_path)
    hybrids = sum(p.hybrid for p in made.values())
    print(f"level {level}: {len(made)}/{len(made) + len(failed)} lowered ({hybrids} hybrids)")
    assert len(made) >= FLOORS[level], failed


@pytest.mark.parametrize("level", [1, 2])
def test_a_spread_of_lowered_programs_verifies(level, tmp_path):
    config = {"device": "cpu", "trials": 2, "shape_variants": 0, "timing": False}
    picked = tasks(level)[::SAMPLE_EVERY]
    rejected, checked = {}, 0
    with (
        Verifier(VerifyConfig(**config), workers=1) as strict,
        Verifier(VerifyConfig(**config, allow_torch_compute=True), workers=1) as hybrid,
    ):
        for path in picked:
            try:
                task, made = lowered(path, level, full_size=False)
            except Exception as e:  # noqa: BLE001 - coverage is test (a)'s; this checks what lowers
                print(f"{path.name}: not lowered ({type(e).__name__})")
                continue
            try:
                verdict = (hybrid if made.hybrid else strict).verify(task, made.text)
            except TaskError as e:  # the reference itself is too slow for the interpreter: not a verdict
                print(f"{path.name}: skipped ({str(e)[:120]})")
                continue
            if verdict.error_class == "timeout":  # the interpreter on a loaded machine, not the program
                print(f"{path.name}: skipped (verification timed out at {verdict.stage})")
                continue
            checked += 1
            print(f"{path.name}: {'accepted' if verdict.accepted else verdict.stage}")
            if not verdict.accepted:
                rejected[path.name] = f"{verdict.stage}/{verdict.error_class}: {verdict.message[:200]}"
    assert checked >= len(picked) // 2 and not rejected, (checked, rejected)
