"""The trusted side of a verification: decides a candidate's verdict where no candidate code runs.

A Judge lives in the verifier's process (which never imports candidate code) for one candidate job. The
candidate's worker reports its stages as events with payload files in its private folder (read with
`torch.load(weights_only=True)`: tensors, numbers and strings, nothing that runs); the judge loads the
task's reference outputs itself, checks the file's digest against the one the reference job reported,
compares, and decides every stage:

- compile: whether the worker loaded ModelNew (its own report of a failure can only reject it);
- faithful: per trial, the launches, kernel errors, torch ops, streams, output types and aliasing the
  worker measured, and the no-op run's output, which must NOT match the reference;
- correct: every trial's output against the reference for the same inputs, the buffers after them;
- faithful, again once the candidate's worker has ended (`replay_verdict`): the forward the worker recorded
  (verify/record.py), replayed by the verifier in a clean process on inputs drawn from a seed the candidate
  never had (verify/replay.py), against the reference for those inputs; a recording that cannot be replayed
  is rejected too;
- timed: the outputs of the timed calls against the reference for the timing inputs (a candidate honest
  for its first calls and lazy afterwards fails here), the timings against the judge's own wall clock
  over the timed calls (claims of more device time than elapsed are forged), the memory-bandwidth bound
  (faster than the bytes allow: the timing was fooled). Each failure rejects the candidate.

What the judge cannot see is what happened inside the worker: the measurements it decides on are the
worker's (a candidate that rewrites its own process's measurements is the audit's concern, verify/audit.py);
what it guarantees is that no answer key and no verdict is ever within the candidate's reach.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import time

import torch

from verify.compare import compare, state_mismatch
from verify.config import VerifyConfig
from verify.launch_spec import as_specs, describe_difference
from verify.plan import trial_plan
from verify.reference_timing import EAGER_SLACK
from verify.timing import min_time_ms
from verify.verdict import ERROR_CLASSES, Timing, Verdict

OUTCOME_CLASS = {"timeout": "timeout", "crash": "crash", "out_of_memory": "out_of_memory", "error": "crash"}
# slack of the wall-clock check: IPC latency and the judge's scheduling between the two events
_WALL_SLACK_MS = 50.0


class _Reject(Exception):
    def __init__(self, stage: str, error_class: str, message: str):
        super().__init__(message)
        self.stage, self.error_class = stage, error_class


class Judge:
    """Decide one candidate job. `ref` is the reference store's entry for the task (path, digest,
    variants_ok, nbytes); `on_event` is the sandbox's callback (see Sandbox.run_job)."""

    def __init__(self, task_id: str, cfg: VerifyConfig, ref: dict, backend: str, on_gpu: bool,
                 keep_dir: str | None = None, frontend: dict | None = None):
        """`keep_dir`: a folder of the verifier's, out of every worker's reach, where the recording is kept
        for the replay (None: no replayed check). `frontend`: the GPU front-end check's report of the
        program (verify/gpu_frontend.py; CPU interpreter only), whose launches the replay's must match."""
        self.cfg, self.ref, self.on_gpu, self.keep_dir = cfg, ref, on_gpu, keep_dir
        self.frontend = frontend
        # the recorded forward, copied out of the worker's folder once trials pass, for the replay job
        self.recording: str | None = None
        self._replay_seen = False
        self.v = Verdict(task_id=task_id, backend=backend, device=ref["device"])
        self.v.passed("format")
        self.plan = trial_plan(cfg, ref["variants_ok"], ref["input_seed"])
        self.done = False  # a stage failed, or every stage was decided
        self.reported = False  # the worker reported its trials
        self._refs = None
        self._begin = None

    # ---- events from the worker -------------------------------------------------------------------
    def on_event(self, msg: dict, private: str) -> dict | None:
        name = msg.get("name")
        answer = None
        try:
            if name == "trials" and not self.reported:
                self.reported = True
                self._trials(self._payload(private, "trials"))
                self._keep_recording(private)
                if not self.done and not (self.on_gpu and self.cfg.timing):
                    self.done = True
            elif name == "timing_begin" and self._begin is None:
                self._begin = time.monotonic()
            elif name == "timed" and self.reported and not self.done:
                wall_ms = (time.monotonic() - self._begin) * 1e3 if self._begin is not None else 0.0
                self._timed(self._payload(private, "timed"), wall_ms)
                self.done = True
            elif name == "replayed" and self.recording is not None and not self._replay_seen:
                self._replay_seen = True
                self._replayed(self._payload(private, "replayed"))
        except _Reject as r:
            self.v.fail(r.stage, r.error_class, str(r))
            self.done = True
        if name == "trials" and msg.get("wants_answer"):
            answer = {"go": not self.done}
        return answer

    def verdict(self, outcome) -> Verdict:
        """The verdict once the worker has ended (`outcome`: sandbox.Outcome)."""
        v = self.v
        if self.done:
            return self._why_untimed(v)
        stage = "timed" if self.reported and v.stages["correct"] == "pass" else "correct"
        if outcome.status != "ok":
            first = outcome.message.splitlines()[0] if outcome.message else outcome.status
            v.fail(stage, OUTCOME_CLASS[outcome.status], first)
        elif not self.reported:
            v.fail("correct", "crash", "the worker ended without reporting its trials")
        else:
            v.fail("timed", "timing_error", "the worker ended without reporting its timing")
        return self._why_untimed(v)

    def replay_verdict(self, outcome) -> Verdict:
        """The verdict once the replay worker (verify/replay.py) has ended (`outcome`: sandbox.Outcome)."""
        v = self.v
        if v.accepted and not self._replay_seen:
            why = outcome.message.splitlines()[0] if outcome.message else outcome.status
            why = f"the replay of the recorded forward did not finish: {why}"[:400]
            v.fail("faithful", "replay_failed", why)
        if not v.accepted:
            v.speedup_missing_reason = None
        return v

    def _keep_recording(self, private: str) -> None:
        """Copy the worker's recording where the replay job finds it (the worker's folder goes with it)."""
        if self.keep_dir is None:
            return
        path = os.path.join(private, "recording.pt")
        if not os.path.isfile(path) or os.path.islink(path):
            raise _Reject("faithful", "replay_failed", "the worker wrote no recording of its forward")
        if os.path.getsize(path) > self.cfg.mem_cap_gb * 2**30:
            raise _Reject("faithful", "replay_failed", "the recording is larger than the memory cap")
        self.recording = os.path.join(self.keep_dir, "recording.pt")
        shutil.copyfile(path, self.recording)

    def _replayed(self, p: dict) -> None:
        """The replayed forward's outputs against the reference for the replay's inputs."""
        cfg = self.cfg
        if p.get("error"):
            why = f"the forward recorded in the candidate's process could not be replayed: {p['error']}"
            raise _Reject("faithful", "replay_failed", why[:600])
        ref = self._references().get("replayed")
        if ref is None:
            raise _Reject("faithful", "replay_failed", "no reference for the replay's inputs")
        cmp = compare(p.get("out"), ref["output"], cfg.atol, cfg.rtol, ref["floors"], cfg.error_floor_factor,
                      ref["truths"])
        if not cmp.ok:
            why = ("the kernels and torch ops recorded in the candidate's process give wrong outputs when "
                   "replayed on new inputs in a clean process: the output depends on more than them (host "
                   f"compute, state, or values fixed for the trial's inputs): {cmp.message}")
            raise _Reject("faithful", "replay_mismatch", why[:600])
        self._same_launches(p.get("launches"))

    def _same_launches(self, replayed) -> None:
        """The kernels, constexprs, scalars, dtypes and grids the replay launched under the interpreter
        against those the GPU front-end check saw launched without it (verify/launch_spec.py)."""
        if self.frontend is None:
            return
        if self.frontend.get("failed"):
            why = ("the forward runs under Triton's interpreter but did not finish without it (the GPU "
                   f"front-end check, which runs it to compile every launch): {self.frontend['failed']}")
            raise _Reject("faithful", "interpreter_divergence", why[:600])
        if self.frontend.get("launches") is None:
            return
        if replayed is None:
            raise _Reject("faithful", "replay_failed", "the replay reported no launches")
        interpreted, compiled = as_specs(replayed), as_specs(self.frontend["launches"])
        # a forward that raised without the interpreter (its values after a launch are garbage there)
        # reached only part of its launches; those it reached must still be the interpreter's
        diverged = (compiled != interpreted if not self.frontend.get("forward_error")
                    else not compiled <= interpreted or (interpreted and not compiled))
        if diverged:
            why = ("the program launches other kernels or arguments when Triton's interpreter is off (as on "
                   "a GPU) than under it, so this verdict would not hold on a GPU: "
                   f"{describe_difference(interpreted, compiled)}")
            raise _Reject("faithful", "interpreter_divergence", why[:600])

    def _why_untimed(self, v: Verdict) -> Verdict:
        """An accepted verdict without a speedup says why (`speedup_missing_reason`)."""
        if v.accepted and v.speedup_eager is None:
            if not self.on_gpu:
                v.speedup_missing_reason = "not timed: the CPU interpreter (timing needs a GPU)"
            elif not self.cfg.timing:
                v.speedup_missing_reason = "not timed: verify.timing=false"
            elif v.stage == "timed":
                v.speedup_missing_reason = f"timing failed ({v.error_class}): {v.message}"[:300]
            else:
                v.speedup_missing_reason = "not timed (no timing was reported)"
        return v

    # ---- payloads and references ------------------------------------------------------------------
    def _payload(self, private: str, name: str) -> dict:
        """A stage's payload, from its fixed name in the job's private folder (never a path the worker
        names), bounded in size, loaded without running anything."""
        path = os.path.join(private, f"{name}.pt")
        limit = 8 * os.path.getsize(self.ref["path"]) + 2**26
        try:
            if os.path.getsize(path) > limit:
                raise _Reject("correct", "crash", f"the worker's {name} report is larger than {limit} bytes")
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except _Reject:
            raise
        except Exception as e:
            raise _Reject(
                "correct",
                "crash",
                f"the worker's {name} report could not be read: {type(e).__name__}: {str(e)[:200]}",
            ) from None
        if not isinstance(payload, dict):
            raise _Reject("correct", "crash", f"the worker's {name} report is not a mapping")
        return payload

    def _references(self) -> dict:
        """The task's reference file, loaded here and checked against the digest its job reported: a file
        changed on disk is a forgery, whoever made it."""
        if self._refs is None:
            with open(self.ref["path"], "rb") as f:
                data = f.read()
            if hashlib.sha256(data).hexdigest() != self.ref["digest"]:
                raise _Reject(
                    "correct",
                    "crash",
                    "the reference outputs changed on disk after they were "
                    "computed (tampering); verification abandoned",
                )
            import io

            self._refs = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return self._refs

    # ---- stages -----------------------------------------------------------------------------------
    def _trials(self, p: dict) -> None:
        v, cfg = self.v, self.cfg
        v.phases.update(
            {k: float(t) for k, t in (p.get("phases") or {}).items() if isinstance(t, (int, float))}
        )
        error = p.get("error")
        if not p.get("compiled"):
            raise _Reject(*_error(error, "compile", "the worker did not report loading the program"))
        v.passed("compile")
        if p.get("subclasses_model"):
            raise _Reject(
                "faithful", "subclasses_model", "ModelNew must not inherit from the reference Model"
            )
        recs = p.get("trials") or []
        for n, rec in enumerate(recs):
            if rec.get("error"):
                raise _Reject(*_error(rec["error"], "correct", "a trial failed"))
            if rec.get("overruns"):
                raise _Reject(
                    "correct",
                    "out_of_bounds_write",
                    f"{rec['overruns']} buffer(s) allocated in forward were written past their "
                    "end: check the masks of your stores (offs < n, not <=)",
                )
            self._faithful(rec, n)
        if error:
            raise _Reject(*_error(error, "correct", "the worker failed"))
        if len(recs) != len(self.plan):
            raise _Reject("correct", "crash", f"the worker reported {len(recs)} of {len(self.plan)} trials")
        refs = self._references()
        outputs, floors = refs["outputs"], refs.get("floors") or [None] * len(refs["outputs"])
        truths = refs.get("truths") or [None] * len(outputs)
        if (
            p.get("noop") is not None
            and compare(
                p["noop"], outputs[0], cfg.atol, cfg.rtol, floors[0], cfg.error_floor_factor, truths[0]
            ).ok
        ):
            raise _Reject(
                "faithful",
                "kernel_not_doing_work",
                "the output is still correct with every Triton "
                "kernel switched off: the kernels do not compute the result",
            )
        v.passed("faithful")
        for n, ((mod_idx, _), rec) in enumerate(zip(self.plan, recs)):
            if rec.get("mutated"):
                raise _Reject(
                    "correct", "input_mutated", "forward modified one of its input tensors in place"
                )
            if rec.get("cached"):
                raise _Reject(
                    "correct",
                    "cached_output",
                    "forward returned the same tensor object as on the "
                    "previous call; compute the output from the current inputs",
                )
            cmp = compare(
                rec.get("out"), outputs[n], cfg.atol, cfg.rtol, floors[n], cfg.error_floor_factor, truths[n]
            )
            v.max_abs_err = max(v.max_abs_err or 0.0, cmp.max_abs)
            v.max_rel_err = max(v.max_rel_err or 0.0, cmp.max_rel)
            if not cmp.ok:
                if mod_idx:
                    raise _Reject(
                        "correct",
                        "shape_specialized",
                        f"correct on the default shapes but not when the input sizes change: {cmp.message}",
                    )
                raise _Reject("correct", cmp.error_class, f"trial {n}: {cmp.message}")
        msg = state_mismatch(
            p.get("buffers") or {},
            refs.get("buffers_before") or {},
            refs.get("buffers") or {},
            cfg.atol,
            cfg.rtol,
        )
        if msg:
            raise _Reject("correct", "wrong_state", msg)
        v.trials = len(self.plan)
        if p.get("patched"):
            raise _Reject(
                "faithful", "monkey_patch", f"candidate replaced {', '.join(map(str, p['patched']))}"
            )
        v.passed("correct")

    def _faithful(self, rec: dict, n: int) -> None:
        """The faithfulness checks on one trial's measurements (every trial, not only the first; a call
        that returned the previous call's output object is left to correct's cached_output)."""
        v, cfg = self.v, self.cfg
        if n == 0:
            v.kernel_launches = int(rec.get("launches") or 0)
            v.torch_ops = [str(op) for op in rec.get("torch_ops") or []]
        elif rec.get("cached"):
            return
        if rec.get("patched"):
            raise _Reject(
                "faithful",
                "monkey_patch",
                f"candidate replaced {', '.join(map(str, rec['patched']))}; "
                "do not modify torch, triton or timing functions",
            )
        if rec.get("kernel_errors"):
            raise _Reject(
                "faithful",
                "swallowed_kernel_error",
                f"a kernel launch raised and forward carried on: {rec['kernel_errors'][0]}",
            )
        if not rec.get("launches"):
            raise _Reject(
                "faithful",
                "no_kernel_launch",
                "forward launched no Triton kernel; the compute must run in @triton.jit kernels",
            )
        banned = [str(op) for op in rec.get("banned_ops") or []]
        if banned and not cfg.allow_torch_compute:
            raise _Reject(
                "faithful",
                "torch_fallback",
                f"forward computes with torch ops outside Triton kernels: "
                f"{', '.join(banned[:6])}; move that compute into kernels",
            )
        if rec.get("side_stream"):
            raise _Reject(
                "faithful", "side_stream", "kernels were launched on a side stream; use the current stream"
            )
        if rec.get("subclass"):
            raise _Reject(
                "faithful", "tensor_subclass", f"forward returned a {rec['subclass']}, not a plain tensor"
            )
        if rec.get("aliases_input"):
            raise _Reject(
                "faithful",
                "output_aliases_input",
                "forward returned (a view of) its input; write the result to a new tensor",
            )

    def _check_baselines(self) -> None:
        """Every baseline the candidate's worker timed, held to the reference worker's time for it. A
        compiled baseline the reference worker has no time for (its torch.compile failed there) is dropped
        from the verdict with a flag: it cannot be checked, so it is not reported."""
        v = self.v
        for name in _BASELINE_NAMES:
            reported = getattr(v, name)
            if reported is None:
                continue
            trusted = _timing(self.ref.get(name))
            if trusted is None and name != "eager":
                setattr(v, name, None)
                why = self.ref.get("baseline_error") or "not timed there"
                v.timing_flags.append(f"{_BASELINE_NAMES[name]} dropped: no trusted time for it ({why})")
                continue
            _check_baseline(name, reported, trusted)

    def _timed(self, p: dict, wall_ms: float) -> None:
        v, cfg = self.v, self.cfg
        if p.get("error"):
            raise _Reject(*_error(p["error"], "timed", "timing failed"))
        v.eager, v.candidate, v.compiled, v.compiled_max = (
            _timing(p.get(k)) for k in ("eager", "candidate", "compiled", "compiled_max"))
        if v.eager is None or v.candidate is None:
            raise _Reject("timed", "timing_error", "the worker reported no timing for eager or the candidate")
        v.timing_flags += [str(f) for f in p.get("flags") or []]
        self._check_baselines()
        if p.get("patched"):
            raise _Reject(
                "timed",
                "timing_error",
                f"something replaced {', '.join(map(str, p['patched']))} while timing",
            )
        timed_ref = self._references().get("timed")
        outs = p.get("outputs") or []
        if timed_ref is None or not outs:
            raise _Reject("timed", "timing_error", "no outputs of the timed calls to check")
        for out in outs:
            cmp = compare(
                out,
                timed_ref["output"],
                cfg.atol,
                cfg.rtol,
                timed_ref["floors"],
                cfg.error_floor_factor,
                timed_ref["truths"],
            )
            if not cmp.ok:
                raise _Reject(
                    "timed",
                    "timed_output_wrong",
                    "the calls that were timed returned wrong outputs "
                    f"(correct in the trials, not when timed): {cmp.message}",
                )
        timings = (v.eager, v.candidate, v.compiled, v.compiled_max)
        claimed = sum(t.min_ms * t.runs for t in timings if t is not None)
        if self._begin is None or claimed > wall_ms + _WALL_SLACK_MS:
            raise _Reject(
                "timed",
                "timing_inconsistent",
                f"the timings claim {claimed:.1f} ms of device time in "
                f"{wall_ms:.1f} ms of the verifier's wall clock: they were not measured",
            )
        bound = min_time_ms(self.ref["nbytes"], cfg.peak_bandwidth_gbps) if cfg.peak_bandwidth_gbps else 0.0
        v.speedup_eager = v.eager.median_ms / v.candidate.median_ms
        if v.compiled is not None:
            v.speedup_compile = v.compiled.median_ms / v.candidate.median_ms
        if v.compiled_max is not None:
            v.speedup_compile_max = v.compiled_max.median_ms / v.candidate.median_ms
        if bound and v.candidate.median_ms < bound:
            raise _Reject(
                "timed",
                "implausible_speed",
                f"{v.candidate.median_ms:.4f} ms is below the "
                f"{bound:.4f} ms needed just to move the data; the timing was fooled",
            )
        v.passed("timed")


