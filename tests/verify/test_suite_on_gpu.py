"""On a CUDA GPU: the same suite compiled for real and timed (eager baseline in the same process)."""
import pytest

pytestmark = pytest.mark.gpu


def test_correct_candidates_accepted_and_timed(suite_verdicts):
    for task, v in suite_verdicts["good"]:
        assert v.accepted, f"{task.id}: {v.stage}/{v.error_class}: {v.message}"
        assert v.backend == "triton-gpu" and v.timed, f"{task.id}: {v.stage}/{v.error_class}: {v.message}"
        assert v.candidate.median_ms > 0 and v.eager.median_ms > 0 and v.speedup_eager > 0
        assert v.candidate.runs >= 20


def test_adversarial_rejected_on_gpu(suite_verdicts):
    wrong = [(c["name"], v.stage, v.error_class, v.message) for c, v in suite_verdicts["bad"]
             if (v.stage, v.error_class) != (c["stage"], c["error_class"])]
    assert not wrong, wrong
