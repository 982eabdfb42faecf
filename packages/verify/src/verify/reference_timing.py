"""The baselines timed where no candidate runs: eager PyTorch and torch.compile (default, and max-autotune
when configured) in the trusted reference worker, once per task.

The candidate's worker times the baselines beside the candidate (the same process, inputs and clock make
their ratios precise), but that process runs the candidate's code first: it can patch the ops the reference
Model calls, or report a baseline time it never measured, and so inflate its own speedups. The judge
compares each baseline time the candidate's worker reports with this one and rejects a verdict whose
baseline ran slower there than `EAGER_SLACK` allows (`timing_inconsistent`); a compiled baseline the
reference worker has no time for is dropped, not trusted. The slack covers what honest processes differ
by: on an H200 the same kernel timed in separate processes differed by at most 3.52 % (2 us kernels,
benchmarks/verify/RESULTS.md), so an honest baseline is never near it.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, replace

import torch

from verify.compile_baseline import MAX_AUTOTUNE, compiled_baseline
from verify.device_trace import warm_up
from verify.inputs import make_inputs
from verify.plan import timing_seeds
from verify.timing import input_copies, prepare_timing

# a baseline time the candidate's worker may report, at most, as a multiple of the trusted one
EAGER_SLACK = 1.25


def timing_kwargs(cfg, measured: list, device) -> dict:
    """prepare_timing's settings from the config: one definition for the reference and the candidate."""
    return dict(
        warmup=cfg.warmup,
        min_reps=cfg.min_reps,
        max_reps=cfg.max_reps,
        budget_ms=cfg.budget_ms,
        flush=torch.empty(cfg.l2_flush_bytes // 4, dtype=torch.float32, device=device),
        flush_mode=cfg.l2_flush,
        arg_sets=input_copies(measured, cfg.input_copies),
        method=cfg.timing_method,
    )


def time_baselines(model, module, input_seed: int, cfg, device, lock=None) -> dict:
    """Time the reference `model` (and its torch.compile baselines when `cfg` asks for them) as the
    candidate's worker times them: same seeds, copies and method; a baseline that cannot be graphed makes
    every one of them timed call by call, as there. {"eager", "compiled", "compiled_max"}: timing.Timing's
    fields as dicts, None where not configured. Measurements under the exclusive lock, the rest shared."""
    warm_seed, measured_seed = timing_seeds(input_seed)
    with lock.shared() if lock is not None else nullcontext():
        inputs = make_inputs(module, warm_seed, device)
        kw = timing_kwargs(cfg, make_inputs(module, measured_seed, device), device)
    calls = {
        "eager": model,
        "compiled": compiled_baseline(model, inputs, lock) if cfg.compile_baseline else None,
        "compiled_max": (compiled_baseline(model, inputs, lock, MAX_AUTOTUNE)
                         if cfg.compile_max_autotune else None),
    }
    calls = {k: f for k, f in calls.items() if f is not None}
    with lock.shared() if lock is not None else nullcontext():
        if cfg.timing_method == "graph":
            warm_up()
        with torch.no_grad():
            ready = {k: prepare_timing(f, inputs, **kw) for k, f in calls.items()}
    with lock.exclusive() if lock is not None else nullcontext():
        with torch.no_grad():
            result = {k: r.measure() for k, r in ready.items()}
            if len({t.method for t in result.values()}) > 1:
                kw["method"] = "stream"
                result = {k: prepare_timing(f, inputs, **kw).measure() for k, f in calls.items()}
    return {k: asdict(result[k]) if k in result else None for k in ("eager", "compiled", "compiled_max")}


def time_eager(model, module, input_seed: int, cfg, device, lock=None) -> dict:
    """The eager baseline alone (`time_baselines` without the compiled ones)."""
    eager_only = replace(cfg, compile_baseline=False, compile_max_autotune=False)
    return time_baselines(model, module, input_seed, eager_only, device, lock)["eager"]
