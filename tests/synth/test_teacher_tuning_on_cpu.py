"""The GEMM tuning table and the 3xTF32 default: the committed table loads and covers every bucket, the
default lowering writes the table's tiling (tf32x3, Hopper-sized tiles for large products, smaller ones for
small products, grouped order), the programs are right in the interpreter (ragged M / N / K, batches, fused
epilogue), 3xTF32's arithmetic (emulated) stays inside the verifier's fp32 tolerance up to K=8192 while
plain TF32 does not, the tuner skips cleanly without CUDA, and the max-autotune baseline column and the
missing-speedup reason reach the bench rows."""
import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from synth.ir import Graph
from synth.teacher import lower, tuning
from synth.teacher.tiling import SWEEP, Tiling
from verify.inputs import load_module

ROOT = Path(__file__).resolve().parents[2]


def _tuner():
    spec = importlib.util.spec_from_file_location("tune_gemm", ROOT / "benchmarks/tune/tune_gemm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _linear_graph(m, k, n, epilogue=True):
    g = Graph()
    y = g.add("linear", [g.input((m, k))], in_features=k, out_features=n)
    if epilogue:
        y = g.add("relu", [g.add("add", [y, g.parameter((n,))])])
    g.outputs = [y]
    return g


def _run(graph, program, tmp_path):
    """(reference outputs, candidate outputs) of `program` for `graph` in the interpreter."""
    (tmp_path / "task.py").write_text(graph.to_task(id="t", level=1).code)
    (tmp_path / "program.py").write_text(program)
    tag = str(abs(hash(program)))
    task = load_module(tmp_path / "task.py", f"_tt_task_{tag}")
    cand = load_module(tmp_path / "program.py", f"_tt_prog_{tag}")
    torch.manual_seed(0)
    model = task.Model(*task.get_init_inputs())
    new = cand.ModelNew(*task.get_init_inputs())
    new.load_state_dict(model.state_dict())
    xs = task.get_inputs()
    with torch.no_grad():
        ref, out = model(*xs), new(*xs)
    return (ref,) if isinstance(ref, torch.Tensor) else ref, (out,) if isinstance(out, torch.Tensor) else out


def test_committed_table_loads_and_covers_every_bucket():
    table = json.loads(tuning.TABLE_PATH.read_text())
    assert table["source"]  # provenance: "seeded by hand, not yet measured" until tune_gemm.py rewrites it
    for bucket in tuning.BUCKETS:
        for kind in tuning.KINDS:
            cfg = tuning.gemm_config(kind, bucket, table)
            assert cfg.precision == "tf32x3" and cfg.smem_bytes() <= 228 * 1024, (kind, bucket, cfg)
    large = tuning.gemm_config("linear", "large", table)
    assert (large.block_m, large.num_warps) in ((128, 8), (256, 8)) and large.group_m > 1
    assert large.num_stages in (3, 4) and large.block_n >= 128 and large.block_k in (32, 64)
    for bucket in tuning.BUCKETS:
        assert tuning.candidates(bucket) and all(c.smem_bytes() <= 200 * 1024
                                                 for c in tuning.candidates(bucket))


@pytest.mark.parametrize("dims, bucket", [((1, 1024, 8192, 8192), "large"), ((1, 16384, 4096, 4096), "large"),
                                          ((1, 128, 16384, 16384), "medium"), ((1, 256, 256, 8192), "small"),
                                          ((1, 64, 32, 1024), "thin"), ((128, 512, 512, 64), "large")])
def test_buckets(dims, bucket):
    assert tuning.gemm_bucket(*dims) == bucket


def test_default_lowering_writes_the_tables_tiling():
    large = lower(_linear_graph(1024, 8192, 8192))
    cfg = tuning.gemm_config("linear", "large")
    assert 'input_precision="tf32x3"' in large and 'input_precision="ieee"' not in large
    assert f"BLOCK_M = min({cfg.block_m}, " in large and f"BLOCK_N = min({cfg.block_n}, " in large
    assert f"GROUP_M={cfg.group_m}" in large and f"num_warps={cfg.num_warps}" in large
    assert f"num_stages={cfg.num_stages}" in large and "linear/large of the tuning table" in large
    small = lower(_linear_graph(48, 40, 24))
    assert "linear/thin" in small and "BLOCK_M = min(64, " in small
    # a sweep tiling overrides the table field by field
    exact = lower(_linear_graph(1024, 8192, 8192), Tiling(matmul_mn=32, dot_precision="ieee"))
    assert 'input_precision="ieee"' in exact and "BLOCK_M = min(32, " in exact
    assert f"num_warps={cfg.num_warps}" in exact
    assert SWEEP[0] == Tiling() and any(t.dot_precision == "ieee" for t in SWEEP)


def test_other_table_through_tiling(tmp_path):
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"source": "test", "gemm": {"gemm/large": tuning.GemmConfig(
        128, 256, 64, 8, 4, 4, "tf32x3").to_dict()}}))
    program = lower(_linear_graph(1024, 8192, 8192), Tiling(table=str(path)))
    assert "BLOCK_N = min(256, " in program and "BLOCK_K = min(64, " in program and "GROUP_M=4" in program
    with pytest.raises(ValueError, match="power of two"):
        tuning.GemmConfig(96, 128, 32)


