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
"""
from __future__ import annotations


class LockedCompile:
    """`torch.compile(model)` whose compiled graphs hold `lock` shared around each run while `warming`."""

    def __init__(self, model, lock=None):
        import torch

        self.lock = lock
        self.warming = True
        self.graphs = 0
        self.locked_runs = 0
        self.fn = torch.compile(model, backend=self._backend)

    def _backend(self, gm, example_inputs):
        from torch._inductor.compile_fx import compile_fx

        run = compile_fx(gm, example_inputs)  # on the CPU: the example inputs are fake tensors
        self.graphs += 1

        def locked(*args):
            if not self.warming or self.lock is None:
                return run(*args)
            self.locked_runs += 1
            with self.lock.shared(bounded=False):
                return run(*args)

        if getattr(run, "_boxed_call", False):  # dynamo then passes one list of arguments: keep the convention
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


def compiled_baseline(model, inputs, lock=None) -> LockedCompile:
    """The model compiled and warmed up on `inputs`; the result is what the timer calls."""
    compiled = LockedCompile(model, lock)
    compiled.warm_up(*inputs)
    return compiled
