"""The Verdict contract: what the verifier says about one candidate for one task.

Stages run in order (format, compile, faithful, correct, timed); the first that fails names the
`stage` and `error_class` of the verdict and the later ones are "skipped". `message` is short and
written to be fed back to a model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

STAGES = ("format", "compile", "faithful", "correct", "timed")
PASS, FAIL, SKIPPED = "pass", "fail", "skipped"

# Error classes, by the stage that reports them. One name per failure mode, stable for dashboards.
ERROR_CLASSES = {
    "format": (
        "no_code_block", "syntax_error", "missing_modelnew", "no_triton_kernel", "subclasses_model",
        "forbidden_construct", "environment_probe", "monkey_patch", "side_stream",
    ),
    "compile": ("import_error", "init_error", "triton_compile_error", "timeout", "crash", "out_of_memory"),
    "faithful": (
        "no_kernel_launch", "swallowed_kernel_error", "torch_fallback", "kernel_not_doing_work",
        "output_aliases_input", "tensor_subclass", "monkey_patch", "side_stream", "subclasses_model",
        "replay_mismatch", "replay_failed", "interpreter_divergence",
    ),
    "correct": (
        "runtime_error", "shape_mismatch", "dtype_mismatch", "nan_or_inf", "wrong_values", "input_mutated",
        "cached_output", "shape_specialized", "wrong_state", "out_of_bounds_write", "timeout", "crash",
        "out_of_memory", "task_too_large",
    ),
    "timed": ("implausible_speed", "timing_error", "timed_output_wrong", "timing_inconsistent", "timeout",
              "crash", "out_of_memory"),
}


# Failures of stage "timed" that mean the timing was fooled (the timed calls returned wrong outputs, or the
# times claimed cannot have been measured): the candidate is rejected. Other timing failures (an error,
# a timeout or OOM while timing) leave it accepted, untimed.
FOOLED_TIMING = ("implausible_speed", "timed_output_wrong", "timing_inconsistent")


@dataclass
class Timing:
    """Runtime of one callable in milliseconds: median over `runs` timed calls and its spread."""

    # median runtime, ms
    median_ms: float
    # interquartile range, ms
    iqr_ms: float
    # fastest and slowest timed call, ms
    min_ms: float
    max_ms: float
    # number of timed calls (warm-up excluded)
    runs: int
    # host (CPU) time per call to launch it, ms: the call rate the CPU allows, whatever the GPU does
    host_ms: float = 0.0
    # "graph": calls captured in a CUDA graph and replayed, each call's time its span on the device (first
    # kernel's start to last kernel's end, from CUPTI); median and spread over groups of calls (each the mean
    # of its calls). "graph_events": the same replays, timed by events around each (no device trace, or spans
    # that miss much of the replays' time; `fallback` says why). "stream": launched and timed call by call.
    # See verify/timing/
    method: str = "stream"
    # why the graph method was not used (empty when it was, or was not asked for)
    fallback: str = ""
    # graph method: the SM clock while timing, MHz (from the spin kernel ahead of the timed replays)
    sm_mhz: float = 0.0
    # graph method: median per-call time from events around the replays, ms (each call's launch included)
    replay_ms: float = 0.0


@dataclass
class Verdict:
    """The full record of one verification."""

    task_id: str = ""
    # "triton-gpu" (compiled Triton on a CUDA device) or "triton-interpreter" (CPU, TRITON_INTERPRET=1)
    backend: str = ""
    # device name the candidate ran on
    device: str = ""
    stages: dict[str, str] = field(default_factory=lambda: {s: SKIPPED for s in STAGES})
    # first failing stage, or None when every stage that ran passed
    stage: str | None = None
    error_class: str | None = None
    message: str = ""
    # worst errors over all trials, against the reference
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    trials: int = 0
    # Triton kernel launches counted during one forward
    kernel_launches: int = 0
    # torch compute ops the candidate's forward called outside its kernels (allowed ones included)
    torch_ops: list[str] = field(default_factory=list)
    candidate: Timing | None = None
    eager: Timing | None = None
    compiled: Timing | None = None
    # torch.compile(mode="max-autotune-no-cudagraphs"), when VerifyConfig.compile_max_autotune
    compiled_max: Timing | None = None
    # eager_ms / candidate_ms, compile_ms / candidate_ms and compile_max_ms / candidate_ms
    speedup_eager: float | None = None
    speedup_compile: float | None = None
    speedup_compile_max: float | None = None
    # an accepted verdict without speedup_eager says why here (set by the judge; None when it has one)
    speedup_missing_reason: str | None = None
    # set when a speedup passed the physical bound and was re-measured
    timing_flags: list[str] = field(default_factory=list)
    # reward components filled in by a reward decomposition (score, r_c, r_s, ...)
    reward: dict[str, float] = field(default_factory=dict)
    # seconds spent in the worker per phase (setup, load, trials, noop, timing)
    phases: dict[str, float] = field(default_factory=dict)
    # wall-clock seconds the verification took, and whether it came from the cache
    wall_s: float = 0.0
    cached: bool = False

    @property
    def accepted(self) -> bool:
        """Correct and faithful, and not caught fooling the timing (timing is not required to accept).

        >>> v = Verdict()
        >>> for stage in ("format", "compile", "faithful", "correct"):
        ...     v.passed(stage)
        >>> v.accepted, v.fail("timed", "timing_error", "").accepted
        (True, True)
        >>> v.fail("timed", "implausible_speed", "").accepted
        False
        """
        if self.stage == "timed" and self.error_class in FOOLED_TIMING:
            return False
        return all(self.stages[s] == PASS for s in ("format", "compile", "faithful", "correct"))

    @property
    def compiled_ok(self) -> bool:
        return self.stages["compile"] == PASS

    @property
    def faithful(self) -> bool:
        return self.stages["faithful"] == PASS

    @property
    def timed(self) -> bool:
        return self.stages["timed"] == PASS

    def fail(self, stage: str, error_class: str, message: str) -> "Verdict":
        """Mark `stage` failed (and the stages after it skipped). Returns self for chaining."""
        assert error_class in ERROR_CLASSES[stage], f"unknown error class {error_class!r} for stage {stage!r}"
        self.stages[stage] = FAIL
        for later in STAGES[STAGES.index(stage) + 1:]:
            self.stages[later] = SKIPPED
        self.stage, self.error_class, self.message = stage, error_class, message
        return self

    def passed(self, stage: str) -> None:
        self.stages[stage] = PASS

    def to_dict(self) -> dict:
        d = asdict(self)
        d["accepted"] = self.accepted
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        d = {k: v for k, v in d.items() if k != "accepted"}
        for key in ("candidate", "eager", "compiled", "compiled_max"):
            if d.get(key) is not None:
                d[key] = Timing(**d[key])
        return cls(**d)

    def summary(self) -> str:
        """A few readable lines (what the CLI prints)."""
        marks = " ".join(f"{s}:{self.stages[s]}" for s in STAGES)
        head = "ACCEPTED" if self.accepted else f"REJECTED at {self.stage} [{self.error_class}]"
        lines = [f"{self.task_id}: {head}  ({self.backend}, {self.device})", f"  stages  {marks}"]
        if self.message:
            lines.append(f"  message {self.message}")
        if self.max_abs_err is not None:
            lines.append(f"  error   max abs {self.max_abs_err:.3g}, max rel {self.max_rel_err:.3g} "
                         f"over {self.trials} trials; {self.kernel_launches} kernel launches per forward")
        if self.candidate is not None:
            t = f"  time    candidate {self.candidate.median_ms:.4f} ms (iqr {self.candidate.iqr_ms:.4f})"
            if self.eager is not None:
                t += f", eager {self.eager.median_ms:.4f} ms -> {self.speedup_eager:.2f}x"
            if self.compiled is not None:
                t += f", torch.compile {self.compiled.median_ms:.4f} ms -> {self.speedup_compile:.2f}x"
            if self.compiled_max is not None:
                t += (f", torch.compile max-autotune {self.compiled_max.median_ms:.4f} ms -> "
                      f"{self.speedup_compile_max:.2f}x")
            lines.append(t)
        elif self.accepted and self.speedup_missing_reason:
            lines.append(f"  time    {self.speedup_missing_reason}")
        if self.timing_flags:
            lines.append(f"  flags   {', '.join(self.timing_flags)}")
        if self.reward:
            lines.append("  reward  " + ", ".join(f"{k}={v:.4g}" for k, v in self.reward.items()))
        return "\n".join(lines)
