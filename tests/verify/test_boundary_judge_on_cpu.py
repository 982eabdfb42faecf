"""The judge (verify/judge.py), the trusted side, decides on what a worker reports: here reports are written
as a worker would write them (payload files in a private folder) and fed to a real Judge. A report cannot
make it accept wrong outputs, changed references, outputs of the timed calls that differ from the reference,
timings its own clock did not see elapse, or a speed beyond the memory bandwidth."""

import hashlib
import os
import time

import pytest
import torch

from verify.config import VerifyConfig
from verify.judge import Judge
from verify.sandbox import Outcome

SEED = 123


def _ref(tmp_path, outputs, timed_output=None, nbytes=4096):
    path = str(tmp_path / "ref.pt")
    torch.save(
        {
            "outputs": outputs,
            "buffers": {},
            "buffers_before": {},
            "floors": [None] * len(outputs),
            "truths": [None] * len(outputs),
            "timed": None
            if timed_output is None
            else {"output": timed_output, "floors": None, "truths": None},
        },
        path,
    )
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {
        "path": path,
        "digest": digest,
        "variants_ok": [],
        "nbytes": nbytes,
        "device": "cpu",
        "input_seed": SEED,
    }


def _trial(out):
    return {
        "out": out,
        "launches": 1,
        "kernel_errors": [],
        "torch_ops": [],
        "banned_ops": [],
        "overruns": 0,
        "side_stream": False,
        "subclass": "",
        "aliases_input": False,
        "mutated": False,
        "cached": False,
        "patched": [],
    }


def _trials_report(outs, noop=None):
    return {
        "compiled": True,
        "error": None,
        "phases": {},
        "subclasses_model": False,
        "trials": [_trial(o) for o in outs],
        "noop": noop,
        "buffers": {},
        "patched": [],
    }


def _timing(median_ms, runs=100):
    return {
        "median_ms": median_ms,
        "iqr_ms": 0.0,
        "min_ms": median_ms,
        "max_ms": median_ms,
        "runs": runs,
        "host_ms": 0.0,
        "method": "graph",
        "fallback": "",
        "sm_mhz": 0.0,
        "replay_ms": median_ms,
    }


def _run(tmp_path, ref, trials, timed=None, on_gpu=False, cfg=None, wall_s=0.0):
    """Feed a judge the events of one job; returns its verdict."""
    cfg = cfg or VerifyConfig(trials=2, shape_variants=0)
    private = tmp_path / "private"
    private.mkdir(exist_ok=True)
    judge = Judge("t", cfg, ref, "test", on_gpu=on_gpu)
    torch.save(trials, private / "trials.pt")
    answer = judge.on_event({"name": "trials", "wants_answer": on_gpu}, str(private))
    if timed is not None and answer and answer["go"]:
        judge.on_event({"name": "timing_begin"}, str(private))
        time.sleep(wall_s)
        torch.save(timed, private / "timed.pt")
        judge.on_event({"name": "timed"}, str(private))
    return judge.verdict(Outcome("ok", {}))


def test_correct_report_accepted_wrong_one_rejected(tmp_path):
    outs = [torch.randn(8), torch.randn(8)]
    ref = _ref(tmp_path, outs)
    assert _run(tmp_path, ref, _trials_report(outs)).accepted
    v = _run(tmp_path, ref, _trials_report([outs[0], torch.zeros(8)]))
    assert (v.stage, v.error_class) == ("correct", "wrong_values"), v.summary()


def test_a_noop_run_that_stays_correct_is_rejected(tmp_path):
    outs = [torch.randn(8), torch.randn(8)]
    v = _run(tmp_path, _ref(tmp_path, outs), _trials_report(outs, noop=outs[0].clone()))
    assert (v.stage, v.error_class) == ("faithful", "kernel_not_doing_work"), v.summary()


def test_faithfulness_is_checked_on_every_trial(tmp_path):
    outs = [torch.randn(8), torch.randn(8)]
    report = _trials_report(outs)
    report["trials"][1]["banned_ops"] = ["mm"]
    v = _run(tmp_path, _ref(tmp_path, outs), report)
    assert (v.stage, v.error_class) == ("faithful", "torch_fallback"), v.summary()


def test_changed_reference_file_is_rejected(tmp_path):
    """Reference outputs rewritten on disk after their job reported the digest (as a candidate with write
    access would): the judge refuses to judge on them."""
    outs = [torch.randn(8), torch.randn(8)]
    ref = _ref(tmp_path, outs)
    forged = [torch.zeros(8), torch.zeros(8)]
    torch.save(
        {"outputs": forged, "buffers": {}, "floors": [None, None], "truths": [None, None]}, ref["path"]
    )
    v = _run(tmp_path, ref, _trials_report(forged))
    assert not v.accepted and "tampering" in v.message, v.summary()


