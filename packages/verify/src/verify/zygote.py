"""Verifier worker processes (started by sandbox.Sandbox), in one of two modes.

    python -m verify.zygote REQ_FD RESP_FD fork          # fork a fresh, confined worker per job
    python -m verify.zygote REQ_FD RESP_FD inline N      # run jobs here, at most N, then retire

Both import torch, Triton and verify.worker once (TRITON_INTERPRET comes from the environment) and
never initialise CUDA in the server itself, so a forked worker can. `fork`: the server is trusted (it
never runs a job itself) and forks one worker per request. The worker leaves the server's process group
(`setsid`), closes every descriptor but its own two pipes (the server's pipes are the result channel of
every other job), points its caches at its private folder and confines itself (verify/confine.py)
before the job's code runs. The server is a child subreaper: a descendant that outlives its worker is
re-parented to it and killed, as is the worker's whole process group when the job ends. Messages
between a worker and the sandbox go through the server, which stamps each with the job it came from, so
a worker cannot speak for another job.

`inline` keeps one process (and one CUDA context) for many jobs: reference jobs (trusted code only), or
candidates when `verify.persistent_workers=always` (weaker: see VerifyConfig.persistent_workers). It
retires the moment a candidate could have left anything behind: a rejection other than a plain wrong
answer, a change to any watched function or flag, a thread left running, or a CUDA error.

Everything a worker says is JSON (the sandbox never unpickles what a candidate's process wrote); the
verdict itself is never among it (verify/judge.py decides it in the sandbox's process).
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

from verify import confine

# Rejections after which the process is known clean: the candidate ran, answered wrongly, and touched
# nothing it should not have (anything else retires an inline worker).
BENIGN = frozenset({
    "wrong_values", "shape_mismatch", "dtype_mismatch", "nan_or_inf", "input_mutated", "cached_output",
    "shape_specialized", "wrong_state", "triton_compile_error", "import_error", "init_error",
    "no_kernel_launch",
    "torch_fallback", "output_aliases_input", "tensor_subclass", "kernel_not_doing_work",
})
# the longest message a worker may send (a payload travels as a file, never through the pipe)
MAX_MESSAGE = 2**20


def send(conn: Connection, obj: dict) -> None:
    conn.send_bytes(json.dumps(obj).encode())


def recv(conn: Connection) -> dict:
    return json.loads(conn.recv_bytes(MAX_MESSAGE))


class Channel:
    """A job's two-way line to the sandbox: `event()` reports progress (the judge answers some of them
    through `control()`), `result()` ends the job."""

    def __init__(self, out: Connection, ctl: Connection, job_id: str, lock: threading.Lock | None = None):
        self.out, self.ctl, self.job_id, self._lock = out, ctl, job_id, lock or threading.Lock()

    def _send(self, obj: dict) -> None:
        with self._lock:
            send(self.out, {**obj, "job_id": self.job_id})

    def event(self, name: str, **fields) -> None:
        self._send({"kind": "event", "name": name, **fields})

    def control(self) -> dict:
        """The sandbox's answer to the last event that asked for one."""
        while True:
            msg = pickle.loads(self.ctl.recv_bytes()) if self.ctl is not None else {}
            if msg.get("kind") == "control":
                return msg

    def result(self, status: str, result, message: str) -> None:
        self._send({"kind": "result", "status": status, "result": result, "message": message})


def _setup(msg: dict) -> float:
    """Device and memory caps for this process; returns the seconds it took."""
    import torch

    started = time.perf_counter()
    job = msg["job"]
    if job["device"].startswith("cuda"):
        torch.cuda.set_device(torch.device(job["device"]))
        torch.zeros(1, device=job["device"])  # create the context now, not inside the first job
    _caps(msg)
    return time.perf_counter() - started


def _caps(msg: dict) -> None:
    """The job's memory caps (a kept worker gets each job's own: a big task reserves more, see memory.py)."""
    import resource

    import torch

    job = msg["job"]
    if job["device"].startswith("cuda"):
        if msg["gpu_mem"]:
            total = torch.cuda.get_device_properties(torch.device(job["device"])).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, msg["gpu_mem"] / total))
    elif msg["as_cap"]:
        resource.setrlimit(resource.RLIMIT_AS, (msg["as_cap"], resource.RLIM_INFINITY))


