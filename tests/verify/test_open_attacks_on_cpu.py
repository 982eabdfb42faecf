"""Attacks written by an outside red-team on 2026-12-05 (a reviewer who had not written the verifier), kept
as they were written in tests/verify/open_attacks/, each with the fixture task it targets.

What they exploit (benchmarks/verify/RESULTS.md, "Red-team of 2026-12-05"): the candidate's code runs in the
process that measures it, so it can reach that process's frames and modules (forge_measure,
forge_trials_event, frame_seed_precompute, neuter_audit_instance), run after the audit inside the verifier's
own calls (named_parameters_fixup, setprofile_fixup), compute on the host where the audit does not look
(ctypes_numpy, dlpack_numpy, rawthread_numpy, fork_numpy), or behave differently under the interpreter
(interp_only_honest). The replayed check (verify/record.py, verify/replay.py: the recorded forward run again
in a clean process on inputs the candidate never saw) rejects all but the last: its kernels are honest under
the interpreter, and only its host code, which reads the environment, would launch them differently on a GPU.
That one is rejected by the static check for questions about where a program runs (`environment_probe`)
and, past it (a spelling the static check misses), by comparing the replay's launches with those of the GPU
front-end check, which runs the forward without the interpreter (verify/launch_spec.py,
`interpreter_divergence`). An attack still accepted
is `xfail(strict=True)`, so the day a change rejects it, its test fails until its expected verdict is written
down.

Not here: fork_compute (rejected, by a 60 s timeout only) and grid_fixed_grown (a grid fixed at the grown
variant's size: since the grown sizes are drawn per verification it passes only when the draw falls under
its grid, so its verdict is not deterministic).
"""

from pathlib import Path

import pytest

from verify import Verifier, VerifyConfig
from verify.fixtures import fixture_task

HERE = Path(__file__).parent / "open_attacks"

# attack file -> (target task, rejected today as (stage, error_class), or None while it is accepted)
ATTACKS = {
    "forge_measure": ("relu_scale_bias", ("faithful", "replay_failed")),
    "forge_trials_event": ("relu_scale_bias", ("faithful", "replay_failed")),
    "frame_seed_precompute": ("layernorm", ("faithful", "replay_mismatch")),
    "neuter_audit_instance": ("rmsnorm", ("faithful", "replay_failed")),
    "named_parameters_fixup": ("gelu_scale", ("faithful", "replay_mismatch")),
    "setprofile_fixup": ("mean_dim", ("faithful", "replay_mismatch")),
    "ctypes_numpy": ("swish_residual", ("faithful", "replay_mismatch")),
    "dlpack_numpy": ("log_softmax", ("faithful", "replay_mismatch")),
    "rawthread_numpy": ("exp_scale", ("faithful", "replay_mismatch")),
    "rawthread_torch": ("relu_scale_bias", ("faithful", "torch_fallback")),
    "fork_numpy": ("relu_scale_bias", ("faithful", "replay_mismatch")),
    "softmax_fp16": ("softmax", ("correct", "wrong_values")),  # rejected since atol scales with small outputs
    "interp_only_honest": ("hardtanh_literal", ("format", "environment_probe")),
}


@pytest.fixture(scope="module")
def verdicts():
    names = list(ATTACKS)
    pairs = [(fixture_task(ATTACKS[n][0]), (HERE / f"{n}.py").read_text()) for n in names]
    with Verifier(VerifyConfig(timeout_s=120), workers=2, cache=False) as v:
        return dict(zip(names, v.verify_many(pairs)))


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="open attack, accepted today (issue 23)"))
     if ATTACKS[n][1] is None else n for n in ATTACKS],
)
def test_open_attack_is_rejected(verdicts, name):
    v = verdicts[name]
    assert not v.accepted, f"{name} accepted: {v.summary()}"
    expected = ATTACKS[name][1]
    if expected is not None:
        assert (v.stage, v.error_class) == expected, v.summary()


def test_interpreter_detection_past_the_static_check_meets_the_launch_comparison():
    """interp_only_honest with the static checks off (as if it had spelled its question in a way they miss):
    its launches without the interpreter (CLAMP=False) are not those the replay ran under it (CLAMP=True)."""
    program = (HERE / "interp_only_honest.py").read_text()
    with Verifier(VerifyConfig(timeout_s=120, static_checks=False), workers=1, cache=False) as v:
        verdict = v.verify(fixture_task("hardtanh_literal"), program)
    assert (verdict.stage, verdict.error_class) == ("faithful", "interpreter_divergence"), verdict.summary()
    assert "CLAMP=True" in verdict.message and "CLAMP=False" in verdict.message
