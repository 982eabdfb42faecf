"""Tune the teacher's GEMM tiling table on a GPU; check 3xTF32's accuracy against the verifier's tolerance.

    python benchmarks/tune/tune_gemm.py --out packages/synth/src/synth/teacher/tuning_h200.json   # CUDA
    python benchmarks/tune/tune_gemm.py --out ... --kinds linear --buckets large       # a part (merged)
    python benchmarks/tune/tune_gemm.py --compile-check candidates   # no GPU: sm_90 compile, shared memory
    python benchmarks/tune/tune_gemm.py --error-check    # CPU or CUDA: 3xTF32 error vs the fp32 tolerance
    python benchmarks/tune/tune_gemm.py --list           # buckets, shapes and candidates, no timing

Tuning: for every kind (linear, matmul, bmm) and shape bucket of `synth.teacher.tuning`, every candidate
config is lowered by the teacher itself (a one-operator graph, `lower(graph, Tiling(table=<the candidate>))`,
so the timed program is exactly what the teacher writes), checked against the fp32 reference with the
verifier's comparison (`verify.compare`, fp32 atol/rtol and error floor of `VerifyConfig`), and timed with
`triton.testing.do_bench` (median) on the bucket's representative shapes; the fastest accepted config (the
geometric mean over the shapes) becomes the entry. PyTorch eager (cuBLAS fp32, TF32 off) is timed beside.
The table is rewritten after every bucket, so a run cut short keeps what it measured, and a rerun skips
the entries it has measurements for (--retune: time them again); entries not tuned keep their value.
Without CUDA the tuning says so and writes nothing (exit 0).

Error check: the 3xTF32 arithmetic of Triton's `input_precision="tf32x3"` (F32DotTC: a_big = tf32(a)
rounded to nearest, a_small = a - a_big read by the tensor core as TF32 (low 13 bits dropped);
big*big + (small*big + big*small), per BLOCK_K step, accumulated in fp32) emulated in float64 on the CPU, on
N(0,1) inputs up to K=8192, compared as the verifier compares. The CPU interpreter cannot show it: it runs
every tl.dot as an exact fp32 np.matmul whatever input_precision says. On CUDA the real kernels are also run.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from synth.teacher import tuning
from synth.teacher.tuning import BMM_SHAPES, BUCKETS, KINDS, SHAPES, GemmConfig


def _tolerance():
    from verify.config import VerifyConfig

    c = VerifyConfig()
    return c.atol["float32"], c.rtol["float32"], c.error_floor_factor


# --------------------------------------------------------------------------------------------------------
# 3xTF32 emulation and the verifier's comparison
def _tf32_rna(x: torch.Tensor) -> torch.Tensor:
    """fp32 -> TF32 (10 mantissa bits), round to nearest, ties away from zero (cvt.rna.tf32.f32)."""
    bits = x.float().contiguous().view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


def _tf32_trunc(x: torch.Tensor) -> torch.Tensor:
    """An fp32 register read as TF32 by the tensor core: the low 13 mantissa bits ignored."""
    return (x.float().contiguous().view(torch.int32) & ~0x1FFF).view(torch.float32)


def emulate_dot(a: torch.Tensor, b: torch.Tensor, precision: str = "tf32x3",
                block_k: int = 32) -> torch.Tensor:
    """a (M, K) @ b (K, N) in fp32 as the teacher's kernel computes it with tl.dot(input_precision=...):
    per BLOCK_K step each tensor-core product exact (float64) then rounded to fp32, accumulated in fp32."""
    a, b = a.float(), b.float()
    acc = torch.zeros(a.shape[0], b.shape[1], dtype=torch.float32)
    for k0 in range(0, a.shape[1], block_k):
        x, y = a[:, k0:k0 + block_k], b[k0:k0 + block_k]
        if precision == "ieee":
            acc = acc + (x.double() @ y.double()).float()
            continue
        xb, yb = _tf32_rna(x), _tf32_rna(y)
        if precision == "tf32":
            acc = acc + (xb.double() @ yb.double()).float()
            continue
        xs, ys = _tf32_trunc(x - xb), _tf32_trunc(y - yb)
        small = (xs.double() @ yb.double()).float() + (xb.double() @ ys.double()).float()
        acc = acc + ((xb.double() @ yb.double()).float() + small)
    return acc


def judge(out: torch.Tensor, ref32: torch.Tensor, ref64: torch.Tensor) -> dict:
    """The verifier's fp32 comparison of `out` (the candidate) with the fp32 reference, with its error
    floor from the float64 reference; also the errors against float64 and the worst element's share of
    its allowance (< 1 passes)."""
    from verify.compare import _floor_terms, compare, error_floors

    atol, rtol, factor = _tolerance()
    floors = error_floors(ref32, ref64)
    verdict = compare(out, ref32, {"float32": atol}, {"float32": rtol}, floors, factor)
    fa, fr = _floor_terms(floors[0], factor)
    o, r, t = out.double(), ref32.double().to(out.device), ref64.double().to(out.device)
    allowed = atol + fa + (rtol + fr) * r.abs()
    return {"ok": verdict.ok, "max_abs_vs_ref32": float((o - r).abs().max()),
            "max_abs_vs_fp64": float((o - t).abs().max()),
            "ref32_max_abs_vs_fp64": float((r - t).abs().max()),
            "worst_share_of_tolerance": float(((o - r).abs() / allowed).max()),
            "tolerance_at_zero": atol + fa, "output_scale": float(t.abs().max())}


def error_check(sizes=((128, 128, 256), (128, 128, 1024), (128, 128, 4096), (128, 128, 8192)),
                seed: int = 0, precisions=("ieee", "tf32x3", "tf32"), block_k: int = 32) -> list[dict]:
    """Emulated error of each precision on N(0,1) inputs of every (M, N, K) size (CPU)."""
    rows = []
    for m, n, k in sizes:
        g = torch.Generator().manual_seed(seed + k)
        a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
        ref32, ref64 = a @ b, a.double() @ b.double()
        for p in precisions:
            rows.append({"M": m, "N": n, "K": k, "precision": p, "emulated": True,
                         **judge(emulate_dot(a, b, p, block_k), ref32, ref64)})
    return rows


def print_error_rows(rows: list[dict]) -> None:
    atol, rtol, factor = _tolerance()
    print(f"verifier fp32 tolerance: atol={atol:g} rtol={rtol:g} + {factor:g} x the fp32 reference's "
          "error floor")
    print(f"{'M x N x K':>18} {'precision':>9} {'src':>8} {'ok':>3} {'|out-ref32|':>11} {'|out-fp64|':>11} "
          f"{'|ref32-fp64|':>12} {'tol@0':>9} {'worst/tol':>9}")
    for r in rows:
        print(f"{r['M']:>5} x{r['N']:>5} x{r['K']:>5} {r['precision']:>9} "
              f"{'emulated' if r.get('emulated') else 'cuda':>8} {'yes' if r['ok'] else 'NO':>3} "
              f"{r['max_abs_vs_ref32']:11.3g} {r['max_abs_vs_fp64']:11.3g} "
              f"{r['ref32_max_abs_vs_fp64']:12.3g} "
              f"{r['tolerance_at_zero']:9.3g} {r['worst_share_of_tolerance']:9.3f}")


# --------------------------------------------------------------------------------------------------------
# programs: the teacher's lowering of one matmul-class operator with a candidate config
def gemm_graph(kind: str, shape: tuple[int, int, int, int]):
    from synth.ir import Graph

    bsz, m, n, k = shape
    g = Graph()
    if kind == "linear":
        node = g.add("linear", [g.input((m, k))], in_features=k, out_features=n)
    elif kind == "matmul":
        node = g.add("matmul", [g.input((m, k)), g.input((k, n))])
    else:
        node = g.add("bmm", [g.input((bsz, m, k)), g.input((bsz, k, n))])
    g.outputs = [node]
    return g


def gemm_inputs(kind: str, shape, device: str, seed: int = 0) -> list[torch.Tensor]:
    bsz, m, n, k = shape
    g = torch.Generator(device=device).manual_seed(seed)
    if kind == "linear":
        dims = [(m, k)]
    elif kind == "matmul":
        dims = [(m, k), (k, n)]
    else:
        dims = [(bsz, m, k), (bsz, k, n)]
    return [torch.randn(d, generator=g, device=device) for d in dims]


class Programs:
    """Lowered and imported programs of (kind, shape, config), in one temporary folder."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="tune_gemm_")
        self.count = 0

    def model(self, kind: str, shape, cfg: GemmConfig, device: str, ref=None):
        """(reference Model, ModelNew with its weights, the program text) on `device`; `ref`: a reference
        Model made before, whose weights ModelNew then shares (large layers are built once)."""
        from synth.teacher import lower
        from synth.teacher.tiling import Tiling
        from verify.inputs import load_module

        self.count += 1
        bucket = tuning.gemm_bucket(*shape)
        table = Path(self.dir.name) / f"table_{self.count}.json"
        table.write_text(json.dumps({"source": f"candidate {cfg.label()}",
                                     "gemm": {f"{kind}/{bucket}": cfg.to_dict()}}))
        graph = gemm_graph(kind, shape)
        program = lower(graph, Tiling(table=str(table)))
        paths = [Path(self.dir.name) / f"{stem}_{self.count}.py" for stem in ("task", "program")]
        paths[0].write_text(graph.to_task(id="tune", level=1).code)
        paths[1].write_text(program)
        task = load_module(paths[0], f"_tune_task_{self.count}")
        cand = load_module(paths[1], f"_tune_program_{self.count}")
        init = task.get_init_inputs()
        torch.manual_seed(0)
        with torch.device(device):  # parameters initialised where they live (a 32768^2 layer on the GPU)
            ref = ref if ref is not None else task.Model(*init)
            new = cand.ModelNew(*init)
        new.load_state_dict(ref.state_dict(), assign=True)
        return ref, new, program


