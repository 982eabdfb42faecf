"""The assembly is the cheapest cover: constructed cases with known optima, and exhaustive comparison."""

import itertools
import random

import pytest

from search.assembly import NoAssemblyError, best_assembly, enumerate_spans


def kinds(assembly):
    return [(s.start, s.stop, s.kind) for s in assembly.segments]


def test_one_fused_kernel_beats_any_split():
    # every split is slower than the single fused kernel, although each piece is cheap on its own
    frags = {(0, 3): 1.0, (0, 1): 0.5, (1, 2): 0.5, (2, 3): 0.5, (0, 2): 0.8, (1, 3): 0.8}
    a = best_assembly(3, frags, [0.6, 0.6, 0.6])
    assert kinds(a) == [(0, 3, "kernel")] and a.cost == pytest.approx(1.0)


def test_leaving_an_op_in_pytorch_is_best():
    # operator 2 has only a slow kernel; its PyTorch version (e.g. cuDNN) wins, the rest is fused
    frags = {(0, 2): 0.3, (0, 1): 0.2, (1, 2): 0.2, (2, 3): 5.0, (1, 3): 4.0, (0, 3): 3.0}
    a = best_assembly(3, frags, [1.0, 1.0, 0.5])
    assert kinds(a) == [(0, 2, "kernel"), (2, 3, "torch")] and a.cost == pytest.approx(0.8)


def test_at_least_one_kernel_even_when_pytorch_is_cheaper():
    a = best_assembly(2, {(1, 2): 10.0}, [1.0, 1.0])
    assert kinds(a) == [(0, 1, "torch"), (1, 2, "kernel")]


def test_ties_prefer_kernels_then_fewer_segments():
    # unit costs (the CPU cost model): a kernel beats PyTorch at equal cost
    assert kinds(best_assembly(2, {(0, 1): 1.0, (1, 2): 1.0}, [1.0, 1.0])) == [
        (0, 1, "kernel"),
        (1, 2, "kernel"),
    ]


def test_ops_without_pytorch_cost_must_be_covered():
    with pytest.raises(NoAssemblyError, match="PyTorch cost"):
        best_assembly(3, {(0, 1): 1.0}, [None, None, 1.0])
    with pytest.raises(NoAssemblyError, match="no verified kernel"):
        best_assembly(3, {}, [1.0, 1.0, 1.0])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="bad fragment"):
        best_assembly(2, {(1, 3): 1.0}, [1.0, 1.0])
    with pytest.raises(ValueError, match="torch_costs"):
        best_assembly(2, {(0, 1): 1.0}, [1.0])


def _brute_force(n, frags, torch_costs):
    best = None
    for cuts in itertools.product([0, 1], repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        segments = list(zip(bounds, bounds[1:]))
        options = []
        for s, e in segments:
            opts = []
            if (s, e) in frags:
                opts.append(("kernel", frags[(s, e)]))
            if e - s == 1 and torch_costs[s] is not None:
                opts.append(("torch", torch_costs[s]))
            options.append(opts)
        for choice in itertools.product(*options):
            if any(k == "kernel" for k, _ in choice):
                cost = sum(c for _, c in choice)
                best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_shortest_path_matches_exhaustive_search(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 7)
    spans = [s for s in enumerate_spans(n, 5) if rng.random() < 0.6]
    frags = {s: round(rng.uniform(0.1, 3.0), 3) for s in spans}
    torch_costs = [round(rng.uniform(0.1, 2.0), 3) if rng.random() < 0.85 else None for _ in range(n)]
    expected = _brute_force(n, frags, torch_costs)
    if expected is None:
        with pytest.raises(NoAssemblyError):
            best_assembly(n, frags, torch_costs)
    else:
        assert best_assembly(n, frags, torch_costs).cost == pytest.approx(expected)


def test_enumeration_is_contiguous_and_bounded():
    spans = enumerate_spans(7, 5)
    assert len(spans) == 7 + 6 + 5 + 4 + 3
    assert all(1 <= e - s <= 5 and 0 <= s < e <= 7 for s, e in spans)
    assert enumerate_spans(3, 5)[-1] == (0, 3) and enumerate_spans(0) == []
