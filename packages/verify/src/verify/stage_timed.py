"""Stage `timed`, in the candidate's worker (GPU only): eager, candidate (and torch.compile) timed in this
process on the same inputs, after the judge has found the candidate correct.

Warm-up, estimates and graph captures run on one fresh input set (the timing seed's); the timed calls
on another (verify.plan.timing_seeds), so a candidate that answers from what it computed before gives
the wrong values there. The candidate's timed outputs go to the judge with the timings, which compares
them with the reference for those inputs and checks the timings against its own clock: the worker sends
`timing_begin` as it takes the GPU to itself and the payload as soon as it lets go.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict

from verify.compile_baseline import MAX_AUTOTUNE, compiled_baseline
from verify.device_trace import warm_up
from verify.inputs import make_inputs
from verify.integrity import changed, snapshot
from verify.plan import timing_seeds
from verify.reference_timing import timing_kwargs
from verify.stage_trials import to_report
from verify.timing import prepare_timing
from verify.worker import classify_runtime, settle

# timed outputs sent to the judge at most (the first, the last and evenly between)
_MAX_TIMED_OUTPUTS = 4


def _picked(outs: list) -> list:
    if len(outs) <= _MAX_TIMED_OUTPUTS:
        return [to_report(o) for o in outs]
    step = (len(outs) - 1) / (_MAX_TIMED_OUTPUTS - 1)
    return [to_report(outs[round(i * step)]) for i in range(_MAX_TIMED_OUTPUTS)]


def timed_stage(job: dict, cfg, device, loaded, lock, channel) -> dict:
    """Time and return the payload: timings (as dicts), flags, the candidate's timed outputs, what changed."""
    try:
        return _time(job, cfg, device, loaded, lock, channel)
    except Exception as e:
        _, cls, msg = classify_runtime(e)
        return {
            "error": {
                "stage": "timed",
                "error_class": "out_of_memory" if cls == "out_of_memory" else "timing_error",
                "message": msg,
            }
        }


def _time(job: dict, cfg, device, loaded, lock, channel) -> dict:
    model, new, module = loaded.model, loaded.new, loaded.modules[0]
    held = lock.shared if lock is not None else nullcontext
    warm_seed, measured_seed = timing_seeds(job["input_seed"])
    with held():
        inputs = make_inputs(module, warm_seed, device)
        kw = timing_kwargs(cfg, make_inputs(module, measured_seed, device), device)
        settle(True)
    # compiled on the CPU without the lock, warmed up under a shared hold; Inductor's imports may touch
    # torch: snapshot after
    compiled = compiled_baseline(model, inputs, lock) if cfg.compile_baseline else None
    compiled_max = compiled_baseline(model, inputs, lock, MAX_AUTOTUNE) if cfg.compile_max_autotune else None
    flags, outs = [], []
    # warm-ups, estimates and graph captures while others use the GPU; only the measurements hold it alone
    with held():
        if cfg.timing_method == "graph":
            warm_up()  # once per process: loads CUPTI (it may touch torch: snapshot after)
        clean = snapshot()
        ready = [
            prepare_timing(f, inputs, keep_outputs=f is new, **kw) if f is not None else None
            for f in (model, new, compiled, compiled_max)
        ]
    with lock.exclusive() if lock is not None else nullcontext():
        channel.event("timing_begin")
        eager, cand, comp, comp_max = [p.measure() if p is not None else None for p in ready]
        outs = ready[1].outputs
        del ready
        if cand.median_ms < job["bound_ms"]:
            flags.append(
                f"faster than the memory-bandwidth bound ({cand.median_ms:.4f} < "
                f"{job['bound_ms']:.4f} ms); re-measured"
            )
            again = prepare_timing(new, inputs, keep_outputs=True, **{**kw, "min_reps": cfg.max_reps})
            cand, outs = again.measure(), again.outputs
        timed = [t for t in (eager, cand, comp, comp_max) if t is not None]
        if len({t.method for t in timed}) > 1:
            # speedups compare like with like: one callable could not be graphed, so none is
            why = "; ".join(
                f"{name}: {t.fallback}"
                for name, t in zip(("eager", "candidate", "compiled", "compiled_max"),
                                   (eager, cand, comp, comp_max))
                if t is not None and t.fallback
            )
            flags.append(f"timed call by call, not from a CUDA graph ({why})")
            kw["method"] = "stream"
            if eager.method != "stream":
                eager = prepare_timing(model, inputs, **kw).measure()
            if cand.method != "stream":
                again = prepare_timing(new, inputs, keep_outputs=True, **kw)
                cand, outs = again.measure(), again.outputs
            if comp is not None and comp.method != "stream":
                comp = prepare_timing(compiled, inputs, **kw).measure()
            if comp_max is not None and comp_max.method != "stream":
                comp_max = prepare_timing(compiled_max, inputs, **kw).measure()
        settle(True)
    return {
        "eager": asdict(eager),
        "candidate": asdict(cand),
        "compiled": asdict(comp) if comp else None,
        "compiled_max": asdict(comp_max) if comp_max else None,
        "flags": flags,
        "outputs": _picked(outs),
        "patched": changed(clean, snapshot())[:3],
        "error": None,
    }