# --------------------------------------------------------------------------------------------------------
# tuning
def _geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def _bench(fn, rep_ms: int, device: str) -> float:
    """Median ms of `fn`: triton.testing.do_bench on CUDA; one timed call on the CPU (the smoke run)."""
    if device == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, rep=rep_ms, return_mode="median")
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def tune_entry(programs: Programs, kind: str, bucket: str, shapes, configs, rep_ms: int, log,
               device: str = "cuda") -> dict:
    """Time every config on `shapes`; the measurement record (best first in `ranked`)."""
    eager, results, ref_cache = [], [], {}
    with torch.no_grad():
        for shape in shapes:
            xs = gemm_inputs(kind, shape, device)
            ref, _, _ = programs.model(kind, shape, tuning.SEED["gemm/large"], device)
            ref32 = ref(*xs)
            ref64 = copy.deepcopy(ref).double()(*[x.double() for x in xs])
            ref_cache[shape] = (xs, ref32, ref64, ref)
            eager.append(_bench(lambda: ref(*xs), rep_ms, device))
        for cfg in configs:
            times, ok, why, worst = [], True, "", 0.0
            for shape in shapes:
                xs, ref32, ref64, ref = ref_cache[shape]
                try:
                    _, new, _ = programs.model(kind, shape, cfg, device, ref)
                    check = judge(new(*xs), ref32, ref64)
                    worst = max(worst, check["worst_share_of_tolerance"])
                    if not check["ok"]:
                        ok, why = False, (f"outside the fp32 tolerance on {shape} "
                                          f"({check['worst_share_of_tolerance']:.2f}x)")
                        break
                    times.append(_bench(lambda: new(*xs), rep_ms, device))
                except Exception as e:  # out of resources, compile errors: not a candidate
                    ok, why = False, f"{type(e).__name__}: {str(e)[:160]}"
                    break
                finally:
                    if device == "cuda":
                        torch.cuda.synchronize()
            row = {"config": cfg.to_dict(), "label": cfg.label(), "ok": ok, "ms": times,
                   "geomean_ms": _geomean(times) if ok else None, "worst_share_of_tolerance": worst}
            if not ok:
                row["why"] = why
            results.append(row)
            log(f"  {kind}/{bucket} {cfg.label():32} " + (f"{row['geomean_ms']:.4f} ms  "
                f"({_geomean(eager) / row['geomean_ms']:.2f}x eager, worst err {worst:.2f} of tol)"
                if ok else why))
    ranked = sorted((r for r in results if r["ok"]), key=lambda r: r["geomean_ms"])
    return {"shapes": [list(s) for s in shapes], "eager_ms": eager, "eager_geomean_ms": _geomean(eager),
            "ranked": ranked + [r for r in results if not r["ok"]]}


