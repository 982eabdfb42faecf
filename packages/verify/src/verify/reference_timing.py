"""The eager baseline timed where no candidate runs: in the trusted reference worker, once per task.

The candidate's worker times eager PyTorch beside the candidate (the same process, inputs and clock make
their ratio precise), but that process runs the candidate's code first: it can patch the ops the reference
Model calls, or report an eager time it never measured, and so inflate its own speedup. The judge compares
the eager time the candidate's worker reports with this one and rejects a verdict whose baseline ran
slower there than `EAGER_SLACK` allows (`timing_inconsistent`). The slack covers what honest processes differ
by: on an H200 the same kernel timed in separate processes differed by at most 3.52 % (2 us kernels,
benchmarks/verify/RESULTS.md), so an honest baseline is never near it.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict

import torch

from verify.device_trace import warm_up
from verify.inputs import make_inputs
from verify.plan import timing_seeds
from verify.timing import input_copies, prepare_timing

# the eager time the candidate's worker may report, at most, as a multiple of the trusted one
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


def time_eager(model, module, input_seed: int, cfg, device, lock=None) -> dict:
    """Time the reference `model` as the candidate's worker times it (same seeds, copies, method); the
    result as a dict (timing.Timing's fields). Measurements under the exclusive lock, the rest shared."""
    warm_seed, measured_seed = timing_seeds(input_seed)
    with lock.shared() if lock is not None else nullcontext():
        inputs = make_inputs(module, warm_seed, device)
        kw = timing_kwargs(cfg, make_inputs(module, measured_seed, device), device)
        if cfg.timing_method == "graph":
            warm_up()
        with torch.no_grad():
            ready = prepare_timing(model, inputs, **kw)
    with lock.exclusive() if lock is not None else nullcontext():
        with torch.no_grad():
            result = ready.measure()
    return asdict(result)