def _redirect(log_path: str) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 2)
    os.close(log)


def _execute(msg: dict, setup_s: float, channel: Channel) -> tuple:
    # worker-side only: importing verify.zygote (the sandbox does) must not load torch or launch hooks
    from verify import worker
    from verify.gpulock import GpuLock

    try:
        job = msg["job"]
        job["setup_s"] = setup_s
        lock = GpuLock(msg["lock_path"], msg.get("lock_status_path")) if msg["lock_path"] else None
        if msg["kind"] == "reference":
            return ("ok", worker.reference_job(job, lock), "")
        if msg["kind"] == "frontend":
            # worker-side only: importing verify.zygote (the sandbox does) must not load torch or launch hooks
            from verify.gpu_frontend import frontend_job

            return ("ok", frontend_job(job), "")
        if msg["kind"] == "replay":
            from verify.replay import replay_job

            return ("ok", replay_job(job, lock, channel), "")
        return ("ok", worker.candidate_job(job, lock, channel), "")
    except BaseException as e:  # a candidate's SystemExit or KeyboardInterrupt included
        return ("error", None, f"{type(e).__name__}: {e}"[:500] + "\n" + traceback.format_exc()[-1500:])


def _confine(msg: dict) -> None:
    """The file system and signal confinement (candidate code only). Applied after _setup: the CUDA
    context and its device files are open by then, so the driver never meets the rules."""
    if msg["kind"] in ("candidate", "frontend", "replay"):
        mode = confine.apply(msg["private"], msg["hide"], msg["writable"])
        if msg["confinement"] == "landlock" and mode != "landlock":
            raise OSError("Landlock confinement was expected and is not available in this worker")


def _child(msg: dict, out_fd: int, ctl_fd: int) -> None:
    """The forked worker: leave the server's group and pipes, confine, run the job, exit."""
    _detach(out_fd, ctl_fd)
    _redirect(msg["log_path"])
    channel = Channel(Connection(out_fd, readable=False), Connection(ctl_fd, writable=False), msg["job_id"])
    _run(msg, channel, warm=False)


def _detach(out_fd: int, ctl_fd: int) -> None:
    os.setsid()
    confine.close_fds({out_fd, ctl_fd})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(msg: dict, channel: Channel, warm: bool) -> None:
    """Private caches, caps (and the CUDA context unless `warm`), confinement, the job, its result; exits."""
    try:
        confine.private_environment(msg["private"], msg.get("kernel_cache"))
        if warm:
            started = time.perf_counter()
            _caps(msg)
            setup_s = time.perf_counter() - started
        else:
            setup_s = _setup(msg)
        _confine(msg)
        reply = _execute(msg, setup_s, channel)
    except BaseException as e:
        reply = ("error", None, f"{type(e).__name__}: {e}"[:500] + "\n" + traceback.format_exc()[-1500:])
    try:
        channel.result(*reply)
    except (OSError, TypeError, ValueError) as e:
        channel.result("error", None, f"the job's result could not be sent: {type(e).__name__}: {e}"[:500])
    os._exit(0)


def _prepare(device: str, lock_path: str | None, cache: str) -> None:
    """What every candidate's process pays before its own work, paid by a spare before it has a job: the
    CUDA context, Triton's driver utilities (a C module built with gcc on first use; built here into the
    server's `cache`, which no candidate can write) and CUPTI, which the timing's device trace loads. All
    trusted code: nothing of a candidate exists in this process yet."""
    if not device.startswith("cuda"):
        return  # the interpreter: no context, no driver utilities, nothing timed
    import torch

    # worker-side only: importing verify.zygote (the sandbox does) must not load torch or launch hooks
    from verify.device_trace import warm_up
    from verify.gpulock import GpuLock

    torch.cuda.set_device(torch.device(device))
    torch.zeros(1, device=device)
    os.environ["TRITON_CACHE_DIR"] = cache
    import triton

    triton.runtime.driver.active.utils  # noqa: B018 - loads (or builds once) cuda_utils for this process
    with GpuLock(lock_path).shared() if lock_path else _nothing():
        warm_up()
        torch.cuda.synchronize()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _spare(device: str, lock_path: str | None, cache: str, out_fd: int, ctl_fd: int) -> None:
    """A worker forked before its job: prepares (see _prepare), says "ready", waits for one job from the
    server, then runs it exactly as a freshly forked worker would. It ran no candidate code before the job,
    and it runs one job only, so nothing carries over from another candidate."""
    _detach(out_fd, ctl_fd)
    _redirect(os.devnull)
    out, ctl = Connection(out_fd, readable=False), Connection(ctl_fd, writable=False)
    try:
        _prepare(device, lock_path, cache)
        send(out, {"kind": "ready"})
        msg = pickle.loads(ctl.recv_bytes())  # from the server (trusted), before any candidate code
    except BaseException:
        os._exit(3)
    _redirect(msg["log_path"])
    _run(msg, Channel(out, ctl, msg["job_id"]), warm=True)


