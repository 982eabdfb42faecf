"""The Ray pool on a local Ray cluster, interpreter mode: verdicts come back through actors."""
import asyncio

import pytest

from verify import VerifyConfig
from verify.fixtures import adversarial_cases, fixture_candidate, fixture_task


@pytest.mark.slow
def test_ray_pool_local_cluster():
    ray = pytest.importorskip("ray")
    from verify.ray_pool import RayVerifierPool

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        pool = RayVerifierPool(VerifyConfig(timeout_s=60), num_actors=1, workers_per_actor=2)
        assert pool.backends() == ["triton-interpreter"]
        hack = next(c for c in adversarial_cases() if c["name"] == "torch_fallback")
        pairs = [(fixture_task("swish_residual"), fixture_candidate("swish_residual")),
                 (hack["task"], hack["text"])]
        good, bad = pool.verify_many(pairs)
        assert good.accepted and bad.error_class == "torch_fallback"
        again = asyncio.run(pool.verify_async(*pairs[0]))
        assert again.accepted and again.cached
        pool.close()
    finally:
        ray.shutdown()
