"""The torch.compile baseline, compiled on the CPU without holding the GPU.

`torch.compile(model)` compiles on its first call and then runs the graph on the GPU (Inductor also
benchmarks its kernel configurations there). Holding the device lock shared for that whole first call
made every timer wait for a CPU-bound compile of 5-30 s, and every new GPU job queue behind the waiting
timer: with several tasks in flight the device sat idle while one worker compiled. Here Inductor is
called through a dynamo backend (exactly what `backend="inductor"` calls), and only the compiled graph's
runs take the lock, and only while `warming` is true: the caller prepares and times the compiled model
inside holds of its own afterwards (shared, then exclusive), where a second hold could wait for itself.
PyTorch code that dynamo leaves outside the graphs (at a graph break) runs its first call without the
lock: a few eager kernels that may overlap another worker's timed call once; the tasks' models rarely
break.

The second baseline, `torch.compile(model, mode="max-autotune-no-cudagraphs")`
(`VerifyConfig.compile_max_autotune`, what a user tries next), is the same call with that mode's Inductor
options (`config_patches`, as torch.compile applies them). Its compile benchmarks GEMM templates and
kernel configs on the GPU, so the compile itself holds the lock shared (timers wait for it; the timings of
others stay clean).
"""
from __future__ import annotations

# torch.compile's mode for the second baseline (max-autotune without CUDA graphs: the candidate is timed
# without them as well, unless the timing method graphs every callable alike)
MAX_AUTOTUNE = "max-autotune-no-cudagraphs"


class LockedCompile:
    """`torch.compile(model)` (or `torch.compile(model, mode=mode)`) whose compiled graphs hold `lock` shared
    around each run while `warming`."""

    def __init__(self, model, lock=None, mode: str | None = None):
        import torch

        self.lock = lock
        self.mode = mode
        self.warming = True
        self.graphs = 0
        self.locked_runs = 0
        self.fn = torch.compile(model, backend=self._backend)

    def _backend(self, gm, example_inputs):
        from torch._inductor.compile_fx import compile_fx

        if self.mode is None:
            run = compile_fx(gm, example_inputs)  # on the CPU: the example inputs are fake tensors
        else:
            from torch._inductor import list_mode_options

            # autotuning runs kernels on the GPU while compiling: hold the lock shared (unbounded: trusted)
            with self.lock.shared(bounded=False) if self.lock is not None else _nothing():
                run = compile_fx(gm, example_inputs, config_patches=list_mode_options(self.mode))
        self.graphs += 1

        def locked(*args):
            if not self.warming or self.lock is None:
                return run(*args)
            self.locked_runs += 1
            with self.lock.shared(bounded=False):
                return run(*args)

        # dynamo then passes one list of arguments: keep the convention
        if getattr(run, "_boxed_call", False):
            locked._boxed_call = True
        return locked

    def warm_up(self, *inputs):
        """Compile (no lock), run once (the lock held shared around the graphs), then stop taking the lock."""
        import torch

        try:
            with torch.no_grad():
                return self.fn(*inputs)
        finally:
            self.warming = False

    def __call__(self, *inputs):
        return self.fn(*inputs)


def compiled_baseline(model, inputs, lock=None, mode: str | None = None) -> LockedCompile:
    """The model compiled (torch.compile's default mode, or `mode`) and warmed up on `inputs`; the result is
    what the timer calls."""
    compiled = LockedCompile(model, lock, mode)
    compiled.warm_up(*inputs)
    return compiled


def _nothing():
    from contextlib import nullcontext

    return nullcontext()
