"""Cost models for choosing among verified candidates and assemblies.

On a GPU the cost is measured time: a candidate's median runtime from its verdict, and each operator's
eager PyTorch time measured here on the same device. On CPU the verifier does no timing, so the cost is
the number of launches: a candidate costs its Triton launches plus the PyTorch compute ops it still
calls, and an operator left in PyTorch costs 1. That keeps the search runnable (and testable) on CPU,
where it prefers fewer, fused kernels; every log says which model made its choices.
"""

from __future__ import annotations

from contextlib import nullcontext

from verify.verdict import Verdict


class CostModel:
    def __init__(self, measured: bool, timing_config=None, lock=None) -> None:
        self.measured, self.timing_config = measured, timing_config
        # context manager factory: held while timing here, so verifier workers do not time at the same moment
        self.lock = lock

    @property
    def unit(self) -> str:
        return "ms" if self.measured else "launches"

    def describe(self) -> str:
        if self.measured:
            return "measured: median runtime in ms (candidate timings from the verifier, eager per operator)"
        return (
            "launch count (no timing without a GPU): a candidate costs its Triton launches plus the torch "
            "compute ops it calls, an operator left in PyTorch costs 1"
        )

    def candidate(self, verdict: Verdict) -> float | None:
        """Cost of an accepted candidate (None when it is not accepted or has no timing)."""
        if not verdict.accepted:
            return None
        if self.measured:
            return verdict.candidate.median_ms if verdict.timed and verdict.candidate is not None else None
        return float(max(verdict.kernel_launches, 1) + len(verdict.torch_ops))

    def torch_ops(self, fragments) -> list[float]:
        """PyTorch cost of each operator, from its single-operator fragment (a list in operator order)."""
        if not self.measured:
            return [1.0] * len(fragments)
        with self.lock() if self.lock else nullcontext():
            return [eager_ms(f.task, "cuda:0", self.timing_config) for f in fragments]


def eager_ms(task, device: str, cfg) -> float:
    """Median eager time of a (trusted, reference) task on a CUDA device, timed like the verifier does."""
    # GPU only: torch and torch._dynamo (through search.frontend) take seconds to import, CPU judges never
    # time
    import torch

    from search.frontend import load_task_module
    from verify.inputs import make_inputs, seed_everything
    from verify.timing import time_callable

    module = load_task_module(task, "_eager_cost")
    seed_everything(cfg.seed)
    model = module.Model(*module.get_init_inputs()).to(device)
    inputs = make_inputs(module, cfg.seed, device)
    flush = torch.empty(cfg.l2_flush_bytes // 4, dtype=torch.float32, device=device)
    t = time_callable(
        model,
        inputs,
        warmup=cfg.warmup,
        min_reps=cfg.min_reps,
        max_reps=cfg.max_reps,
        budget_ms=cfg.budget_ms,
        flush=flush,
        flush_mode=cfg.l2_flush,
    )
    return t.median_ms
