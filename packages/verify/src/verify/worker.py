"""What runs inside a worker process: the reference job and the candidate job.

The reference job (trusted: no candidate code) runs the task under each trial's seed and saves the
outputs. The candidate job loads the candidate into a fresh process, runs the compile, faithfulness and
correctness stages against the saved reference outputs, then times it on a GPU. Both return plain dicts;
`sandbox.py` runs them with a timeout and memory cap and turns crashes into verdicts.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch._dynamo  # noqa: F401  (its import patches torch.manual_seed: let it happen before any snapshot)

from verify import launches
from verify.audit import TorchAudit
from verify.compare import compare, error_floors, flatten, unstable_truths
from verify.config import FREE_TORCH_OPS, VerifyConfig
from verify.inputs import load_module, make_inputs, seed_everything, to_device
from verify.launches import TRACKER
from verify.verdict import Verdict

launches.install()


def _fp32_truth() -> None:
    """Full fp32 everywhere: a tf32 reference would hide precision downgrades."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


_fp32_truth()  # at import, before a kept worker's pristine snapshot: a job must not look like a flag change


def _write(code: str, directory: str, stem: str) -> Path:
    path = Path(directory) / f"{stem}.py"
    path.write_text(code)
    return path


def _perturb_constant_parameters(model, seed: int) -> None:
    """Seeded noise on every parameter whose values are all equal (norm weights of 1, biases of 0): with
    those, a kernel that forgets `* weight` or `+ bias` would still be right. Parameters are visited in
    creation order, so a ModelNew that creates the same parameters gets the same values."""
    gen = torch.Generator().manual_seed(seed + 7919)
    with torch.no_grad():
        for p in model.parameters():
            if not p.is_floating_point() or p.numel() < 1:
                continue
            noise = torch.randn(p.shape, generator=gen)
            if p.numel() > 1 and bool((p == p.reshape(-1)[0]).all()):
                c = float(p.reshape(-1)[0])
                p.copy_(c * (1 + 0.1 * noise) if c else 0.01 * noise)


def _build_reference(module, cfg: VerifyConfig, device):
    seed_everything(cfg.seed)
    init = module.get_init_inputs()
    seed_everything(cfg.seed)
    model = module.Model(*init)
    _perturb_constant_parameters(model, cfg.seed)
    return model.to(device), init


def _buffers(model) -> dict:
    return {name: b.detach() for name, b in model.named_buffers()}


def _nbytes(obj) -> int:
    return sum(t.numel() * t.element_size() for t in flatten(obj) if isinstance(t, torch.Tensor))


def reference_job(job: dict, gpu_lock=None) -> dict:
    """Run the task for every trial; save outputs to job['out_path']. Raises on a broken task."""
    cfg = VerifyConfig(**job["config"])
    device = torch.device(job["device"])
    _fp32_truth()
    with tempfile.TemporaryDirectory() as tmp, (gpu_lock.shared() if gpu_lock else nullcontext()):
        codes = [job["code"], *job["variants"]]
        modules = [load_module(_write(c, tmp, f"task_{i}"), f"_drt_task_{os.getpid()}_{i}") for i, c in enumerate(codes)]
        model, _ = _build_reference(modules[0], cfg, device)
        twin = _float64_twin(model) if cfg.error_floor_factor > 0 else None
        outputs, nbytes, variants_ok, floors, truths = [], [], [], [], []
        plan = [(0, cfg.seed + t) for t in range(cfg.trials)]
        plan += [(v + 1, cfg.seed + 1000 + v) for v in range(len(job["variants"]))]
        for mod_idx, seed in plan:
            # a variant that fails part-way must not leave its mark on the buffers (running statistics):
            # the candidate never runs a dropped variant
            saved = {k: b.clone() for k, b in _buffers(model).items()} if mod_idx else {}
            try:
                inputs = make_inputs(modules[mod_idx], seed, device)
                rng = _rng_state(device)
                with torch.no_grad():
                    out = model(*inputs)
            except Exception:
                if mod_idx == 0:
                    raise
                with torch.no_grad():
                    for k, b in _buffers(model).items():
                        b.copy_(saved[k])
                continue  # a variant the task itself cannot run is dropped
            if mod_idx == 0 and all(float(t.abs().sum()) == 0 for t in flatten(inputs)
                                    if isinstance(t, torch.Tensor) and t.is_floating_point()):
                raise ValueError("get_inputs() returned only zero-valued float tensors; tests need random data")
            if mod_idx:
                variants_ok.append(mod_idx - 1)
            floor, truth = _floors(twin, inputs, out, rng, device)
            floors.append(floor)
            truths.append(truth)
            outputs.append(to_device(out, "cpu") if not isinstance(out, torch.Tensor) else out.detach().cpu())
            nbytes.append(_nbytes(inputs) + _nbytes(out))
        torch.save({"outputs": outputs, "buffers": {k: b.cpu() for k, b in _buffers(model).items()},
                    "floors": floors, "truths": truths}, job["out_path"])
    return {"trials": cfg.trials, "variants_ok": variants_ok, "nbytes": nbytes[0],
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}