def write_table(path: Path, table: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=2) + "\n")
    os.replace(tmp, path)


def tune(args) -> int:
    smoke = args.cpu_smoke
    if not torch.cuda.is_available() and not smoke:
        print("tune_gemm: no CUDA device here, nothing timed and no table written (the tuning needs a GPU; "
              "`--error-check` and `--list` run anywhere).")
        return 0
    import triton

    if smoke and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        raise SystemExit("--cpu-smoke needs TRITON_INTERPRET=1")
    torch.backends.cuda.matmul.allow_tf32 = False  # the reference is full fp32, as in the verifier
    torch.backends.cudnn.allow_tf32 = False
    out = Path(args.out)
    table = json.loads(out.read_text()) if out.exists() else tuning.seed_table()
    table.setdefault("gemm", {})
    table.setdefault("measurements", {})
    kinds = args.kinds or list(KINDS)
    buckets = args.buckets or list(BUCKETS)
    programs = Programs()
    t0 = time.time()
    summary = []

    def log(msg):
        print(msg, flush=True)

    entries = [(kind, bucket) for kind in kinds for bucket in buckets]
    for kind, bucket in entries:
        if args.budget_s and time.time() - t0 > args.budget_s:
            log(f"tune_gemm: time budget of {args.budget_s:g} s spent, stopping before {kind}/{bucket}; "
                "run the same command again to continue")
            break
        if f"{kind}/{bucket}" in table["measurements"] and not args.retune:
            log(f"{kind}/{bucket}: measured already ({table['measurements'][f'{kind}/{bucket}']['best']}); "
                "--retune times it again")
            continue
        shapes = [tuple(s) for s in (BMM_SHAPES if kind == "bmm" else SHAPES)[bucket]][: args.shapes]
        configs = tuning.candidates(bucket)[: args.max_candidates or None]
        if smoke:  # the interpreter: tiny products of the bucket's kind, two configs
            shapes, configs = [(2 if kind == "bmm" else 1, 40, 24, 20)], configs[:2]
        seed = tuning.gemm_config(kind, bucket, tuning.seed_table())
        if seed not in configs:
            configs.insert(0, seed)
        log(f"{kind}/{bucket}: {len(configs)} configs on {shapes}")
        rec = tune_entry(programs, kind, bucket, shapes, configs, args.rep_ms, log,
                         "cpu" if smoke else "cuda")
        if not rec["ranked"] or not rec["ranked"][0]["ok"]:
            log(f"  {kind}/{bucket}: no config passed; entry left as it was")
            continue
        best = rec["ranked"][0]
        seed_row = next((r for r in rec["ranked"] if r["config"] == seed.to_dict()), None)
        table["gemm"][f"{kind}/{bucket}"] = best["config"]
        table["measurements"][f"{kind}/{bucket}"] = {
            "shapes": rec["shapes"], "eager_ms": rec["eager_ms"], "best": best["label"],
            "best_ms": best["ms"], "speedup_vs_eager": rec["eager_geomean_ms"] / best["geomean_ms"],
            "seed_ms": seed_row["ms"] if seed_row and seed_row["ok"] else None,
            "candidates": [{k: r[k] for k in ("label", "ok", "geomean_ms", "worst_share_of_tolerance")}
                           | ({"why": r["why"]} if "why" in r else {}) for r in rec["ranked"]]}
        summary.append((kind, bucket, rec, best, seed_row))
        measured = set(table["measurements"])
        full = all(f"{k}/{b}" in measured for k in KINDS for b in BUCKETS)
        table["source"] = ("measured by benchmarks/tune/tune_gemm.py (triton.testing.do_bench median, "
                           "fastest config within the verifier's fp32 tolerance)"
                           + ("" if full else "; entries without a measurement are still seeded by hand"))
        table["device"] = ("cpu smoke run (interpreter, nothing measured)" if smoke
                           else torch.cuda.get_device_name())
        table["generated_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        table["versions"] = {"torch": torch.__version__, "triton": triton.__version__,
                             "cuda": torch.version.cuda}
        write_table(out, table)
    print()
    print(f"{'entry':16} {'shapes (B, M, N, K)':44} {'best config':34} {'best ms':>9} {'eager ms':>9} "
          f"{'x eager':>7} {'seed x':>7}")
    for kind, bucket, rec, best, seed_row in summary:
        seed_x = (f"{_geomean(seed_row['ms']) / best['geomean_ms']:.2f}" if seed_row and seed_row["ok"]
                  else "-")
        shapes = ";".join("x".join(map(str, s)) for s in rec["shapes"])
        print(f"{kind + '/' + bucket:16} {shapes:44} {best['label']:34} {best['geomean_ms']:9.4f} "
              f"{rec['eager_geomean_ms']:9.4f} {rec['eager_geomean_ms'] / best['geomean_ms']:7.2f} "
              f"{seed_x:>7}")
    print(f"\nwrote {out} ({time.time() - t0:.0f} s)")
    return 0


