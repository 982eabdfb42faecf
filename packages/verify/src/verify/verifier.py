"""The verifier: a pool that turns (task, candidate text) into a Verdict. Sync, batched and async.

    from verify import Verifier, VerifyConfig
    with Verifier(VerifyConfig(trials=5), workers=4) as v:
        verdict = v.verify(task, completion_text)

The format stage runs here (cheap, static). Each task's reference outputs are computed once, in a
worker that never sees candidate code, and reused for every candidate of that task. Each candidate then
runs in its own confined worker process (verify/zygote.py, verify/confine.py), which reports its outputs
and measurements; the verdict is decided here, in this process, which never imports candidate code
(verify/judge.py). On GPUs, `workers_per_gpu` candidates share a GPU: they compile and check correctness
in parallel, and take the GPU's timing lock (one per GPU for the whole machine) only to time. Jobs reserve
the memory their task needs (verify/memory.py). Verdicts are cached by (task, program, config):
repeated candidates, common in RL groups, cost nothing.
"""
from __future__ import annotations

import asyncio
import copy
import glob
import hashlib
import os
import queue
import random
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from verify import confine, sandbox
from verify.cache import VerdictCache
from verify.candidate import FormatError, check_program, extract_program
from verify.config import VerifyConfig
from verify.gpulock import GpuLock, machine_lock_path
from verify.inputs import shape_variants
from verify.judge import Judge
from verify.memory import MemoryBudget, TaskTooLarge, need_bytes
from verify.plan import draw_input_seed
from verify.refstore import ReferenceStore
from verify.task import Task, TaskError
from verify.timing import min_time_ms
from verify.verdict import Verdict