def _float64_twin(model):
    """A float64 copy of the reference model (None if it cannot be copied): its outputs measure the float32
    reference's own rounding error (compare.error_floors)."""
    try:
        return copy.deepcopy(model).double()
    except Exception:
        return None


def _rng_state(device) -> tuple:
    return torch.get_rng_state(), (torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _floors(twin, inputs, out, rng, device) -> tuple[list[float], list]:
    """compare.error_floors and compare.unstable_truths of one trial: the twin runs the same inputs in
    float64 from the same RNG state."""
    outs = flatten(out)
    none = ([0.0] * len(outs), [None] * len(outs))
    if twin is None or not any(isinstance(o, torch.Tensor) and o.dtype == torch.float32 for o in outs):
        return none
    torch.set_rng_state(rng[0])
    if rng[1] is not None:
        torch.cuda.set_rng_state(rng[1], device)
    wide = [x.double() if isinstance(x, torch.Tensor) and x.dtype == torch.float32 else x for x in inputs]
    try:
        with torch.no_grad():
            out64 = twin(*wide)
    except Exception:  # an op without a float64 kernel: the plain tolerances apply
        return none
    return error_floors(out, out64), unstable_truths(out, out64)


def _build_candidate(new_cls, init, model, cfg: VerifyConfig, device):
    """ModelNew(*init) with the reference's weights when names and shapes match (else the same seed and
    the same perturbation)."""
    seed_everything(cfg.seed)
    new = new_cls(*init)
    ref_sd, new_sd = model.state_dict(), new.state_dict()
    if ref_sd.keys() == new_sd.keys() and all(ref_sd[k].shape == new_sd[k].shape for k in ref_sd):
        new.load_state_dict(ref_sd)
    else:
        _perturb_constant_parameters(new, cfg.seed)
    return new.to(device)


class _Reject(Exception):
    def __init__(self, stage: str, error_class: str, message: str):
        super().__init__(message)
        self.stage, self.error_class = stage, error_class


def _classify_runtime(e: BaseException) -> tuple[str, str, str]:
    text = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:400]
    low = text.lower()
    if "compilationerror" in low or type(e).__module__.startswith("triton.compiler"):
        return "compile", "triton_compile_error", text
    if "out of memory" in low or "can't allocate memory" in low or isinstance(e, MemoryError):
        return "correct", "out_of_memory", text
    return "correct", "runtime_error", text


