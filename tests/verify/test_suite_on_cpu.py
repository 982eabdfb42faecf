"""The fixture suite through the real verifier: every correct candidate accepted, every hack rejected
at the right stage with the right error class, every crash/hang/oom turned into a verdict."""
import pytest

from verify.fixtures import adversarial_cases, fixture_names


def test_suite_is_big_enough():
    assert len(fixture_names()) >= 10
    kinds = {c["name"] for c in adversarial_cases()}
    hacks = kinds - {"crash_segfault", "hang", "exit", "oom", "no_code", "syntax", "no_modelnew", "no_kernel"}
    assert len(hacks) >= 12


def test_correct_candidates_accepted(suite_verdicts):
    for task, v in suite_verdicts["good"]:
        assert v.accepted, f"{task.id}: {v.stage}/{v.error_class}: {v.message}"
        assert v.backend == "triton-interpreter" and v.kernel_launches >= 1 and v.trials >= 5
        assert v.max_abs_err is not None


@pytest.mark.parametrize("name", [c["name"] for c in adversarial_cases()])
def test_adversarial_rejected(suite_verdicts, name):
    case, v = next((c, v) for c, v in suite_verdicts["bad"] if c["name"] == name)
    assert not v.accepted
    assert (v.stage, v.error_class) == (case["stage"], case["error_class"]), v.message
    assert v.message


def test_hybrid_reports_its_torch_ops(suite_verdicts):
    v = next(v for t, v in suite_verdicts["good"] if t.id.endswith("conv2d_bias_relu"))
    assert v.torch_ops == ["convolution"]
