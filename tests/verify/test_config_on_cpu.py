"""Config errors name the problem; shape variants shrink only batch-like sizes."""
import pytest

from verify.config import VerifyConfig
from verify.fixtures import fixture_task
from verify.inputs import size_constants


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="trails"):
        VerifyConfig.from_mapping({"trails": 3})
    with pytest.raises(ValueError, match="device"):
        VerifyConfig(device="tpu")
    with pytest.raises(ValueError, match="timing_method must be graph or stream"):
        VerifyConfig.from_mapping({"timing_method": "events"})


def test_size_constants_skip_weight_shapes():
    consts = size_constants(fixture_task("linear").code)
    assert consts, "the linear fixture has a batch size get_inputs uses"
    code = fixture_task("linear").code
    assert all(f"{name}" not in code.split("def get_init_inputs")[1] for name in consts)


def test_worker_settings_are_checked_and_change_no_verdict():
    with pytest.raises(ValueError, match="kernel_cache must be private or shared"):
        VerifyConfig(kernel_cache="global")
    assert VerifyConfig().persistent_workers == "never", "a fresh confined process per candidate by default"
    worker_settings = VerifyConfig(kernel_cache="shared", persistent_workers="always")
    assert worker_settings.digest() == VerifyConfig().digest()