@pytest.mark.parametrize("table", [None, "small_tiles"])
def test_tf32x3_programs_are_right_in_the_interpreter(tmp_path, table):
    """Ragged M / N / K (wrapped rows and columns, the K mask), a batched product, grouped order over several
    row groups, a fused bias + epilogue: the default tf32x3 programs (and 16x16 tiles with GROUP_M=2, so
    that several groups and edge tiles occur) match PyTorch."""
    tiling = None
    if table:
        path = tmp_path / "table.json"
        cfg = tuning.GemmConfig(16, 16, 16, 4, 3, 2, "tf32x3").to_dict()
        path.write_text(json.dumps({"source": "test", "gemm": {f"gemm/{b}": cfg for b in tuning.BUCKETS}}))
        tiling = Tiling(table=str(path))
    g = Graph()
    h = g.add("relu", [g.add("add", [g.add("linear", [g.input((70, 40))], in_features=40, out_features=37),
                                     g.parameter((37,))])])
    b = g.add("bmm", [g.input((3, 33, 48)), g.input((3, 48, 20))])
    m = g.add("matmul", [g.input((65, 64)), g.input((64, 66))])
    g.outputs = [h, b, m]
    program = lower(g, tiling)
    assert program.count('input_precision="tf32x3"') == 3
    refs, outs = _run(g, program, tmp_path)
    for ref, out in zip(refs, outs):
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_tf32x3_error_within_the_fp32_tolerance_tf32_not():
    """3xTF32 emulated as the tensor cores compute it (the interpreter runs every tl.dot as exact fp32), on
    N(0,1) inputs up to K=8192, judged by the verifier's own comparison: inside the fp32 tolerance with room
    to spare; plain TF32 is tens of times outside it."""
    tuner = _tuner()
    rows = tuner.error_check(sizes=((64, 64, 512), (64, 64, 4096), (32, 32, 8192)))
    by = {(r["K"], r["precision"]): r for r in rows}
    for k in (512, 4096, 8192):
        assert by[(k, "tf32x3")]["ok"] and by[(k, "tf32x3")]["worst_share_of_tolerance"] < 0.5, \
            by[(k, "tf32x3")]
        assert by[(k, "ieee")]["ok"]
        assert not by[(k, "tf32")]["ok"] and by[(k, "tf32")]["worst_share_of_tolerance"] > 10
    # the emulation is exact arithmetic where it should be: the TF32 split loses nothing on small integers
    a, b = torch.randint(-8, 8, (16, 64)).float(), torch.randint(-8, 8, (64, 16)).float()
    assert torch.equal(tuner.emulate_dot(a, b, "tf32x3"), a @ b)


def test_tuner_without_cuda_skips_and_lists(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the tuner would tune")
    tuner = _tuner()
    out = tmp_path / "table.json"
    assert tuner.main(["--out", str(out)]) == 0
    assert "no CUDA device" in capsys.readouterr().out and not out.exists()
    assert tuner.main(["--list"]) == 0
    assert "linear/large" in capsys.readouterr().out


def test_tuner_lowers_candidates_through_the_teacher():
    tuner = _tuner()
    programs = tuner.Programs()
    cfg = tuning.GemmConfig(32, 64, 16, 4, 2, 4, "tf32x3")
    os.environ.setdefault("TRITON_INTERPRET", "1")
    ref, new, program = programs.model("linear", (1, 40, 72, 24), cfg, "cpu")
    assert "BLOCK_M = min(32, " in program and "BLOCK_N = min(64, " in program and "GROUP_M=4" in program
    x = torch.randn(40, 24)
    with torch.no_grad():
        torch.testing.assert_close(new(x), ref(x), atol=1e-4, rtol=1e-4)


def test_max_autotune_column_and_missing_speedup_reason():
    from bench.columns import CSV_FIELDS, verdict_columns
    from bench.metrics import summarize
    from verify.config import _NOT_IN_DIGEST, VerifyConfig
    from verify.verdict import Timing, Verdict

    assert {"speedup_compile_max", "compiled_max_ms", "speedup_missing_reason"} <= set(CSV_FIELDS)
    # off by default, and the config digest (verify cache, bench run keys) is the one from before the field
    assert VerifyConfig().compile_max_autotune is False
    before = {k: v for k, v in VerifyConfig().to_dict().items()
              if k not in _NOT_IN_DIGEST and k != "compile_max_autotune"}
    assert (VerifyConfig().digest()
            == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16])
    assert VerifyConfig().digest() != VerifyConfig(compile_max_autotune=True).digest()
    v = Verdict()
    for stage in ("format", "compile", "faithful", "correct"):
        v.passed(stage)
    v.speedup_missing_reason = "not timed: the CPU interpreter (timing needs a GPU)"
    cols = verdict_columns(v)
    assert cols["speedup_compile_max"] is None and cols["compiled_max_ms"] is None
    assert cols["speedup_missing_reason"].startswith("not timed")
    t = Timing(1.0, 0.1, 0.9, 1.2, 20)
    v2 = Verdict.from_dict({**v.to_dict(), "compiled_max": vars(t), "speedup_compile_max": 0.8,
                            "speedup_eager": 1.3, "speedup_missing_reason": None, "candidate": vars(t)})
    assert verdict_columns(v2) == {"speedup_compile_max": 0.8, "compiled_max_ms": 1.0,
                                   "speedup_missing_reason": None}
    rows = [{"accepted": True, "speedup_eager": 1.3, "speedup_compile": 1.1, **verdict_columns(v2)},
            {"accepted": True, **verdict_columns(v)}]
    s = summarize(rows)
    assert s["geomean_speedup_compile_max"] == pytest.approx(0.8) and s["timed_compile_max"] == 1
    assert s["untimed_reasons"] == {"not timed: the CPU interpreter (timing needs a GPU)": 1}
    assert "geomean_speedup_compile_max" not in summarize([{"accepted": True, "speedup_eager": 1.0}])