def test_a_report_of_objects_is_refused(tmp_path):
    """A payload that would run code when unpickled (weights_only refuses it) is a crash, not a verdict."""
    outs = [torch.randn(8), torch.randn(8)]
    ref = _ref(tmp_path, outs)
    private = tmp_path / "private"
    private.mkdir()
    torch.save(
        {"trials": [_trial(o) for o in outs], "compiled": True, "evil": Outcome("ok")}, private / "trials.pt"
    )
    judge = Judge("t", VerifyConfig(trials=2, shape_variants=0), ref, "test", on_gpu=False)
    judge.on_event({"name": "trials"}, str(private))
    v = judge.verdict(Outcome("ok", {}))
    assert (v.stage, v.error_class) == ("correct", "crash") and "could not be read" in v.message, v.summary()


@pytest.mark.parametrize("case", ["honest", "lazy_timed_calls", "claims_unseen_time", "beyond_bandwidth"])
def test_timing_decisions(tmp_path, case):
    """On a GPU job the judge also checks the timed calls: their outputs against the reference for the timing
    inputs (a candidate honest in the trials and lazy when timed), the claimed device time against the
    wall time it saw between `timing_begin` and the report, and the memory-bandwidth bound."""
    outs, timed_ref = [torch.randn(8), torch.randn(8)], torch.randn(8)
    nbytes = 3_350_000  # 1 us at 3350 GB/s
    ref = _ref(tmp_path, outs, timed_output=timed_ref, nbytes=nbytes)
    timed = {
        "eager": _timing(0.01),
        "candidate": _timing(0.005),
        "compiled": None,
        "flags": [],
        "outputs": [timed_ref.clone()] * 3,
        "patched": [],
        "error": None,
    }
    if case == "lazy_timed_calls":
        timed["outputs"][-1] = outs[1].clone()  # a stale answer from the trials
    elif case == "claims_unseen_time":
        timed["eager"] = _timing(5.0, runs=200)  # 1 s of eager device time in ~0 s of wall time
    elif case == "beyond_bandwidth":
        timed["candidate"] = _timing(0.0002)
    v = _run(tmp_path, ref, _trials_report(outs), timed=timed, on_gpu=True)
    expected = {
        "honest": (None, None),
        "lazy_timed_calls": ("timed", "timed_output_wrong"),
        "claims_unseen_time": ("timed", "timing_inconsistent"),
        "beyond_bandwidth": ("timed", "implausible_speed"),
    }[case]
    assert (v.stage, v.error_class) == expected, v.summary()
    if case == "honest":
        assert v.timed and v.speedup_eager == pytest.approx(2.0)
    else:
        assert not v.timed and v.stages["correct"] == "pass"
        assert not v.accepted, "a fooled timing is a rejection, never an acceptance without speed"


def test_a_worker_that_dies_while_timing_fails_timed(tmp_path):
    outs = [torch.randn(8), torch.randn(8)]
    ref = _ref(tmp_path, outs, timed_output=torch.randn(8))
    private = tmp_path / "private"
    private.mkdir()
    torch.save(_trials_report(outs), private / "trials.pt")
    judge = Judge("t", VerifyConfig(trials=2, shape_variants=0), ref, "test", on_gpu=True)
    assert judge.on_event({"name": "trials", "wants_answer": True}, str(private)) == {"go": True}
    v = judge.verdict(Outcome("crash", message="worker process died (killed by SIGSEGV)"))
    assert (v.stage, v.error_class) == ("timed", "crash") and v.stages["correct"] == "pass", v.summary()
    assert not os.path.exists(private / "timed.pt")


def test_eager_baseline_held_to_the_reference_workers():
    """The eager time a candidate's worker reports may exceed the trusted reference worker's by at most
    EAGER_SLACK (verify/reference_timing.py); a median outside its own range is no measurement."""
    from verify.judge import _check_baseline, _Reject, _timing
    from verify.reference_timing import EAGER_SLACK
    from verify.verdict import Timing

    def t(median, method="graph"):
        return Timing(median_ms=median, iqr_ms=0.0, min_ms=median * 0.9, max_ms=median * 1.1, runs=100,
                      method=method)

    trusted = t(1.0)
    _check_baseline("eager", t(1.0), trusted)
    _check_baseline("eager", t(EAGER_SLACK * 0.99), trusted)
    _check_baseline("eager", t(0.5), trusted)  # faster in the candidate's process only lowers its own speedup
    _check_baseline("eager", t(5.0), None)  # no trusted timing (CPU, or timing off): nothing to hold it to
    _check_baseline("eager", t(5.0, method="stream"), trusted)  # measured another way: not comparable
    with pytest.raises(_Reject, match="reference worker"):
        _check_baseline("eager", t(EAGER_SLACK * 1.01), trusted)
    with pytest.raises(_Reject, match="outside its own range"):
        _timing({"median_ms": 2.0, "iqr_ms": 0.0, "min_ms": 1.0, "max_ms": 1.5, "runs": 10})


