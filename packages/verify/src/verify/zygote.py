"""The verifier's fork server: `python -m verify.zygote REQ_FD RESP_FD` (started by sandbox.Sandbox).

Imports torch, Triton and verify.worker once (TRITON_INTERPRET comes from its environment), then forks a
worker per request. A worker applies its memory caps, runs the job, pickles (status, result, message)
to the request's result file and exits with os._exit. A reaper thread reports each worker's exit status.
"""
from __future__ import annotations

import os
import pickle
import sys
import threading
import traceback
from multiprocessing.connection import Connection


class _FileLock:
    """Cross-process mutex on a file (fcntl.flock), for the GPU timing lock."""

    def __init__(self, path: str):
        self.path = path

    def acquire(self) -> None:
        import fcntl

        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        os.close(self._fd)  # closing the descriptor drops the flock


def _run(msg: dict) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    log = os.open(msg["log_path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 2)
    try:
        import resource

        import torch

        from verify import worker

        job = msg["job"]
        if job["device"].startswith("cuda"):
            torch.cuda.set_device(torch.device(job["device"]))
            if msg["gpu_mem"]:
                total = torch.cuda.get_device_properties(torch.device(job["device"])).total_memory
                torch.cuda.set_per_process_memory_fraction(min(1.0, msg["gpu_mem"] / total))
        elif msg["as_cap"]:
            resource.setrlimit(resource.RLIMIT_AS, (msg["as_cap"], msg["as_cap"]))
        if msg["kind"] == "reference":
            reply = ("ok", worker.reference_job(job), "")
        else:
            lock = _FileLock(msg["lock_path"]) if msg["lock_path"] else None
            reply = ("ok", worker.candidate_job(job, lock), "")
    except BaseException as e:  # a candidate's SystemExit or KeyboardInterrupt included
        reply = ("error", None, f"{type(e).__name__}: {e}"[:500] + "\n" + traceback.format_exc()[-1500:])
    tmp = msg["result_path"] + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(reply, f)
    os.replace(tmp, msg["result_path"])
    os._exit(0)


def main(req_fd: int, resp_fd: int) -> None:
    import torch  # noqa: F401  (imported once here, inherited by every worker)

    from verify import worker  # noqa: F401  (installs the launch hooks before any candidate exists)

    req = Connection(req_fd, writable=False)
    resp = Connection(resp_fd, readable=False)
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
                threading.Event().wait(0.01)
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
                _run(msg)
            jobs[pid] = msg["job_id"]
        with send_lock:
            resp.send(("started", msg["job_id"], pid))
    alive.clear()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
