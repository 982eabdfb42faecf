"""Nothing one candidate does reaches the next: after a crash, a hang or a patching hack, the pool
carries on and a correct candidate for the same task is still accepted."""
from verify.fixtures import adversarial_cases, fixture_candidate, fixture_task


def test_pool_survives_breakers_and_patchers(verifier):
    cases = {c["name"]: c for c in adversarial_cases()}
    for name in ("crash_segfault", "exit", "patch_reference", "patch_timer_dynamic"):
        case = cases[name]
        bad = verifier.verify(case["task"], case["text"])
        assert not bad.accepted
        task_name = case["task"].id.split("/")[-1]
        good = verifier.verify(fixture_task(task_name), fixture_candidate(task_name))
        assert good.accepted, f"after {name}: {good.stage}/{good.error_class} {good.message}"
