"""Verifier worker processes (started by sandbox.Sandbox), in one of two modes.

    python -m verify.zygote REQ_FD RESP_FD fork          # CPU: fork a fresh worker per job
    python -m verify.zygote REQ_FD RESP_FD inline N      # GPU: run jobs here, at most N, then retire

Both import torch, Triton and verify.worker once (TRITON_INTERPRET comes from the environment).
`fork` forks one disposable worker per request, so no candidate ever shares a process; a reaper thread
reports each worker's exit status. `inline` keeps one CUDA context for many jobs (creating a context
costs seconds and the driver serialises it), and retires the process the moment a candidate could have
left anything behind: a rejection other than a plain wrong answer, a change to any watched function or
flag, a thread it left running, or a CUDA error. Every job pickles (status, result, message) to its
result file.
"""
from __future__ import annotations

import os
import pickle
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

# Rejections after which the process is known clean: the candidate ran, answered wrongly, and touched
# nothing it should not have (anything else retires an inline worker).
BENIGN = frozenset({
    "wrong_values", "shape_mismatch", "dtype_mismatch", "nan_or_inf", "input_mutated", "cached_output",
    "shape_specialized", "wrong_state", "triton_compile_error", "import_error", "init_error", "no_kernel_launch",
    "torch_fallback", "output_aliases_input", "tensor_subclass", "kernel_not_doing_work",
})


def _setup(msg: dict) -> float:
    """Device and memory caps for this process; returns the seconds it took."""
    import resource

    import torch

    started = time.perf_counter()
    job = msg["job"]
    if job["device"].startswith("cuda"):
        torch.cuda.set_device(torch.device(job["device"]))
        if msg["gpu_mem"]:
            total = torch.cuda.get_device_properties(torch.device(job["device"])).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, msg["gpu_mem"] / total))
        torch.zeros(1, device=job["device"])  # create the context now, not inside the first job
    elif msg["as_cap"]:
        resource.setrlimit(resource.RLIMIT_AS, (msg["as_cap"], msg["as_cap"]))
    return time.perf_counter() - started


def _redirect(log_path: str) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 2)
    os.close(log)


def _execute(msg: dict, setup_s: float) -> tuple:
    from verify import worker
    from verify.gpulock import GpuLock

    try:
        job = msg["job"]
        job["setup_s"] = setup_s
        lock = GpuLock(msg["lock_path"], msg.get("lock_status_path")) if msg["lock_path"] else None
        if msg["kind"] == "reference":
            return ("ok", worker.reference_job(job, lock), "")
        if msg["kind"] == "frontend":
            from verify.gpu_frontend import frontend_job

            return ("ok", frontend_job(job), "")
        return ("ok", worker.candidate_job(job, lock), "")
    except BaseException as e:  # a candidate's SystemExit or KeyboardInterrupt included
        return ("error", None, f"{type(e).__name__}: {e}"[:500] + "\n" + traceback.format_exc()[-1500:])


def _write(msg: dict, reply: tuple) -> None:
    tmp = msg["result_path"] + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(reply, f)
    os.replace(tmp, msg["result_path"])


def _serve_fork(req: Connection, resp: Connection) -> None:
    send_lock, table_lock = threading.Lock(), threading.Lock()
    jobs: dict[int, str] = {}
    alive = threading.Event()
    alive.set()

    def reap() -> None:
        while alive.is_set() or jobs:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                if not alive.is_set():
                    return
                time.sleep(0.01)
                continue
            with table_lock:
                job_id = jobs.pop(pid, None)
            if job_id is not None:
                with send_lock:
                    resp.send(("exited", job_id, os.waitstatus_to_exitcode(status)))

    threading.Thread(target=reap, daemon=True).start()
    while True:
        try:
            msg = req.recv()
        except (EOFError, OSError):
            break
        with table_lock:
            pid = os.fork()
            if pid == 0:
                _redirect(msg["log_path"])
                _write(msg, _execute(msg, _setup(msg)))
                os._exit(0)
            jobs[pid] = msg["job_id"]
        with send_lock:
            resp.send(("started", msg["job_id"], pid))
    alive.clear()


def _still_clean(reply: tuple, pristine: dict, threads: int) -> bool:
    """May this process run another candidate after the one that produced `reply`?"""
    import torch

    from verify.integrity import changed, snapshot

    status, result, _ = reply
    if status != "ok" or (result["error_class"] is not None and result["error_class"] not in BENIGN):
        return False
    for name in [m for m in sys.modules if m.startswith("_drt_")]:
        del sys.modules[name]
    if changed(pristine, snapshot()) or threading.active_count() > threads:
        return False
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()  # surfaces an asynchronous CUDA fault the candidate left behind
    except Exception:
        return False
    return True


def _serve_inline(req: Connection, resp: Connection, max_jobs: int) -> None:
    from verify.integrity import snapshot

    pristine, setup_s, threads = None, 0.0, threading.active_count()
    for n in range(1, max_jobs + 1):
        try:
            msg = req.recv()
        except (EOFError, OSError):
            return
        resp.send(("started", msg["job_id"], os.getpid()))
        _redirect(msg["log_path"])
        if pristine is None:
            setup_s = _setup(msg)
            pristine = snapshot()
        reply = _execute(msg, setup_s)
        setup_s = 0.0
        _write(msg, reply)
        if msg["kind"] == "reference":
            for name in [m for m in sys.modules if m.startswith("_drt_")]:
                del sys.modules[name]
            clean = True
        else:
            clean = _still_clean(reply, pristine, threads)
        last = not clean or n == max_jobs
        if last:  # announced before "exited", so the next job waits for a fresh process
            resp.send(("retire", msg["job_id"], None))
        resp.send(("exited", msg["job_id"], 0))
        if last:
            return


def main(req_fd: int, resp_fd: int, mode: str, max_jobs: int) -> None:
    import torch  # noqa: F401  (imported once here, before any job)

    from verify import worker  # noqa: F401  (installs the launch hooks before any candidate exists)

    req = Connection(req_fd, writable=False)
    resp = Connection(resp_fd, readable=False)
    if mode == "inline":
        _serve_inline(req, resp, max_jobs)
    else:
        _serve_fork(req, resp)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
