"""Shared helpers for the synth tests: solvers built from the shipped `solver` config group."""
import pytest
from hydra import compose, initialize
from hydra.utils import instantiate

SOLVERS = ["fast", "cpsat", "pulp"]


def make_solver(name: str):
    with initialize(version_base=None, config_path=None):
        cfg = compose("synth", overrides=[f"solver={name}"])
    return instantiate(cfg.solver)


@pytest.fixture(params=SOLVERS)
def solver(request):
    return make_solver(request.param)