def _check_baseline(name: str, reported: Timing, trusted: Timing | None) -> None:
    """A baseline time the candidate's worker reports against the reference worker's (reference_timing.py):
    a baseline slowed down in the candidate's process (patched ops or Inductor settings, an invented
    number) inflates the candidate's speedup over it."""
    if trusted is None or trusted.method != reported.method:
        return
    if reported.median_ms > EAGER_SLACK * trusted.median_ms:
        raise _Reject(
            "timed",
            "timing_inconsistent",
            f"{_BASELINE_NAMES[name]} took {reported.median_ms:.4f} ms in the candidate's process and "
            f"{trusted.median_ms:.4f} ms in the verifier's reference worker (more than {EAGER_SLACK:g}x): "
            "the baseline was slowed down where the candidate runs",
        )


_BASELINE_NAMES = {
    "eager": "eager PyTorch",
    "compiled": "torch.compile",
    "compiled_max": "torch.compile (max-autotune)",
}


def _error(error, stage: str, default: str) -> tuple[str, str, str]:
    """(stage, error_class, message) of a failure the worker reported (its own rejections only)."""
    if not isinstance(error, dict):
        return stage, "crash", default
    said = (str(error.get("stage")), str(error.get("error_class")))
    message = str(error.get("message") or default)[:600]
    if said[0] in ("format", "compile", "faithful", "correct", "timed") and said[1] in ERROR_CLASSES[said[0]]:
        return (*said, message)
    return stage, "crash", message


def _timing(d) -> Timing | None:
    """A Timing from the worker's numbers (positive and finite, else a rejection)."""
    if d is None:
        return None
    try:
        t = Timing(**d)
    except TypeError as e:
        raise _Reject("timed", "timing_error", f"malformed timing report: {e}") from None
    for name in ("median_ms", "min_ms", "max_ms"):
        value = getattr(t, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise _Reject("timed", "timing_error", f"timing {name}={value!r} is not a positive time")
    if not isinstance(t.runs, int) or t.runs < 1:
        raise _Reject("timed", "timing_error", f"timing runs={t.runs!r} is not a count")
    if not t.min_ms <= t.median_ms <= t.max_ms:
        raise _Reject("timed", "timing_inconsistent",
                      f"timing median {t.median_ms} ms outside its own range [{t.min_ms}, {t.max_ms}] ms")
    return t
