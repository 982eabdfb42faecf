"""The fixture suite, checked without the verifier: correct candidates match their tasks through Triton's
CPU interpreter, adversarial candidates behave as their hack says, and the loader and manifest agree
with the files on disk.

All numerical checks run in one subprocess (`python -m verify.fixtures.direct_check --json` with
TRITON_INTERPRET=1, which must be set before triton is imported).
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from verify.candidate import check_program, extract_program
from verify.fixtures import (
    ADVERSARIAL_DIR,
    CANDIDATES_DIR,
    TASKS_DIR,
    adversarial_cases,
    adversarial_manifest,
    fixture_candidate,
    fixture_names,
    fixture_pairs,
    fixture_task,
)
from verify.fixtures.direct_check import NOT_RUN

STAGES = {"format", "compile", "faithful", "correct", "timed"}
# One adversarial candidate per hack the verifier must reject (DESIGN.md §4), plus isolation breakers.
REQUIRED_ERROR_CLASSES = {
    "torch_fallback", "no_kernel_launch", "swallowed_kernel_error", "subclasses_model",
    "output_aliases_input", "cached_output", "input_mutated", "side_stream", "monkey_patch",
    "tensor_subclass", "wrong_values", "shape_specialized", "nan_or_inf", "kernel_not_doing_work",
    "no_code_block", "syntax_error", "missing_modelnew", "no_triton_kernel", "crash", "timeout",
    "out_of_memory", "forbidden_construct",
}
RUNNABLE_ADVERSARIAL = sorted(c["name"] for c in adversarial_cases() if c["name"] not in NOT_RUN)


@pytest.fixture(scope="module")
def direct_results() -> dict[tuple[str, str], dict]:
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, "-m", "verify.fixtures.direct_check", "--device", "cpu", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert results, f"direct_check printed no results (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return {(r["kind"], r["name"]): r for r in results}


@pytest.mark.parametrize("name", fixture_names())
def test_correct_candidate_matches_task(direct_results, name):
    result = direct_results[("pair", name)]
    assert result["ok"], result["detail"]
    # ~0.03-0.16 s on an idle 2-core machine; the bound is loose so a loaded CI box does not flake
    assert result["forward_s"] < 2.0, f"{name}: {result['forward_s']:.3f} s per forward in the interpreter"


@pytest.mark.parametrize("name", RUNNABLE_ADVERSARIAL)
def test_adversarial_candidate_behaves_as_its_hack(direct_results, name):
    result = direct_results[("adversarial", name)]
    assert result["ok"], result["detail"]


def test_suite_covers_the_required_tasks_and_hacks():
    names = fixture_names()
    assert len(names) >= 12
    assert {"softmax", "log_softmax", "layernorm", "rmsnorm", "mean_dim", "matmul_bias_relu", "linear",
            "conv2d_bias_relu", "swiglu_fp16"} <= set(names)
    assert {fixture_task(n).dtype for n in names} == {"float32", "float16"}
    assert any(p.suffix == ".md" for p in CANDIDATES_DIR.iterdir()), "no LLM-style (.md) candidate"
    cases = adversarial_cases()
    assert len([c for c in cases if c["error_class"] not in {"crash", "timeout", "out_of_memory"}]) >= 16
    assert {c["error_class"] for c in cases} >= REQUIRED_ERROR_CLASSES


def test_loader_builds_tasks_with_metadata():
    pairs = fixture_pairs()
    assert [t.id for t, _ in pairs] == [f"fixtures/{n}" for n in fixture_names()]
    for task, text in pairs:
        assert task.source == "fixtures" and task.ops and task.level in (1, 2)
        assert text == fixture_candidate(task.id.split("/", 1)[1])
    with pytest.raises(KeyError, match="known fixtures"):
        fixture_task("no_such_task")


def test_manifest_matches_the_adversarial_files():
    files = {p.name for p in ADVERSARIAL_DIR.iterdir() if p.suffix in (".py", ".md")}
    manifest = adversarial_manifest()
    assert set(manifest) == files
    for file, entry in manifest.items():
        assert set(entry) == {"task", "stage", "error_class", "why"}, file
        assert entry["stage"] in STAGES, file
        assert (TASKS_DIR / f"{entry['task']}.py").is_file(), file


@pytest.mark.parametrize("name", fixture_names())
def test_correct_candidate_passes_static_checks(name):
    program = extract_program(fixture_candidate(name))
    check_program(program)
    tree = ast.parse(program)
    new = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ModelNew")
    task = ast.parse(fixture_task(name).code)
    model = next(n for n in task.body if isinstance(n, ast.ClassDef) and n.name == "Model")

    def signature(cls, method):
        fn = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == method)
        return [a.arg for a in fn.args.args]

    for method in ("__init__", "forward"):
        assert signature(new, method) == signature(model, method), f"{name}: {method} signature differs"