@pytest.mark.parametrize("case", ["honest", "compiled_slowed", "compiled_max_slowed", "no_trusted_compiled"])
def test_compiled_baselines_held_to_the_reference_workers(tmp_path, case):
    """The torch.compile baselines, which the project's headline speedups are measured against, are held to
    the reference worker's times as eager is: a candidate that slows torch.compile down in its own process
    (Inductor settings, patched ops) is rejected; a compiled time the reference worker could not make is
    dropped from the verdict (flagged), never reported unchecked."""
    from verify.reference_timing import EAGER_SLACK

    outs, timed_ref = [torch.randn(8), torch.randn(8)], torch.randn(8)
    ref = _ref(tmp_path, outs, timed_output=timed_ref)
    ref.update(eager=_timing(0.01), compiled=_timing(0.008), compiled_max=_timing(0.007))
    timed = {
        "eager": _timing(0.01),
        "candidate": _timing(0.005),
        "compiled": _timing(0.008),
        "compiled_max": _timing(0.007),
        "flags": [],
        "outputs": [timed_ref.clone()] * 3,
        "patched": [],
        "error": None,
    }
    if case == "compiled_slowed":
        timed["compiled"] = _timing(0.008 * EAGER_SLACK * 1.5)
    elif case == "compiled_max_slowed":
        timed["compiled_max"] = _timing(0.007 * EAGER_SLACK * 1.5)
    elif case == "no_trusted_compiled":
        ref.update(compiled=None, baseline_error="BackendCompilerFailed: inductor")
    v = _run(tmp_path, ref, _trials_report(outs), timed=timed, on_gpu=True)
    if case in ("compiled_slowed", "compiled_max_slowed"):
        assert (v.stage, v.error_class) == ("timed", "timing_inconsistent"), v.summary()
        assert "torch.compile" in v.message and not v.accepted
        return
    assert v.accepted and v.timed, v.summary()
    assert v.speedup_eager == pytest.approx(2.0)
    assert v.speedup_compile_max == pytest.approx(1.4)
    if case == "honest":
        assert v.speedup_compile == pytest.approx(1.6) and not v.timing_flags
    else:
        assert v.compiled is None and v.speedup_compile is None
        assert any("BackendCompilerFailed" in f for f in v.timing_flags), v.timing_flags


@pytest.mark.parametrize(
    "case",
    ["same", "constexpr_differs", "extra_kernel_without_interpreter", "raised_after_a_launch",
     "raised_before_any_launch", "did_not_finish_without_interpreter", "no_frontend_report"],
)
def test_replayed_launches_held_to_the_front_end_checks(tmp_path, case):
    """CPU interpreter: the launches the replay ran under the interpreter must be those the GPU front-end
    check saw without it (verify/launch_spec.py); a program that asks where it runs is rejected
    (interpreter_divergence). A forward that raised without the interpreter reached only part of its
    launches: those must still be the interpreter's, and at least one; one that did not finish there (a
    hang or a crash of the check's process) is rejected once it passed under the interpreter."""
    from verify.judge import _Reject

    clamp = ["k", [["CLAMP", "True"], ["n", "64"], ["x", "tensor:float32"]], [1, 1, 1]]
    other = ["k", [["CLAMP", "False"], ["n", "64"], ["x", "tensor:float32"]], [1, 1, 1]]
    second = ["k2", [["n", "64"]], [4, 1, 1]]
    replayed = [clamp, second]
    frontend = {
        "same": {"launches": [second, clamp], "forward_error": None},
        "constexpr_differs": {"launches": [other, second], "forward_error": None},
        "extra_kernel_without_interpreter": {"launches": [clamp, second, other], "forward_error": None},
        "raised_after_a_launch": {"launches": [clamp], "forward_error": "RuntimeError: garbage"},
        "raised_before_any_launch": {"launches": [], "forward_error": "RuntimeError: not on a GPU"},
        "did_not_finish_without_interpreter": {"failed": "timeout: no answer within 30 s"},
        "no_frontend_report": None,
    }[case]
    ref = _ref(tmp_path, [torch.randn(8)])
    judge = Judge("t", VerifyConfig(trials=1, shape_variants=0), ref, "test", on_gpu=False, frontend=frontend)
    if case in ("same", "raised_after_a_launch", "no_frontend_report"):
        judge._same_launches(replayed)
        return
    with pytest.raises(_Reject) as e:
        judge._same_launches(replayed)
    assert e.value.error_class == "interpreter_divergence"
    if case == "constexpr_differs":
        assert "CLAMP=True" in str(e.value) and "CLAMP=False" in str(e.value)