def cuda_device_count() -> int:
    """CUDA devices visible to this process, without creating a CUDA context here."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# the GPU front-end check's time limit (its forward runs no kernel: host code only, twice)
_FRONTEND_TIMEOUT_S = 30.0

class Verifier:
    def __init__(self, config: VerifyConfig | dict | None = None, workers: int | None = None,
                 workers_per_gpu: int = 4, cache: bool = True, cache_path: str | None = None, reward=None,
                 lock_dir: str | None = None):
        """`lock_dir`: where the per-device locks live; verifiers (and anything else timing on the same
        GPUs) that share a lock_dir never time at the same moment. Default: the machine's
        (gpulock.MACHINE_LOCK_DIR) for GPUs, so every verifier of the machine shares one lock per GPU;
        private to this verifier on the CPU, where nothing is timed."""
        if config is None:
            config = VerifyConfig()
        elif not isinstance(config, VerifyConfig):
            config = VerifyConfig.from_mapping(config)
        self.config = config
        n_gpu = cuda_device_count() if config.device in ("auto", "cuda") else 0
        if config.device == "cuda" and n_gpu == 0:
            raise RuntimeError("verify.device=cuda but no CUDA device is visible; use device=auto or cpu")
        self.interpret = n_gpu == 0
        self.backend = "triton-interpreter" if self.interpret else "triton-gpu"
        if workers is None:
            workers = max(1, os.cpu_count() or 1) if self.interpret else n_gpu * workers_per_gpu
        self.workers = workers
        self.reward = reward
        self._tmp = tempfile.mkdtemp(prefix="drt_verify_")
        persistent = config.persistent_workers == "always" or (
            config.persistent_workers == "auto" and n_gpu > 0)
        # every concurrent job gets a slot: (device, sandbox). A forking sandbox serves any number of slots;
        # a persistent one is one process, so each slot owns one.
        per_device = max(1, workers // max(1, n_gpu))
        shared = None if persistent else sandbox.Sandbox(self.interpret, workdir=self._tmp, spares=per_device)
        self._sandboxes = [] if persistent else [shared]
        self._slots: queue.Queue = queue.Queue()
        self._slot_boxes = [shared] if shared else []
        for i in range(workers):
            box = shared or sandbox.Sandbox(self.interpret, persistent=True,
                                            max_jobs=config.max_jobs_per_worker, workdir=self._tmp)
            if persistent:
                self._sandboxes.append(box)
                self._slot_boxes.append(box)
            self._slots.put((f"cuda:{i % n_gpu}" if n_gpu else "cpu", box))
        # references run where no candidate ever runs: a persistent trusted worker per device
        self._ref_boxes = {dev: (shared or sandbox.Sandbox(self.interpret, persistent=True, max_jobs=2**31,
                                                           workdir=self._tmp))
                           for dev in ([f"cuda:{g}" for g in range(n_gpu)] or ["cpu"])}
        self._sandboxes += [b for b in self._ref_boxes.values() if b is not shared]
        # the replayed check's jobs (verify/replay.py): a fresh (or prepared spare) process each, that never
        # ran a candidate
        self._replay_box = shared or sandbox.Sandbox(self.interpret, workdir=self._tmp, spares=per_device)
        if self._replay_box is not shared:
            self._sandboxes.append(self._replay_box)
        # interpreter mode: a forking worker server without the interpreter compiles kernels for a GPU
        self._frontend_box = None
        if self.interpret and config.gpu_compile_check:
            self._frontend_box = sandbox.Sandbox(False, workdir=self._tmp)
            self._sandboxes.append(self._frontend_box)
        # one reader-writer lock per device (see gpulock.py); on CPU it only orders forwards, nothing is timed
        where = lock_dir if (lock_dir or n_gpu) else self._tmp
        self._locks = {dev: machine_lock_path(_device_key(dev), where) for dev in self._ref_boxes}
        self._gpu_mem_gb = config.gpu_mem_gb
        if n_gpu:
            import torch

            total = torch.cuda.get_device_properties(0).total_memory
            if self._gpu_mem_gb is None:
                # an equal share of the card per worker, never more than half of it
                self._gpu_mem_gb = min(0.9 * total / per_device, 0.45 * total) / 2**30
            self._share = int(self._gpu_mem_gb * 2**30)
            self._budgets = {dev: MemoryBudget(int(0.9 * total), f"GPU ({dev})") for dev in self._ref_boxes}
        else:
            self._share = int(config.mem_cap_gb * 2**30)
        host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        self._host_share = int(config.mem_cap_gb * 2**30)
        # host memory of every job (on a GPU machine too: a task builds its inputs on the host first, and
        # KernelBench's reach 16 GiB): a job's host cap is what it reserves here, never a fixed 8 GiB
        self._host = MemoryBudget(max(int(0.8 * host), workers * self._host_share), "host")
        if not n_gpu:
            self._budgets = {"cpu": self._host}
        # what a candidate's worker must write: the lock files and device files
        # (what it may not read: _hidden)
        self._writable = (*(p for path in self._locks.values() for p in (path, path + ".turnstile")), "/dev")
        self._kernel_cache = None
        if config.kernel_cache == "shared":
            self._kernel_cache = os.path.join(self._tmp, "kernel_cache")
            os.makedirs(self._kernel_cache)
        self.confinement = "landlock" if confine.landlock_abi() >= 1 else "none"
        if self.confinement == "none":
            warnings.warn("this kernel has no Landlock: candidate workers run without file system "
                          "confinement (verdicts are still decided outside them; see verify/confine.py)",
                          stacklevel=2)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="verify")
        self._refs = ReferenceStore(config.ref_cache_gb * 2**30)
        self._cache = VerdictCache(cache_path) if cache else None

    # ---- public API -------------------------------------------------------------------------------
    def verify(self, task: Task, text: str) -> Verdict:
        """Verify one candidate text (completion or program) for one task. Raises only TaskError (the task
        itself does not run, or TaskTooLarge); whatever a candidate is, the answer is a verdict."""
        start = time.monotonic()
        try:
            return self._verify(task, text, start)
        except TaskError:
            raise
        except Exception as e:  # a verifier bug on one candidate must not stop an RL step or a batch
            v = Verdict(task_id=task.id, backend=self.backend)
            v.fail("correct", "crash",
                   f"the verifier failed on this candidate: {type(e).__name__}: {e}"[:400])
            return self._finish(v, start)

    def _verify(self, task: Task, text: str, start: float) -> Verdict:
        try:
            program = extract_program(text)
            if self.config.static_checks:
                check_program(program)
        except FormatError as e:
            v = Verdict(task_id=task.id, backend=self.backend).fail("format", e.error_class, str(e))
            return self._finish(v, start)
        # verdicts cached before the replayed check (verify/replay.py) and the launch comparison
        # (verify/launch_spec.py) are not reused
        key = f"{task.digest}\0{program}\0{self.config.digest()}\0replayed\0launches"
        key = hashlib.sha256(key.encode()).hexdigest()
        if self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None:
                hit = copy.deepcopy(hit)
                hit.cached, hit.wall_s = True, time.monotonic() - start
                return hit
        rejected, frontend = self._frontend_check(task, program)
        if rejected is not None:
            v = Verdict(task_id=task.id, backend=self.backend)
            v.passed("format")
            v.fail("compile", *rejected)
            v = self._finish(v, start)
            if self._cache is not None:
                self._cache.put(key, v)
            return v
        device, box = self._slots.get()
        keep = None
        try:
            with self._refs.use(task.digest, lambda: self._reference(task, device)) as ref:
                budget = self._budgets[device]
                # the reference ran, so the task fits the device: a need beyond it means "alone"
                need = need_bytes(ref["footprint"], self._share)
                cfg = self.config
                peak = cfg.peak_bandwidth_gbps
                bound = min_time_ms(ref["nbytes"], peak) if peak else 0.0
                # the worker gets the task's code, its inputs' seeds and the program; never a reference output
                job = {"task_id": task.id, "code": task.code, "variants": ref["variants"],
                       "variants_ok": ref["variants_ok"], "bound_ms": bound, "program": program,
                       "config": cfg.to_dict(), "device": device, "input_seed": ref["input_seed"],
                       "ref_ops": ref["ops"]}
                keep = tempfile.mkdtemp(prefix="replay_", dir=self._tmp)
                judge = Judge(task.id, cfg, ref, self.backend, on_gpu=not self.interpret, keep_dir=keep,
                              frontend=frontend)
                host_need = need_bytes(ref["footprint"], self._host_share)
                with self._reserve(budget, need, host_need) as (held, cap):
                    limits = dict(timeout_s=cfg.timeout_s, mem_cap_gb=cap,
                                  gpu_mem_gb=held / 2**30 if not self.interpret else None,
                                  lock_path=self._locks.get(device),
                                  hold_limit_s=None if self.interpret else cfg.gpu_hold_limit_s,
                                  on_event=judge.on_event, hide=self._hidden(), writable=self._writable,
                                  confinement=self.confinement, kernel_cache=self._kernel_cache)
                    out = box.run_job("candidate", job, **limits)
                    v = judge.verdict(out)
                    if judge.recording is not None and v.accepted:
                        # the replay's seed never reaches the candidate's job, and the replay compiles into
                        # its own cache (a shared one is writable by candidates)
                        replay = {"code": task.code, "program": program, "config": cfg.to_dict(),
                                  "device": device, "replay_seed": ref["replay_seed"], "ref_ops": ref["ops"]}
                        rep = self._replay_box.run_job("replay", replay, files=(judge.recording,),
                                                       **{**limits, "kernel_cache": None})
                        v = judge.replay_verdict(rep)
        finally:
            if keep is not None:
                shutil.rmtree(keep, ignore_errors=True)
            self._slots.put((device, box))
        v = self._finish(v, start)
        if self._cache is not None:
            self._cache.put(key, v)
        return v

    def verify_many(self, pairs, progress: bool = False, desc: str = "verify",
                    return_exceptions: bool = False) -> list:
        """Verify many (task, text) pairs in parallel; results in input order. A task that does not run
        raises TaskError, or with `return_exceptions` takes the TaskError's place in the list."""
        pairs = list(pairs)
        futures = [self._pool.submit(self.verify, t, c) for t, c in pairs]
        if progress:
            from tqdm import tqdm

            for f in tqdm(futures, desc=desc, unit="cand"):
                f.exception()
        if return_exceptions:
            return [f.exception() if isinstance(f.exception(), TaskError) else f.result() for f in futures]
        return [f.result() for f in futures]

    async def verify_async(self, task: Task, text: str) -> Verdict:
        """Await a verdict without blocking the event loop (for async reward functions)."""
        return await asyncio.wrap_future(self._pool.submit(self.verify, task, text))

    def device_lock(self, device: str) -> GpuLock:
        """The lock the workers take on `device`: hold `.exclusive()` to time something there yourself."""
        if device not in self._locks:
            raise KeyError(f"no device {device!r} in this verifier; it has {sorted(self._locks)}")
        return GpuLock(self._locks[device])

    def worker_starts(self) -> int:
        """Worker server processes started so far for candidates: kept workers, or the forking zygote.
        A kept worker retires only after a candidate that could have left something behind, so in a
        clean run this stays at `workers`."""
        return sum(box.starts for box in self._slot_boxes)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for box in self._sandboxes:
            box.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- internals --------------------------------------------------------------------------------
    def _frontend_check(self, task: Task, program: str) -> tuple[tuple[str, str] | None, dict | None]:
        """Interpreter mode: (why the program's kernels would not compile for a GPU, as (error class,
        message), or None; the check's report, whose launches the judge holds the replay's to). A forward
        that does not finish there gives a report that says so: a program that also fails under the
        interpreter is rejected for that by its own run, one that passes there is rejected by the judge
        (it runs only under the interpreter). (None, None) when the check is off."""
        if self._frontend_box is None:
            return None, None
        out = self._frontend_box.run_job("frontend", {"code": task.code, "program": program, "device": "cpu"},
                                         timeout_s=min(_FRONTEND_TIMEOUT_S, self.config.timeout_s),
                                         mem_cap_gb=self.config.mem_cap_gb, hide=self._hidden(),
                                         writable=self._writable, confinement=self.confinement)
        if out.status != "ok":
            first = (out.message or "").splitlines()[0] if out.message else ""
            return None, {"failed": f"{out.status}: {first}"[:300]}
        if not out.result["errors"]:
            return None, out.result
        why = ("the kernels run in Triton's interpreter but do not compile for a GPU (Triton front end, "
               f"sm_90): {out.result['errors'][0]}")
        return ("triton_compile_error", why[:600]), out.result

    def _hidden(self) -> tuple:
        """What a candidate's worker may not read: this verifier's folder (every job's files, the reference
        outputs) and every verifier's folder in the temp folder (drt_*; one made after the worker started
        is out of its reach too, see confine.py). The rest of the temp folder stays readable, so that a
        checkout or environment kept there still imports."""
        return (self._tmp, *glob.glob(os.path.join(tempfile.gettempdir(), "drt_*")))

    def _finish(self, v: Verdict, start: float) -> Verdict:
        if self.reward is not None:
            v.reward = dict(self.reward(v))
        v.wall_s = time.monotonic() - start
        return v

    @contextmanager
    def _reserve(self, budget: MemoryBudget, nbytes: int, host_bytes: int):
        """Hold `nbytes` of the device's budget and `host_bytes` of the host's (the device's first, in every
        job, so two jobs never wait on each other); yields (device bytes held, host cap in GiB). On the CPU
        the device is the host: one reservation."""
        if budget is self._host:
            with budget.reserve(max(nbytes, host_bytes)) as held:
                yield held, held / 2**30
            return
        with budget.reserve(nbytes) as held, self._host.reserve(host_bytes) as host_held:
            yield held, host_held / 2**30

    def _reference(self, task: Task, device: str) -> dict:
        """Compute the reference outputs of `task` on `device` into a file; self._refs keeps it for the task's
        later candidates (on any device of the same kind) within verify.ref_cache_gb. A reference that
        runs out of memory in a worker's share runs again with the device to itself; one that does not
        fit even then is TaskTooLarge."""
        # the grown variant's sizes are drawn here, like the input seeds: not predictable by a candidate
        variants = shape_variants(task.code, self.config.shape_variants, random.Random(draw_input_seed()))
        path = os.path.join(self._tmp, f"{task.digest[:24]}.pt")
        job = {"code": task.code, "variants": variants, "config": self.config.to_dict(), "device": device,
               "out_path": path, "input_seed": draw_input_seed(), "replay_seed": draw_input_seed()}
        budget = self._budgets[device]
        for alone in (False, True):
            host = self._host.total if alone else self._host_share
            with self._reserve(budget, budget.total if alone else self._share, host) as (held, cap):
                out = self._ref_boxes[device].run_job(
                    "reference", job, timeout_s=self.config.timeout_s, mem_cap_gb=cap,
                    gpu_mem_gb=held / 2**30 if not self.interpret else None,
                    lock_path=self._locks.get(device),
                    hold_limit_s=None if self.interpret else self.config.gpu_hold_limit_s)
            if not _out_of_memory(out):
                break
        first = (out.message or "").splitlines()[0] if out.message else ""
        if _out_of_memory(out):
            raise TaskTooLarge(f"task {task.id} runs out of memory even with the {budget.name} to itself "
                               f"({budget.total / 2**30:.1f} GiB): {first}")
        if out.status != "ok":
            raise TaskError(f"task {task.id} does not run ({out.status}): {first}")
        return {"path": path, "variants": variants, "input_seed": job["input_seed"],
                "replay_seed": job["replay_seed"], **out.result}


def _out_of_memory(out) -> bool:
    text = (out.message or "").lower()
    return out.status == "out_of_memory" or (out.status != "ok" and any(
        sign in text for sign in ("out of memory", "memoryerror", "can't allocate memory")))


def _device_key(device: str) -> str:
    """A name of `device` every process of the machine agrees on: a GPU's UUID (indices depend on each
    process's CUDA_VISIBLE_DEVICES)."""
    if device == "cpu":
        return "cpu"
    import torch

    props = torch.cuda.get_device_properties(int(device.split(":")[1]))
    uuid = getattr(props, "uuid", None)
    return f"GPU-{uuid}" if uuid is not None else device.replace(":", "")