def test_interpreter_verdict_says_why_untimed():
    from verify import Verifier, VerifyConfig

    g = _linear_graph(20, 24, 18)
    with Verifier(VerifyConfig(trials=5, shape_variants=0, timing=True), workers=1, cache=False) as verifier:
        verdict = verifier.verify(g.to_task(id="teacher_tuning_linear", level=6), lower(g))
    assert verdict.accepted, verdict.summary()
    assert (verdict.speedup_eager is None and verdict.compiled_max is None
            and verdict.speedup_compile_max is None)
    assert verdict.speedup_missing_reason == "not timed: the CPU interpreter (timing needs a GPU)"


def test_tuner_loop_writes_a_table_the_teacher_reads(tmp_path, capsys):
    """The tuning loop end to end in the interpreter (--cpu-smoke: tiny products, two configs, wall-clock
    times): it writes a table with provenance and measurements, a rerun skips what is measured, and the
    teacher lowers with the written table."""
    tuner = _tuner()
    out = tmp_path / "table.json"
    assert tuner.main(["--cpu-smoke", "--out", str(out), "--kinds", "linear", "--buckets", "large"]) == 0
    table = json.loads(out.read_text())
    assert table["source"].startswith("measured by benchmarks/tune/tune_gemm.py")
    assert "still seeded by hand" in table["source"] and "linear/large" in table["measurements"]
    assert table["gemm"]["linear/large"] in [c.to_dict() for c in tuning.candidates("large")[:2]] + [
        tuning.SEED["gemm/large"].to_dict()]
    assert tuner.main(["--cpu-smoke", "--out", str(out), "--kinds", "linear", "--buckets", "large"]) == 0
    assert "measured already" in capsys.readouterr().out
    best = tuning.GemmConfig.from_dict(table["gemm"]["linear/large"])
    program = lower(_linear_graph(1024, 8192, 8192), Tiling(table=str(out)))
    assert f"BLOCK_M = min({best.block_m}, " in program and f"num_stages={best.num_stages}" in program


def test_max_autotune_baseline_compiles_inside_a_shared_hold(tmp_path):
    """torch.compile max-autotune-no-cudagraphs (verify.compile_baseline, the second baseline) autotunes on
    the device while compiling, so its compile waits for a timer's exclusive hold; its output is the
    model's."""
    import threading
    import time

    from verify.compile_baseline import MAX_AUTOTUNE, LockedCompile
    from verify.gpulock import GpuLock

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU())
    inputs = (torch.randn(4, 16),)
    lock = GpuLock(str(tmp_path / "device.lock"))
    # Inductor imported and warm: tracing is quick
    LockedCompile(torch.nn.Linear(16, 4), lock).warm_up(*inputs)
    compiled = LockedCompile(model, lock, MAX_AUTOTUNE)
    done = {}
    with lock.exclusive():
        worker = threading.Thread(target=lambda: done.setdefault("out", compiled.warm_up(*inputs)),
                                  daemon=True)
        worker.start()
        time.sleep(3.0)
        assert compiled.graphs == 0 and "out" not in done, "compiled while a timer held the device"
        assert worker.is_alive()
    worker.join(300)
    assert not worker.is_alive() and compiled.graphs == 1
    torch.testing.assert_close(done["out"], model(*inputs))
