"""One verifier run over the whole fixture suite, shared by the tests that read its verdicts."""
import pytest

from verify import Verifier, VerifyConfig
from verify.fixtures import adversarial_cases, fixture_pairs


@pytest.fixture(scope="session")
def verifier():
    with Verifier(VerifyConfig(timeout_s=60, gpu_hold_limit_s=20), workers=2) as v:
        yield v


@pytest.fixture(scope="session")
def suite_verdicts(verifier):
    """{"good": [(task, verdict)], "bad": [(case, verdict)]} for every fixture and adversarial case."""
    good, bad = fixture_pairs(), adversarial_cases()
    verdicts = verifier.verify_many([*good, *[(c["task"], c["text"]) for c in bad]])
    return {"good": [(t, v) for (t, _), v in zip(good, verdicts)],
            "bad": list(zip(bad, verdicts[len(good):]))}