class _Spares:
    """Prepared workers per device for candidate jobs: on a GPU the CUDA context, Triton's utilities and
    CUPTI cost a fresh process seconds, which a spare pays while earlier candidates run (on the CPU a spare
    only saves the fork). `want` per
    device comes with each job (the sandbox's slots on that device)."""

    def __init__(self, fork_spare):
        self._fork = fork_spare
        self.ready: dict[str, list] = {}
        self.pids: set[int] = set()

    def take(self, device: str):
        """A prepared spare as (pid, out, ctl), or None when none is ready yet (never waits: the server also
        relays every running job's messages). Spares that died while preparing are dropped."""
        pool = self.ready.get(device, [])
        for entry in list(pool):
            pid, out, ctl = entry
            try:
                if not out.poll(0):
                    continue  # still preparing
                said = recv(out)
            except (EOFError, OSError, ValueError):
                said = {}
            pool.remove(entry)
            if said.get("kind") == "ready":
                return entry
            out.close()
            ctl.close()
        return None

    def fill(self, device: str, want: int, lock_path: str | None) -> None:
        pool = self.ready.setdefault(device, [])
        while len(pool) < want:
            pool.append(self._fork(device, lock_path))


def _serve_fork(req: Connection, resp: Connection) -> None:
    confine.become_subreaper()
    send_lock, table_lock = threading.Lock(), threading.Lock()
    jobs: dict[int, str] = {}
    controls: dict[str, Connection] = {}
    relays: dict[str, threading.Thread] = {}
    alive = threading.Event()
    alive.set()
    me = os.getpid()
    cache = os.environ.get("DRT_TRUSTED_CACHE") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), f"drt_zygote_{me}")

    def fork_spare(device: str, lock_path: str | None) -> tuple:
        out_r, out_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        with table_lock:
            pid = os.fork()
            if pid == 0:
                _spare(device, lock_path, cache, out_w, ctl_r)
            spares.pids.add(pid)
        os.close(out_w)
        os.close(ctl_r)
        return pid, Connection(out_r, writable=False), Connection(ctl_w, readable=False)

    spares = _Spares(fork_spare)

    def forward(job_id: str, conn: Connection) -> None:
        """Relay a worker's messages, each stamped with its job (whatever the worker wrote in it)."""
        while True:
            try:
                obj = recv(conn)
            except (EOFError, OSError, ValueError):
                break
            if not isinstance(obj, dict):
                continue
            with send_lock:
                send(resp, {**obj, "job_id": job_id})
        conn.close()

    def sweep() -> None:
        """Kill every child that is not a live worker: descendants orphaned by their worker."""
        with table_lock:
            for pid in confine.children(me):
                if pid not in jobs and pid not in spares.pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def reap() -> None:
        while alive.is_set() or jobs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                sweep()
                time.sleep(0.02)
                continue
            with table_lock:
                job_id = jobs.pop(pid, None)
                spares.pids.discard(pid)  # a spare that died before its job (it is never handed one)
            if job_id is None:
                continue
            try:
                os.killpg(pid, signal.SIGKILL)  # the worker's group: whatever it started and left running
            except (ProcessLookupError, PermissionError):
                pass
            # the job's messages end when nothing holds its pipe any more: its descendants die first
            relay = relays.pop(job_id, None)
            end = time.monotonic() + 5
            while relay is not None and relay.is_alive() and time.monotonic() < end:
                sweep()
                relay.join(0.05)
            ctl = controls.pop(job_id, None)
            if ctl is not None:
                ctl.close()
            with send_lock:
                send(resp, {"kind": "exited", "job_id": job_id, "code": os.waitstatus_to_exitcode(status)})

    threading.Thread(target=reap, daemon=True).start()
    while True:
        try:
            msg = pickle.loads(req.recv_bytes())
        except (EOFError, OSError):
            break
        if msg.get("kind") == "control":
            ctl = controls.get(msg["job_id"])
            if ctl is not None:
                try:
                    ctl.send_bytes(pickle.dumps(msg))
                except OSError:
                    pass
            continue
        device = str(msg.get("job", {}).get("device", ""))
        warm = msg.get("spares", 0) > 0 and msg["kind"] in ("candidate", "replay")
        spare = spares.take(device) if warm else None
        with table_lock:  # registered before the reaper can see the worker exit
            if spare is not None:
                pid, out, ctl = spare
                spares.pids.discard(pid)
            else:
                out_r, out_w = os.pipe()
                ctl_r, ctl_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    _child(msg, out_w, ctl_r)
                os.close(out_w)
                os.close(ctl_r)
                out, ctl = Connection(out_r, writable=False), Connection(ctl_w, readable=False)
            jobs[pid] = msg["job_id"]
            controls[msg["job_id"]] = ctl
            relay = relays[msg["job_id"]] = threading.Thread(target=forward, args=(msg["job_id"], out),
                                                             daemon=True)
            relay.start()
        if spare is not None:
            try:
                ctl.send_bytes(pickle.dumps(msg))
            except OSError:
                pass  # it died after saying ready: the reaper reports the job's worker exited
        with send_lock:
            send(resp, {"kind": "started", "job_id": msg["job_id"], "pid": pid})
        if warm:
            spares.fill(device, int(msg["spares"]), msg.get("lock_path"))
    alive.clear()
    with table_lock:  # the sandbox closed: no job (and no spare) outlives the server
        for pid in [*jobs, *spares.pids]:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def _still_clean(reply: tuple, verdict: dict | None, pristine: dict, threads: int) -> bool:
    """May this process run another candidate after the one that produced `reply`?"""
    import torch

    # worker-side only: importing verify.zygote (the sandbox does) must not load torch or launch hooks
    from verify.integrity import changed, snapshot

    status = reply[0]
    if status != "ok" or verdict is None or (verdict.get("error_class") not in (None, *BENIGN)):
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
    # worker-side only: importing verify.zygote (the sandbox does) must not load torch or launch hooks
    from verify.integrity import snapshot

    pristine, setup_s, threads = None, 0.0, threading.active_count()
    lock = threading.Lock()
    for n in range(1, max_jobs + 1):
        try:
            msg = pickle.loads(req.recv_bytes())
        except (EOFError, OSError):
            return
        if msg.get("kind") == "control":  # an answer to a job that ended meanwhile
            continue
        channel = Channel(resp, req, msg["job_id"], lock)
        send(resp, {"kind": "started", "job_id": msg["job_id"], "pid": os.getpid()})
        _redirect(msg["log_path"])
        confine.private_environment(msg["private"], msg.get("kernel_cache"))
        if pristine is None:
            setup_s = _setup(msg)
            pristine = snapshot()
        else:
            _caps(msg)
        reply = _execute(msg, setup_s, channel)
        setup_s = 0.0
        channel.result(*reply)
        if msg["kind"] == "reference":
            for name in [m for m in sys.modules if m.startswith("_drt_")]:
                del sys.modules[name]
            clean = True
        else:
            clean = _still_clean(reply, (reply[1] or {}).get("self_check"), pristine, threads)
        last = not clean or n == max_jobs
        if last:  # announced before "exited", so the next job waits for a fresh process
            send(resp, {"kind": "retire", "job_id": msg["job_id"]})
        send(resp, {"kind": "exited", "job_id": msg["job_id"], "code": 0})
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
