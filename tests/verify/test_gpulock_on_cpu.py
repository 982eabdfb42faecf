"""The device lock: shared holders coexist, an exclusive holder waits for them and keeps new ones out."""
import multiprocessing as mp
import os
import time

from verify.gpulock import GpuLock


def _hold_shared(path, seconds, go, started):
    go.wait(30)
    with GpuLock(path).shared():
        started.set()
        time.sleep(seconds)


def test_shared_coexist_and_exclusive_waits(tmp_path):
    path = str(tmp_path / "dev.lock")
    ctx = mp.get_context("fork")
    go_now, go_later = ctx.Event(), ctx.Event()
    go_now.set()
    started = [ctx.Event(), ctx.Event(), ctx.Event()]
    # every process is forked before this one takes any lock (a forked child would share its lock)
    procs = [ctx.Process(target=_hold_shared, args=(path, 1.0, go_now, started[0]), daemon=True),
             ctx.Process(target=_hold_shared, args=(path, 1.0, go_now, started[1]), daemon=True),
             ctx.Process(target=_hold_shared, args=(path, 0.0, go_later, started[2]), daemon=True)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    assert started[0].wait(10) and started[1].wait(10)
    assert time.monotonic() - t0 < 1.0, "two shared holders must hold the lock at the same time"
    with GpuLock(path).exclusive():
        waited = time.monotonic() - t0
        go_later.set()
        assert not started[2].wait(0.5), "a new shared holder must queue behind the exclusive one"
    assert waited >= 0.9, "the exclusive holder must wait for the shared ones"
    assert started[2].wait(10)
    for p in procs:
        p.join(10)


SLEEPY_TASK = """
import time
import torch
import torch.nn as nn

class Model(nn.Module):
    def forward(self, x):
        time.sleep(SECONDS)
        return x + 1

def get_inputs():
    return [torch.randn(4)]

def get_init_inputs():
    return []
"""


def _reference(box, tmp_path, seconds, **kw):
    from verify import VerifyConfig

    job = {"code": SLEEPY_TASK.replace("SECONDS", str(seconds)), "variants": [], "device": "cpu",
           "config": VerifyConfig(trials=1).to_dict(), "out_path": str(tmp_path / f"ref_{seconds}.pt"),
           "input_seed": 0}
    return box.run_job("reference", job, mem_cap_gb=8, lock_path=str(tmp_path / "dev.lock"), **kw)


def test_lock_waits_do_not_count_and_long_holds_are_stopped(tmp_path):
    from verify.sandbox import Sandbox

    box = Sandbox(interpret=True, workdir=str(tmp_path))
    try:
        assert _reference(box, tmp_path, 0, timeout_s=120).status == "ok"  # the zygote is up
        # a job that waits 3 s for the device, then runs briefly, is not timed out by a 2 s timeout
        with GpuLock(str(tmp_path / "dev.lock")).exclusive():
            import threading

            result = {}
            t = threading.Thread(target=lambda: result.update(out=_reference(box, tmp_path, 0, timeout_s=2)))
            t.start()
            time.sleep(3)
        t.join(60)
        assert result["out"].status == "ok", result["out"].message
        # a job that holds the device longer than the hold limit is stopped, well before its timeout
        t0 = time.monotonic()
        out = _reference(box, tmp_path, 30, timeout_s=120, hold_limit_s=1.5)
        assert out.status == "timeout" and "held the device" in out.message
        assert time.monotonic() - t0 < 15
    finally:
        box.close()


def _verifier_like_timer(lock_dir, key, rounds, log, barrier):
    """What each verifier (or veRL reward worker) on a machine does: find its GPU's lock by the device's
    key in the machine's lock folder, and time under it, exclusive."""
    from verify.gpulock import machine_lock_path

    lock = GpuLock(machine_lock_path(key, lock_dir))
    barrier.wait(30)
    for _ in range(rounds):
        with lock.exclusive():
            log.put(("in", time.monotonic()))
            time.sleep(0.05)
            log.put(("out", time.monotonic()))


def test_one_lock_per_gpu_for_every_verifier_on_the_machine(tmp_path):
    """Two separate processes that each build their own lock for the same GPU never time at once; a third
    on another GPU is not held up by them."""
    ctx = mp.get_context("spawn")  # separate interpreters, as two reward workers would be
    log, other, barrier = ctx.Queue(), ctx.Queue(), ctx.Barrier(3)
    procs = [ctx.Process(target=_verifier_like_timer, args=(str(tmp_path), "GPU-aaaa", 6, log, barrier)),
             ctx.Process(target=_verifier_like_timer, args=(str(tmp_path), "GPU-aaaa", 6, log, barrier)),
             ctx.Process(target=_verifier_like_timer, args=(str(tmp_path), "GPU-bbbb", 6, other, barrier))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    events = sorted(log.get(timeout=5) for _ in range(24))
    held = 0
    for kind, _ in sorted(events, key=lambda e: (e[1], e[0] == "in")):
        held += 1 if kind == "in" else -1
        assert held <= 1, "two verifiers held one GPU's timing lock at the same time"
    assert sorted(os.listdir(tmp_path)) == ["GPU-aaaa.lock", "GPU-aaaa.lock.turnstile", "GPU-bbbb.lock",
                                            "GPU-bbbb.lock.turnstile"]


def test_verifiers_given_one_lock_dir_share_locks(tmp_path):
    """Verifiers pointed at one lock folder take the same file per device (on GPUs that folder is the
    machine's by default, gpulock.MACHINE_LOCK_DIR; on the CPU, where nothing is timed, each keeps its
    own)."""
    from verify import Verifier, VerifyConfig

    with Verifier(VerifyConfig(device="cpu"), workers=1, lock_dir=str(tmp_path)) as a, \
            Verifier(VerifyConfig(device="cpu"), workers=1, lock_dir=str(tmp_path)) as b:
        assert a.device_lock("cpu").path == b.device_lock("cpu").path == str(tmp_path / "cpu.lock")
