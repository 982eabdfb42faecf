"""The torch.compile baseline compiles without the device lock and runs its first call under a shared hold
(verify.compile_baseline), with real Inductor (CPU code) and a real GpuLock."""
import threading
import time

import torch

from verify.compile_baseline import LockedCompile, compiled_baseline
from verify.gpulock import GpuLock


def _model_and_inputs():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU())
    return model, (torch.randn(4, 16),)


def test_compiles_while_a_timer_holds_the_lock_and_runs_only_after(tmp_path):
    model, inputs = _model_and_inputs()
    lock = GpuLock(str(tmp_path / "device.lock"))
    compiled = LockedCompile(model, lock)
    done = {}
    with lock.exclusive():  # a timer holds the device
        worker = threading.Thread(target=lambda: done.setdefault("out", compiled.warm_up(*inputs)),
                                  daemon=True)
        worker.start()
        deadline = time.monotonic() + 240
        while compiled.graphs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert compiled.graphs == 1, "Inductor did not compile while the lock was held exclusively"
        time.sleep(0.5)
        assert worker.is_alive() and "out" not in done, "the compiled graph ran while a timer held the device"
    worker.join(60)
    assert not worker.is_alive()
    assert compiled.locked_runs == 1 and not compiled.warming
    torch.testing.assert_close(done["out"], model(*inputs))


def test_timed_calls_inside_the_exclusive_hold_do_not_wait_for_themselves(tmp_path):
    model, inputs = _model_and_inputs()
    lock = GpuLock(str(tmp_path / "device.lock"))
    compiled = compiled_baseline(model, inputs, lock)
    outs = []
    with lock.exclusive():
        caller = threading.Thread(target=lambda: outs.extend(compiled(*inputs) for _ in range(3)),
                                  daemon=True)
        caller.start()
        caller.join(60)
        assert not caller.is_alive(), "a timed call waited for the lock its own timer holds"
    assert compiled.locked_runs == 1 and len(outs) == 3
    torch.testing.assert_close(outs[-1], model(*inputs))