def candidate_job(job: dict, gpu_lock=None) -> dict:
    """All stages after format, for one candidate. Returns Verdict.to_dict().

    `gpu_lock` (a verify.gpulock.GpuLock for the job's device) is held shared around every step that puts
    work on the GPU (loading the reference and the candidate, each trial, the no-op test, the comparisons,
    timing's preparation, see verify.timing.prepare_timing), each waiting for its work before it lets go,
    and exclusive while timing measures: a timer waits for at most one such step of every other worker,
    and no GPU work of another worker runs beside its timed calls.
    """
    gpu = gpu_lock.shared if gpu_lock is not None else nullcontext
    cfg = VerifyConfig(**job["config"])
    device = torch.device(job["device"])
    _fp32_truth()
    on_gpu = device.type == "cuda"
    v = Verdict(task_id=job["task_id"], backend="triton-gpu" if on_gpu else "triton-interpreter",
                device=job["device_name"])
    v.passed("format")
    v.phases["setup"] = job.get("setup_s", 0.0)
    from verify.integrity import changed, snapshot

    tmp = tempfile.mkdtemp(prefix="drt_cand_")
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        v.phases[name] = round(now - mark, 4)
        mark = now

    try:
        codes = [job["code"], *[job["variants"][i] for i in job["variants_ok"]]]
        modules = [load_module(_write(c, tmp, f"task_{i}"), f"_drt_task_{os.getpid()}_{i}") for i, c in enumerate(codes)]
        # every step that may put work on the GPU holds the lock shared (and waits for that work before it
        # lets go), so none of it runs beside another worker's timed calls: the candidate's import and
        # constructor are its code too
        with gpu():
            reference = torch.load(job["ref_path"], map_location=device, weights_only=True)
            ref_outputs, floors = reference["outputs"], reference.get("floors") or [None] * len(reference["outputs"])
            truths0 = (reference.get("truths") or [None])[0]
            del reference
            model, init = _build_reference(modules[0], cfg, device)
            clean = snapshot()
            try:
                cand = load_module(_write(job["program"], tmp, "candidate"), f"_drt_candidate_{os.getpid()}")
            except Exception as e:
                raise _Reject("compile", "import_error", f"importing the program failed: {type(e).__name__}: {e}"[:400])
            new_cls = getattr(cand, "ModelNew", None)
            if not isinstance(new_cls, type) or not issubclass(new_cls, torch.nn.Module):
                raise _Reject("compile", "import_error", "ModelNew is not an nn.Module subclass")
            try:
                new = _build_candidate(new_cls, init, model, cfg, device)
            except Exception as e:
                raise _Reject("compile", "init_error",
                              f"ModelNew(*get_init_inputs()) failed: {type(e).__name__}: {e}"[:400])
            _settle(on_gpu)
        v.passed("compile")
        if any(c.__name__ == "Model" for c in type(new).__mro__):
            raise _Reject("faithful", "subclasses_model", "ModelNew must not inherit from the reference Model")

        phase("load")
        plan = [(0, cfg.seed + t) for t in range(cfg.trials)]
        plan += [(i + 1, cfg.seed + 1000 + vi) for i, vi in enumerate(job["variants_ok"])]
        outs, audits, first_launches = [], [], None
        for n, (mod_idx, seed) in enumerate(plan):
            with gpu():
                inputs = make_inputs(modules[mod_idx], seed, device)
                originals = [t.clone() if isinstance(t, torch.Tensor) else t for t in inputs]
                TRACKER.reset("count")
                audit = TorchAudit(poison_alloc=True)
                try:
                    with torch.no_grad(), audit:
                        out = new(*inputs)
                        _settle(on_gpu)
                except Exception as e:
                    stage, cls, msg = _classify_runtime(e)
                    if mod_idx and stage == "correct" and not TRACKER.errors:
                        raise _Reject("correct", "shape_specialized", f"fails when the input sizes change: {msg}")
                    raise _Reject(stage, cls, msg)
                finally:
                    TRACKER.mode = "off"
                if audit.overruns():
                    raise _Reject("correct", "out_of_bounds_write",
                                  f"{audit.overruns()} buffer(s) allocated in forward were written past their "
                                  "end: check the masks of your stores (offs < n, not <=)")
                if n == 0:
                    first_launches = (list(TRACKER.launches), list(TRACKER.errors))
                    _check_faithful(v, cfg, audit, inputs, out, first_launches, changed(clean, snapshot()), on_gpu)
            outs.append(out)
            audits.append((inputs, originals))
        phase("trials")
        _noop_test(lambda: _build_candidate(new_cls, init, model, cfg, device), modules[0], cfg, device,
                   ref_outputs[0], floors[0], on_gpu, gpu, truths0)
        phase("noop")
        v.passed("faithful")
        with gpu():
            # reloaded after the candidate ran: nothing it did in memory can reach these
            reference = torch.load(job["ref_path"], map_location=device, weights_only=True)
            ref_outputs, floors = reference["outputs"], reference.get("floors") or [None] * len(reference["outputs"])
            truths = reference.get("truths") or [None] * len(ref_outputs)
            for n, ((mod_idx, _), out) in enumerate(zip(plan, outs)):
                inputs, originals = audits[n]
                for a, b in zip(inputs, originals):
                    if isinstance(a, torch.Tensor) and not launches.same(a, b):
                        raise _Reject("correct", "input_mutated", "forward modified one of its input tensors in place")
                prev = flatten(outs[n - 1]) if n else []
                if any(isinstance(o, torch.Tensor) and o is p for p in prev for o in flatten(out)):
                    raise _Reject("correct", "cached_output", "forward returned the same tensor object as on the "
                                  "previous call; compute the output from the current inputs")
                cmp = compare(out, ref_outputs[n], cfg.atol, cfg.rtol, floors[n], cfg.error_floor_factor, truths[n])
                v.max_abs_err = max(v.max_abs_err or 0.0, cmp.max_abs)
                v.max_rel_err = max(v.max_rel_err or 0.0, cmp.max_rel)
                if not cmp.ok:
                    if mod_idx:
                        raise _Reject("correct", "shape_specialized", f"correct on the default shapes but not when "
                                      f"the input sizes change: {cmp.message}")
                    raise _Reject("correct", cmp.error_class, f"trial {n}: {cmp.message}")
            _check_buffers(new, reference.get("buffers", {}), cfg)
        v.trials = len(plan)
        patched = changed(clean, snapshot())
        if patched:
            raise _Reject("faithful", "monkey_patch", f"candidate replaced {', '.join(patched[:3])}")
        v.passed("correct")
        if on_gpu and cfg.timing:
            try:
                _time(v, cfg, model, new, modules[0], device, job, gpu_lock)
            except _Reject:
                raise
            except Exception as e:
                _, cls, msg = _classify_runtime(e)
                raise _Reject("timed", "out_of_memory" if cls == "out_of_memory" else "timing_error", msg)
            phase("timing")
    except _Reject as r:
        v.fail(r.stage, r.error_class, str(r))
    except Exception as e:
        stage, cls, msg = _classify_runtime(e)
        v.fail(stage, cls, msg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return v.to_dict()


def _settle(on_gpu: bool) -> None:
    """Wait for this process's GPU work (all streams) before a shared hold of the lock ends."""
    if on_gpu:
        torch.cuda.synchronize()


def _check_buffers(new, ref_buffers: dict, cfg: VerifyConfig) -> None:
    """After the same forwards, the candidate's buffers (running statistics, counters) must match the
    reference's, by name. Skipped when the buffer names differ (the candidate then owns its own state)."""
    mine = _buffers(new)
    if not ref_buffers or mine.keys() != ref_buffers.keys():
        return
    for name, ref in ref_buffers.items():
        cmp = compare(mine[name], ref, cfg.atol, cfg.rtol)
        if not cmp.ok:
            raise _Reject("correct", "wrong_state", f"buffer {name!r} differs from the reference after the trials "
                          f"(e.g. running statistics of a norm layer): {cmp.message}")


def _check_faithful(v: Verdict, cfg: VerifyConfig, audit: TorchAudit, inputs, out, first, patched, on_gpu) -> None:
    launched, errors = first
    v.kernel_launches = len(launched)
    seen, banned = audit.compute_ops(set(FREE_TORCH_OPS), set(cfg.allowed_torch_ops))
    v.torch_ops = seen
    if patched:
        raise _Reject("faithful", "monkey_patch", f"candidate replaced {', '.join(patched[:3])}; "
                      "do not modify torch, triton or timing functions")
    if errors:
        raise _Reject("faithful", "swallowed_kernel_error", f"a kernel launch raised and forward carried on: {errors[0]}")
    if not launched:
        raise _Reject("faithful", "no_kernel_launch", "forward launched no Triton kernel; the compute must run in "
                      "@triton.jit kernels")
    if banned and not cfg.allow_torch_compute:
        raise _Reject("faithful", "torch_fallback", f"forward computes with torch ops outside Triton kernels: "
                      f"{', '.join(banned[:6])}; move that compute into kernels")
    if on_gpu:
        current = torch.cuda.current_stream().cuda_stream
        if any(launch.stream != current for launch in launched):
            raise _Reject("faithful", "side_stream", "kernels were launched on a side stream; use the current stream")
    for o in flatten(out):
        if isinstance(o, torch.Tensor) and type(o) is not torch.Tensor and not isinstance(o, torch.nn.Parameter):
            raise _Reject("faithful", "tensor_subclass", f"forward returned a {type(o).__name__}, not a plain tensor")
    in_ptrs = {t.untyped_storage().data_ptr() for t in flatten(inputs) if isinstance(t, torch.Tensor)}
    for o in flatten(out):
        if isinstance(o, torch.Tensor) and o.numel() and o.untyped_storage().data_ptr() in in_ptrs:
            raise _Reject("faithful", "output_aliases_input", "forward returned (a view of) its input; "
                          "write the result to a new tensor")


def _noop_test(build, module, cfg: VerifyConfig, device, ref0, floors0, on_gpu, gpu=nullcontext,
               truths0=None) -> None:
    """Skip every launch and poison what it would have written: the output must then be wrong.

    Each run gets a fresh ModelNew, so state left by earlier calls (a cached output) cannot stand in
    for the kernels.
    """
    try:
        with gpu():
            inputs = make_inputs(module, cfg.seed, device)
            TRACKER.reset("detect")
            with torch.no_grad(), TorchAudit(poison_alloc=True):
                build()(*inputs)
            inputs = make_inputs(module, cfg.seed, device)
            fresh = build()
            TRACKER.reset("noop")
            with torch.no_grad(), TorchAudit(poison_alloc=True):
                out = fresh(*inputs)
                _settle(on_gpu)
    except Exception:
        return  # a forward that breaks without its kernels depends on them
    finally:
        TRACKER.mode = "off"
    with gpu():
        survived = compare(out, ref0, cfg.atol, cfg.rtol, floors0, cfg.error_floor_factor, truths0).ok
    if survived:
        raise _Reject("faithful", "kernel_not_doing_work", "the output is still correct with every Triton kernel "
                      "switched off: the kernels do not compute the result")


def _time(v: Verdict, cfg: VerifyConfig, model, new, module, device, job, lock) -> None:
    from verify.compile_baseline import compiled_baseline
    from verify.device_trace import warm_up
    from verify.timing import input_copies, min_time_ms, prepare_timing, time_callable

    with lock.shared() if lock is not None else nullcontext():
        inputs = make_inputs(module, cfg.seed, device)
        flush = torch.empty(cfg.l2_flush_bytes // 4, dtype=torch.float32, device=device)
        kw = dict(warmup=cfg.warmup, min_reps=cfg.min_reps, max_reps=cfg.max_reps, budget_ms=cfg.budget_ms,
                  flush=flush, flush_mode=cfg.l2_flush, arg_sets=input_copies(inputs, cfg.input_copies),
                  method=cfg.timing_method)
        _settle(True)
    from verify.integrity import changed, snapshot

    # compiled on the CPU without the lock, warmed up under a shared hold; Inductor's imports may touch
    # torch: snapshot after
    compiled = compiled_baseline(model, inputs, lock) if cfg.compile_baseline else None
    # warm-ups, estimates and graph captures while others use the GPU; only the measurements hold it alone
    with lock.shared() if lock is not None else nullcontext():
        if cfg.timing_method == "graph":
            warm_up()  # once per process: loads CUPTI (it may touch torch: snapshot after)
        clean = snapshot()
        ready = [prepare_timing(f, inputs, **kw) if f is not None else None for f in (model, new, compiled)]
    with lock.exclusive() if lock is not None else nullcontext():
        v.eager, v.candidate, v.compiled = [p.measure() if p is not None else None for p in ready]
        del ready
        bound = min_time_ms(job["nbytes"], cfg.peak_bandwidth_gbps) if cfg.peak_bandwidth_gbps else 0.0
        if v.candidate.median_ms < bound:
            v.timing_flags.append(f"faster than the memory-bandwidth bound ({v.candidate.median_ms:.4f} < "
                                  f"{bound:.4f} ms); re-measured")
            v.candidate = time_callable(new, inputs, **{**kw, "min_reps": cfg.max_reps})
        timed = [t for t in (v.eager, v.candidate, v.compiled) if t is not None]
        if len({t.method for t in timed}) > 1:
            # speedups compare like with like: one callable could not be graphed, so none is
            why = "; ".join(f"{name}: {t.fallback}" for name, t in zip(("eager", "candidate", "compiled"), timed)
                            if t.fallback)
            v.timing_flags.append(f"timed call by call, not from a CUDA graph ({why})")
            kw["method"] = "stream"
            v.eager = v.eager if v.eager.method == "stream" else time_callable(model, inputs, **kw)
            v.candidate = v.candidate if v.candidate.method == "stream" else time_callable(new, inputs, **kw)
            if compiled is not None and v.compiled.method != "stream":
                v.compiled = time_callable(compiled, inputs, **kw)
    patched = changed(clean, snapshot())
    if patched:
        raise _Reject("timed", "timing_error", f"something replaced {', '.join(patched[:3])} while timing")
    v.speedup_eager = v.eager.median_ms / v.candidate.median_ms
    if v.compiled is not None:
        v.speedup_compile = v.compiled.median_ms / v.candidate.median_ms
    if bound and v.candidate.median_ms < bound:
        raise _Reject("timed", "implausible_speed", f"{v.candidate.median_ms:.4f} ms is below the "
                      f"{bound:.4f} ms needed just to move the data; the timing was fooled")
    v.passed("timed")

