"""The device lock: shared holders coexist, an exclusive holder waits for them and keeps new ones out."""
import multiprocessing as mp
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
