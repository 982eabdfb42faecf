"""rl's estimators and loss reach veRL's registries through the `verl.plugins` entry point alone.

Each check runs in a fresh process that imports only `verl` (never `rl`): the driver case in a subprocess,
the worker case inside a local Ray worker.
"""
import subprocess
import sys

import pytest

CHECK = (
    "import sys, verl\n"
    "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY\n"
    "print(sorted(n for n in ('drpo', 'disco') if n in ADV_ESTIMATOR_REGISTRY),"
    " 'drpo' in POLICY_LOSS_REGISTRY, 'rl.plugin' in sys.modules)\n"
)


def test_registered_in_driver_after_plain_import_verl():
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", CHECK], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "['disco', 'drpo'] True True"


@pytest.mark.slow
def test_registered_inside_a_ray_worker():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote(num_cpus=1)
        def probe():
            import sys

            import verl  # noqa: F401  (the entry point runs here)
            from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY
            return (sorted(n for n in ("drpo", "disco") if n in ADV_ESTIMATOR_REGISTRY),
                    "drpo" in POLICY_LOSS_REGISTRY, "rl.plugin" in sys.modules)

        assert ray.get(probe.remote(), timeout=300) == (["disco", "drpo"], True, True)
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_curriculum_trainer_registers_as_a_verl_trainer_mode():
    out = subprocess.run([sys.executable, "-W", "ignore", "-c",
                          "import rl.trainer\nfrom verl.trainer.ppo.v1 import get_trainer_cls\n"
                          "print(get_trainer_cls('drtriton_curriculum').__name__)"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "CurriculumTrainer"
