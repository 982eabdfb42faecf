"""Nothing one candidate does reaches the next: after a crash, an exit or a patching hack, the pool
carries on and a correct candidate for the same task is still accepted, with fresh forked workers
(the CPU default) and with kept workers (the GPU default), which must retire after such a candidate."""
import pytest

from verify import Verifier, VerifyConfig
from verify.fixtures import adversarial_cases, fixture_candidate, fixture_task

BREAKERS = ("crash_segfault", "exit", "patch_reference", "patch_timer_dynamic")


def _breakers_then_good(v):
    cases = {c["name"]: c for c in adversarial_cases()}
    for name in BREAKERS:
        case = cases[name]
        bad = v.verify(case["task"], case["text"])
        assert (bad.stage, bad.error_class) == (case["stage"], case["error_class"])
        task_name = case["task"].id.split("/")[-1]
        good = v.verify(fixture_task(task_name), fixture_candidate(task_name))
        assert good.accepted, f"after {name}: {good.stage}/{good.error_class} {good.message}"


def test_fresh_workers(verifier):
    _breakers_then_good(verifier)


@pytest.mark.slow
def test_kept_worker_retires_after_breakers():
    with Verifier(VerifyConfig(persistent_workers="always", timeout_s=60), workers=1, cache=False) as v:
        task, text = fixture_task("gelu_scale"), fixture_candidate("gelu_scale")
        for i in range(3):  # accepted candidates leave the process clean: it is kept
            assert v.verify(task, f"{text}\n# {i}\n").accepted
        assert v.worker_starts() == 1, "a kept worker retired after an accepted candidate"
        _breakers_then_good(v)
        assert v.worker_starts() > 2, "breaker candidates must retire the kept worker"