def cuda_error_check(sizes, seed: int = 0) -> list[dict]:
    """The real teacher kernels (tf32x3, ieee) on CUDA, compared as the verifier compares."""
    torch.backends.cuda.matmul.allow_tf32 = False
    programs, rows = Programs(), []
    with torch.no_grad():
        for m, n, k in sizes:
            shape = (1, m, n, k)
            xs = gemm_inputs("matmul", shape, "cuda", seed)
            ref32, ref64 = xs[0] @ xs[1], xs[0].double() @ xs[1].double()
            for p in ("ieee", "tf32x3"):
                cfg = GemmConfig(64, 64, 32, 4, 3, 8, p) if min(m, n) < 128 else GemmConfig(precision=p)
                _, new, _ = programs.model("matmul", shape, cfg, "cuda")
                rows.append({"M": m, "N": n, "K": k, "precision": p, "emulated": False,
                             **judge(new(*xs), ref32, ref64)})
    return rows


def compile_check(configs, target_cc: int = 90, smem_limit: int = 232448) -> list[dict]:
    """Compile the teacher's linear kernel with each config for sm_`target_cc` (no GPU needed: Triton's
    whole pipeline down to the cubin, ptxas included); its shared memory against the H100/H200 limit and
    whether the dot became wgmma tensor-core instructions."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise SystemExit("--compile-check needs TRITON_INTERPRET unset")
    programs, rows = Programs(), []
    for cfg in configs:
        _, new, _ = programs.model("linear", (1, 1024, 1024, 1024), cfg, "cpu")
        module = sys.modules[type(new).__module__]
        fn = next(v for k, v in vars(module).items() if k.endswith("_kernel"))
        sig = {p.name: "constexpr" if p.is_constexpr else ("*fp32" if p.name.endswith("_ptr") else "i32")
               for p in fn.params}
        const = {"BLOCK_M": cfg.block_m, "BLOCK_N": cfg.block_n, "BLOCK_K": cfg.block_k,
                 "GROUP_M": cfg.group_m, "EVEN_K": True}
        t0 = time.time()
        try:
            k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=const),
                               target=GPUTarget("cuda", target_cc, 32),
                               options={"num_warps": cfg.num_warps, "num_stages": cfg.num_stages})
            ptx = k.asm["ptx"]
            rows.append({"config": cfg.label(), "shared": k.metadata.shared,
                         "fits": k.metadata.shared <= smem_limit, "wgmma": ptx.count("wgmma.mma_async"),
                         "compile_s": time.time() - t0})
        except Exception as e:
            rows.append({"config": cfg.label(), "error": f"{type(e).__name__}: {str(e)[:200]}"})
        r = rows[-1]
        print(f"{r['config']:34} " + (f"shared {r['shared']:>7} B {'fits' if r['fits'] else 'TOO BIG'}, "
                                      f"{r['wgmma']} wgmma, {r['compile_s']:.1f} s" if "error" not in r
                                      else r["error"]), flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(tuning.TABLE_PATH), help="the table to write (merged if it exists)")
    p.add_argument("--kinds", nargs="*", choices=KINDS, help="kinds to tune (default: all)")
    p.add_argument("--buckets", nargs="*", choices=list(BUCKETS), help="buckets to tune (default: all)")
    p.add_argument("--shapes", type=int, default=2, help="representative shapes per bucket (at most)")
    p.add_argument("--max-candidates", type=int, default=0, help="first N candidates only (0: all)")
    p.add_argument("--rep-ms", type=int, default=60, help="do_bench's rep (ms of timed calls per config)")
    p.add_argument("--budget-s", type=float, default=540.0,
                   help="stop starting new entries after this (0: none)")
    p.add_argument("--cpu-smoke", action="store_true", help=argparse.SUPPRESS)  # tests: the loop, no GPU
    p.add_argument("--retune", action="store_true", help="time entries the table has measurements for again")
    p.add_argument("--error-check", action="store_true", help="3xTF32 error vs the verifier's fp32 tolerance")
    p.add_argument("--list", action="store_true", help="print buckets, shapes and candidates")
    p.add_argument("--compile-check", choices=("table", "candidates"),
                   help="compile the table's configs (or every candidate) for sm_90 without a GPU")
    args = p.parse_args(argv)
    if args.compile_check:
        if args.compile_check == "table":
            configs = [tuning.gemm_config(k, b) for k in KINDS for b in BUCKETS]
        else:
            configs = [c for b in BUCKETS for c in tuning.candidates(b)]
        rows = compile_check(list(dict.fromkeys(configs)))
        return 0 if all(r.get("fits") for r in rows) else 1
    if args.list:
        print(f"table {tuning.TABLE_PATH} ({tuning.table_source()})")
        for bucket, what in BUCKETS.items():
            print(f"{bucket}: {what}\n  shapes {SHAPES[bucket]}, bmm {BMM_SHAPES[bucket]}")
            for kind in KINDS:
                print(f"  {kind}/{bucket}: {tuning.gemm_config(kind, bucket).label()}")
            print("  candidates: " + ", ".join(c.label() for c in tuning.candidates(bucket)))
        return 0
    if args.error_check:
        rows = error_check()
        if torch.cuda.is_available():
            rows += cuda_error_check([(s[0], s[1], s[2]) for s in ((1024, 1024, 1024), (1024, 1024, 4096),
                                                                    (1024, 8192, 8192))])
        print_error_rows(rows)
        return 0 if all(r["ok"] for r in rows if r["precision"] != "tf32") else 1
    return tune(args)


if __name__ == "__main__":
    sys.exit(main())
