"""Run one job in a fresh, disposable worker process with a wall-clock timeout and a memory cap.

A zygote process (`python -m verify.zygote`, started once per Verifier with `TRITON_INTERPRET` fixed in
its environment) imports torch, Triton and `verify.worker`, then forks one confined worker per job, so a
worker starts in milliseconds and never re-imports the caller's `__main__`. Every candidate gets its own
process: whatever it patches, leaks or breaks dies with it. A segfault, a hang, `os._exit`, a CUDA fault
or a runaway allocation ends as an `Outcome` with a reason, never as an exception in the caller.

Each job gets a private folder (its files, its log, its lock status; the only folder a confined worker
may write), removed when the job ends whatever happened to the worker. What a worker sends is JSON;
`run_job`'s `on_event` (the judge, verify/judge.py) answers the events that ask for an answer.
"""
from __future__ import annotations

import json
import os
import pickle
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection

from verify.gpulock import read_status
from verify.zygote import MAX_MESSAGE

_MAX_WAIT_FACTOR = 10


@dataclass
class Outcome:
    # "ok", "error" (the job raised), "timeout", "crash" (died without answering), "out_of_memory"
    status: str
    result: dict | None = None
    message: str = ""


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tail(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        return " | ".join(lines[-3:])[-400:]
    except OSError:
        return ""


def _died(code: int, log_path: str) -> Outcome:
    """The verdict-less end of a worker that exited with `code` (negative: killed by that signal)."""
    why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    tail = _tail(log_path)
    return Outcome("crash",
                   message=f"worker process died ({why}) without a verdict" + (f": {tail}" if tail else ""))


class Sandbox:
    """Owns a worker server. `persistent=False`: a fresh forked process per job (the zygote).
    `persistent=True`: one long-lived process runs jobs in turn and is replaced whenever it retires
    (see zygote.py for when it does); use one Sandbox per concurrent job in that mode."""

    def __init__(self, interpret: bool, persistent: bool = False, max_jobs: int = 64,
                 workdir: str | None = None, spares: int = 0):
        """`spares`: candidate workers per device to fork and prepare ahead of their jobs (a forking sandbox
        on a GPU; see zygote._Spares): as many as the slots that run candidates on a device at once."""
        self.interpret = interpret
        self.spares = 0 if persistent else spares
        self.persistent = persistent
        self.max_jobs = max_jobs
        self.dir = tempfile.mkdtemp(prefix="drt_sandbox_", dir=workdir)
        self._retiring = False
        # worker server processes started so far (a kept worker that never retires stays at 1)
        self.starts = 0
        self._send_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._proc = None
        self._req = None
        self._eof = threading.Event()
        self._queues: dict[str, queue.Queue] = {}

    def _ensure(self) -> tuple:
        """The live worker server (started if needed) as (process, request pipe, end-of-replies event)."""
        with self._start_lock:
            if self._retiring and self._proc is not None:
                try:
                    self._proc.wait(30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            if self._proc is not None and self._proc.poll() is None:
                return self._proc, self._req, self._eof
            self._retiring = False
            self.starts += 1
            req_r, req_w = os.pipe()
            resp_r, resp_w = os.pipe()
            env = {**os.environ, "TRITON_INTERPRET": "1" if self.interpret else "0", "PYTHONUNBUFFERED": "1",
                   # Triton's driver utilities, built by the server's spares (trusted code), hidden from jobs
                   "DRT_TRUSTED_CACHE": os.path.join(self.dir, "trusted_cache")}
            mode = ["inline", str(self.max_jobs)] if self.persistent else ["fork"]
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "verify.zygote", str(req_r), str(resp_w), *mode],
                env=env, pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL, start_new_session=True)
            os.close(req_r)
            os.close(resp_w)
            self._req = Connection(req_w, readable=False)
            self._resp = Connection(resp_r, writable=False)
            self._eof = threading.Event()
            threading.Thread(target=self._read, args=(self._resp, self._eof), daemon=True).start()
            return self._proc, self._req, self._eof

    def _read(self, resp: Connection, eof: threading.Event) -> None:
        while True:
            try:
                msg = json.loads(resp.recv_bytes(MAX_MESSAGE))
            except (EOFError, OSError):
                eof.set()
                for q in list(self._queues.values()):
                    q.put(None)  # the server died: wake every waiter, they report a crash
                return
            except ValueError:
                continue  # not JSON: nothing a job can be judged on
            if not isinstance(msg, dict):
                continue
            if msg.get("kind") == "retire":
                self._retiring = True
                continue
            q = self._queues.get(msg.get("job_id"))
            if q is not None:
                q.put(msg)

    def run_job(self, kind: str, job: dict, *, timeout_s: float, mem_cap_gb: float,
                gpu_mem_gb: float | None = None, lock_path: str | None = None,
                hold_limit_s: float | None = None, on_event=None, hide: tuple = (), writable: tuple = (),
                confinement: str = "none", kernel_cache: str | None = None, files: tuple = ()) -> Outcome:
        """Run `worker.<kind>_job(job)` in a worker process and wait for it.

        Time spent waiting for the device lock does not count against `timeout_s`; holding the lock
        for more than `hold_limit_s` at a stretch (one forward, or the timing) ends the job as a timeout.
        `on_event(message, private_dir)` gets every event the job reports and returns an answer (a dict
        sent back to the job) or None. `hide`, `writable`, `confinement`: see confine.apply (candidate
        jobs of a forking sandbox; "landlock" makes a worker that cannot confine itself fail).
        `kernel_cache`: a folder for Triton's and Inductor's caches (default: in the job's private folder).
        `files`: paths copied into the private folder (same names) before the job starts.
        """
        job_id = uuid.uuid4().hex
        private = os.path.join(self.dir, job_id)
        os.makedirs(private)
        for path in files:
            shutil.copyfile(path, os.path.join(private, os.path.basename(path)))
        log_path = os.path.join(private, "worker.log")
        status_path = os.path.join(private, "lock_status")
        q = self._queues[job_id] = queue.Queue()
        cap = int(mem_cap_gb * 2**30)
        msg = {"job_id": job_id, "kind": kind, "job": job, "log_path": log_path, "private": private,
               "as_cap": cap if self.interpret else 0,
               "gpu_mem": int(gpu_mem_gb * 2**30) if gpu_mem_gb else 0,
               "lock_path": lock_path, "lock_status_path": status_path if lock_path else None,
               "hide": [self.dir, *hide],
               "writable": list(writable) + ([kernel_cache] if kernel_cache else []),
               "kernel_cache": kernel_cache, "spares": self.spares,
               "confinement": confinement if not self.persistent else "none"}
        try:
            proc, eof = self._send(msg)
            if proc is None:
                return Outcome("crash",
                               message="the worker server died three times before it could take the job")
            resends, pid, result, code, started = 0, None, None, None, False
            deadline = time.monotonic() + timeout_s
            while code is None:
                try:
                    m = q.get(timeout=0.02)
                except queue.Empty:
                    m = False
                if m:
                    if m["kind"] == "started":
                        pid, started = m.get("pid"), True
                    elif m["kind"] == "event" and on_event is not None:
                        try:
                            answer = on_event(m, private)
                        except BaseException:
                            if pid is not None:  # a worker waiting for an answer that will never come
                                self._kill(pid, q)
                            raise
                        if answer is not None:
                            self._control(job_id, answer)
                    elif m["kind"] == "result":
                        result = m
                    elif m["kind"] == "exited":
                        code = int(m.get("code", 0))
                    continue
                if proc.poll() is not None or m is None:
                    eof.wait(5)  # every reply the server sent before it died has been read
                    if code is not None or result is not None:
                        break
                    if not started and resends < 2:
                        # it died under an earlier job (a kept server runs jobs in turn) before starting
                        # this one: this job is not to blame, so it goes to a fresh server
                        resends += 1
                        proc, eof = self._send(msg)
                        if proc is None:
                            return Outcome("crash", message="the worker server died three times before it "
                                           "could take the job")
                        deadline = time.monotonic() + timeout_s
                        continue
                    return _died(proc.returncode if proc.returncode is not None else -9, log_path)
                if pid is None:
                    continue
                state, since, waited = read_status(status_path) if lock_path else ("idle", 0.0, 0.0)
                # the worker writes this file, so a candidate could too: lock waits extend the deadline by
                # at most _MAX_WAIT_FACTOR timeouts
                waited = min(waited + (time.time() - since if state == "wait" else 0.0),
                             _MAX_WAIT_FACTOR * timeout_s)
                if time.monotonic() > deadline + waited:
                    self._kill(pid, q)
                    return Outcome("timeout",
                                   message=f"no answer within {timeout_s:g} s (infinite loop or hang?)")
                if hold_limit_s and state == "hold" and time.time() - since > hold_limit_s:
                    self._kill(pid, q)
                    return Outcome("timeout",
                                   message="one forward (or the timing) held the device for more than "
                                   f"{hold_limit_s:g} s (infinite loop or hang?)")
                if _rss_bytes(pid) > cap:
                    self._kill(pid, q)
                    return Outcome("out_of_memory",
                                   message=f"worker exceeded the host memory cap of {mem_cap_gb:g} GiB")
            if result is not None and result.get("status") in ("ok", "error"):
                return Outcome(result["status"], result.get("result"), str(result.get("message") or ""))
            return _died(code if code is not None else -9, log_path)
        finally:
            self._queues.pop(job_id, None)
            shutil.rmtree(private, ignore_errors=True)

    def _control(self, job_id: str, answer: dict) -> None:
        try:
            with self._send_lock:
                self._req.send_bytes(pickle.dumps({**answer, "kind": "control", "job_id": job_id}))
        except OSError:
            pass  # the server died: the job's wait ends with a crash

    def _send(self, msg: dict) -> tuple:
        """Send a job to the live server (a fresh one if the last died meanwhile): (process, eof event), or
        (None, None) when three servers in a row died before taking it."""
        for attempt in range(3):
            proc, req, eof = self._ensure()
            try:
                with self._send_lock:
                    req.send_bytes(pickle.dumps(msg))
                return proc, eof
            except OSError:  # broken pipe: the server died under another job; the next _ensure replaces it
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        return None, None

    def _kill(self, pid: int, q: queue.Queue) -> None:
        """Kill a job's worker and its process group, and wait (briefly) for the server to see it go."""
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if pid == self._proc.pid:  # a kept server: it goes, and with it everything it started
            self._proc.wait()
            return
        end = time.monotonic() + 5
        while self._proc.poll() is None and time.monotonic() < end:
            try:
                m = q.get(timeout=0.05)
            except queue.Empty:
                continue
            if m is None or m["kind"] == "exited":
                return

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._req.close()
            except OSError:
                pass
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)  # workers still running (a hang) go with it
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
