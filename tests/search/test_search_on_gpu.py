"""On a GPU the search costs are measured times: fragment kernels, operators left in PyTorch, and the
assembly, which is then re-verified with the torch.compile baseline."""

import pytest
import torch

from search.fixtures import write_fixture_replay
from search.generators import ReplayGenerator
from search.judge import Judge
from search.strategies import FragmentSearch
from verify.fixtures import fixture_task

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_fragment_search_with_measured_costs(tmp_path):
    replay = tmp_path / "frag.jsonl"
    write_fixture_replay(replay, whole=False, names=["swish_residual"])
    with Judge({"compile_baseline": True}) as judge:
        result = FragmentSearch().search(fixture_task("swish_residual"), ReplayGenerator(replay), judge)
    assert result.cost_unit == "ms" and "measured" in result.cost_model
    best = result.best
    assert best.kind == "assembly" and best.assembly == "[0:2] kernel | [2:3] torch", result.summary()
    assert best.predicted_cost > 0 and best.verdict.timed and best.cost == best.verdict.candidate.median_ms
    assert best.verdict.speedup_eager > 0 and best.verdict.speedup_compile > 0
