"""generator=teacher: completions from synth's teacher for fixtures and synthetic tasks, declines for what the
frontend cannot trace, and real searches (best_of_n, fragments) and CLIs (search, bench) on CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import search
from search import prompts
from search.generators.teacher import TeacherDeclined, TeacherGenerator, task_from_messages, teacher_assembly
from search.strategies import BestOfN, FragmentSearch
from synth.ir import Graph
from synth.teacher import lower
from verify.candidate import extract_program
from verify.fixtures import fixture_task
from verify.task import Task

# torch.sort has no operator in synth's IR: it stays PyTorch (an opaque call), and nothing is left to lower
SORT_TASK = Task.from_code(
    "import torch\nimport torch.nn as nn\n\n\nclass Model(nn.Module):\n    def forward(self, x):\n"
    "        return torch.sort(x, dim=-1).values\n\n\ndef get_inputs():\n    return [torch.randn(4, 8)]\n"
    "\n\ndef get_init_inputs():\n    return []\n",
    id="sort",
)


def synthetic_graph() -> Graph:
    """gelu(x + p) then a softmax over the last dim: a program synth could have made."""
    g = Graph()
    x = g.input((6, 32))
    p = g.parameter((32,))
    g.outputs = [g.add("softmax", [g.add("gelu", [g.add("add", [x, p])])], dim=-1)]
    return g


def test_config_composes_to_the_teacher_generator():
    with initialize_config_dir(str(Path(search.__file__).parent / "conf"), version_base=None):
        cfg = compose("search", overrides=["generator=teacher", "task=x.py"])
    gen = instantiate(cfg.generator)
    assert isinstance(gen, TeacherGenerator) and gen.name == "teacher" and gen.thread_safe


def test_synthetic_task_gets_the_teacher_program_itself():
    g = synthetic_graph()
    messages = prompts.task_messages(g.to_task(id="synthetic"))
    assert task_from_messages(messages).code.strip() == g.to_code().strip()
    (texts,) = TeacherGenerator().generate([messages], n=1)
    assert len(texts) == 1
    head, _, _ = texts[0].partition("```")
    assert head.count(". ") <= 2 and "3 operators" in head
    assert extract_program(texts[0]).strip() == lower(g).strip()


def test_sort_then_scale_is_a_hybrid_with_the_sort_left_in_pytorch():
    made = teacher_assembly(
        Task.from_code(SORT_TASK.code.replace(".values", ".values * 2.0"), id="sort_scale")
    )
    assert made.ops == ["aten", "scale"] and made.torch_ops == ["aten.sort.default"] and made.hybrid
    assert "torch.ops.aten.sort.default(x)[0]" in made.text and "@triton.jit" in made.text


def test_unsupported_task_is_declined_or_raises():
    gen = TeacherGenerator()
    messages = prompts.task_messages(SORT_TASK)
    assert gen.generate([messages]) == [[]]
    (reason,) = gen.declined.values()
    assert "sort" in reason
    with pytest.raises(TeacherDeclined, match="sort"):
        TeacherGenerator(on_unsupported="error").generate([messages])
    with pytest.raises(ValueError, match="no fenced python block"):
        gen.generate([[{"role": "user", "content": "write a kernel"}]])
    with pytest.raises(ValueError, match="on_unsupported"):
        TeacherGenerator(on_unsupported="skip")


def test_best_of_n_accepts_wrapped_teacher_programs_for_fixtures(judge):
    gen = TeacherGenerator()
    for name in ("relu_scale_bias", "layernorm"):
        result = BestOfN(n=2).search(fixture_task(name), gen, judge)
        # two tilings (synth.teacher.tiling.SWEEP), both accepted; best_of_n keeps one
        assert result.samples == 2 and all(a.verdict.accepted for a in result.attempts), result.summary()
        assert result.best is not None
        # the fixture's own Model signature and weights: the teacher's module is wrapped, weights shared
        assert "_share(self.fragment0" in result.best_text
    declined = BestOfN(n=1).search(SORT_TASK, gen, judge)
    assert declined.attempts == [] and declined.best is None


def test_fragment_search_assembles_teacher_fragment_kernels(judge):
    task = fixture_task("swish_residual")
    result = FragmentSearch(max_len=2, whole_program=False).search(task, TeacherGenerator(), judge)
    fragments = [a for a in result.attempts if a.kind == "fragment"]
    assert len(fragments) == 5 and all(a.verdict.accepted for a in fragments)
    assert result.best is not None and result.best.kind == "assembly", result.summary()


def test_opaque_calls_stay_out_of_fragments_and_hybrids_verify_as_assemblies(judge):
    code = SORT_TASK.code.replace(
        "torch.sort(x, dim=-1).values", "torch.sort(torch.relu(x), dim=-1).values * 2.0"
    )
    task = Task.from_code(code, id="relu_sort_scale")
    gen = TeacherGenerator()
    result = FragmentSearch(max_len=3).search(task, gen, judge)
    spans = {a.span for a in result.attempts if a.kind == "fragment"}
    assert spans == {(0, 1), (2, 3)}, spans  # operator 1 (the sort) is in no fragment
    assert result.best is not None and result.best.kind in ("assembly", "whole"), result.summary()
    # best_of_n: the teacher's own hybrid program is verified as an assembly is (torch compute allowed)
    whole = BestOfN(n=1).search(task, gen, judge)
    assert whole.best is not None and gen.is_hybrid(whole.best.text), whole.summary()


def test_search_and_bench_clis_run_with_the_teacher(tmp_path):
    out = tmp_path / "search"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "search",
            "task=fixtures/tanh_gate",
            "strategy=best_of_n",
            "generator=teacher",
            f"out_dir={out}",
            "workers=2",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "search.json").read_text())["best"]["accepted"]
    bench_out = tmp_path / "bench"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "suite=fixtures",
            "suite.names=[softmax,gelu_scale]",
            "strategy=best_of_n",
            "strategy.n=1",
            "generator=teacher",
            f"out_dir={bench_out}",
            "workers=2",
            "wandb.enabled=false",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["task_id"]: r for r in map(json.loads, (bench_out / "results.jsonl").read_text().splitlines())}
    assert set(rows) == {"fixtures/softmax", "fixtures/gelu_scale"}
    assert all(r["accepted"] and r["generator"] == "teacher" for r in rows.values())


def test_n_samples_are_the_tiling_sweep(judge):
    """n > 1: distinct programs with the tile caps of synth.teacher.tiling.SWEEP, the default first; every
    one is accepted (on a GPU best_of_n keeps the fastest: a config sweep)."""
    from synth.teacher.tiling import SWEEP

    g = Graph()
    x = g.input((64, 1024))
    w = g.input((1024, 32))
    g.outputs = [g.add("relu", [g.add("matmul", [g.add("softmax", [x], dim=-1), w])])]
    task = Task.from_code(g.to_code(), id="sweep")
    messages = prompts.task_messages(task)
    gen = TeacherGenerator()
    texts = gen.generate([messages], n=len(SWEEP))[0]
    assert texts[0] == gen.generate([messages], n=1)[0][0] and len(set(texts)) == len(texts) >= 3
    programs = [extract_program(t) for t in texts]
    assert programs[0] == lower(g)
    assert "BLOCK_M = max(1, min(triton.next_power_of_2(n_rows), 16384 // BLOCK_N))" in programs[1]
    assert "BLOCK_M = min(32, max(16, triton.next_power_of_2(M)))" in programs[2]
    verdicts = judge.strict.verify_many([(task, t) for t in texts])
    assert all(v.accepted for v in verdicts), [(v.stage, v.error_class, v.message[:200]) for v in verdicts]
