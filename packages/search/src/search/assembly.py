"""Choosing the fastest assembly of verified fragments: a shortest path over measured costs.

Operators are numbered 0..n-1 in topological order. A *segment* covers the contiguous operators
[start, stop): either one verified Triton fragment (cost: its measured time) or a single operator left in
PyTorch (cost: its measured eager time; operators without a PyTorch cost must be covered by a kernel).
An assembly is a path 0 -> n through these segments, so the cheapest one is a shortest path in a DAG.
The verifier rejects programs that launch no kernel, so the path must use at least one kernel: nodes
are (position, used_a_kernel) pairs and the target is (n, True). Ties go to the path with fewer PyTorch
operators, then fewer segments (bigger fusions), so unit costs still prefer kernels.

    >>> a = best_assembly(3, {(0, 3): 1.5, (0, 1): 0.5}, [0.4, 0.4, 0.4])
    >>> [(s.start, s.stop, s.kind) for s in a.segments], round(a.cost, 3)
    ([(0, 1, 'kernel'), (1, 2, 'torch'), (2, 3, 'torch')], 1.3)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

# tie-breaks, far below any real cost difference (costs are milliseconds or launch counts)
_TORCH_TIE = 1e-9
_SEGMENT_TIE = 1e-12


class NoAssemblyError(ValueError):
    """No path covers the program with at least one verified kernel."""


@dataclass(frozen=True)
class Segment:
    """Operators [start, stop) run as one verified kernel fragment or as one PyTorch operator."""

    start: int
    stop: int
    # "kernel" (a verified fragment candidate) or "torch" (the operator left in PyTorch)
    kind: str
    cost: float


@dataclass(frozen=True)
class Assembly:
    segments: tuple[Segment, ...]
    # predicted total cost: the sum of the segments' measured costs
    cost: float

    @property
    def kernels(self) -> list[Segment]:
        return [s for s in self.segments if s.kind == "kernel"]

    def describe(self) -> str:
        """One line: `[0:3] kernel | [3:4] torch`."""
        return " | ".join(f"[{s.start}:{s.stop}] {s.kind}" for s in self.segments)


def best_assembly(
    n_ops: int, fragment_costs: Mapping[tuple[int, int], float], torch_costs: Sequence[float | None]
) -> Assembly:
    """The cheapest cover of operators 0..n_ops-1 that uses at least one kernel fragment.

    `fragment_costs[(start, stop)]` is the cost of the best verified kernel for that fragment;
    `torch_costs[i]` the cost of operator i in PyTorch (None: it cannot stay in PyTorch).

    >>> best_assembly(2, {(0, 2): 3.0, (0, 1): 1.0, (1, 2): 1.0}, [None, None]).describe()
    '[0:1] kernel | [1:2] kernel'
    >>> best_assembly(2, {}, [1.0, 1.0])
    Traceback (most recent call last):
    ...
    search.assembly.NoAssemblyError: no verified kernel fragment to assemble (2 operators, 0 fragments)
    """
    if len(torch_costs) != n_ops:
        raise ValueError(f"torch_costs has {len(torch_costs)} entries for {n_ops} operators")
    if not fragment_costs:
        raise NoAssemblyError(f"no verified kernel fragment to assemble ({n_ops} operators, 0 fragments)")
    graph = nx.DiGraph()
    for (start, stop), cost in fragment_costs.items():
        if not 0 <= start < stop <= n_ops or not math.isfinite(cost) or cost < 0:
            raise ValueError(f"bad fragment ({start}, {stop}) with cost {cost} for {n_ops} operators")
        seg = Segment(start, stop, "kernel", float(cost))
        for used in (False, True):
            _add(graph, (start, used), (stop, True), seg)
    for i, cost in enumerate(torch_costs):
        if cost is not None:
            seg = Segment(i, i + 1, "torch", float(cost))
            for used in (False, True):
                _add(graph, (i, used), (i + 1, used), seg)
    source, target = (0, False), (n_ops, True)
    if source not in graph or target not in graph or not nx.has_path(graph, source, target):
        raise NoAssemblyError(
            f"no cover of all {n_ops} operators uses a verified kernel: operators "
            f"without a kernel fragment need a PyTorch cost"
        )
    path = nx.shortest_path(graph, source, target, weight="weight")
    segments = tuple(graph.edges[u, v]["segment"] for u, v in zip(path, path[1:]))
    return Assembly(segments, sum(s.cost for s in segments))


def _weight(seg: Segment) -> float:
    return seg.cost + (_TORCH_TIE if seg.kind == "torch" else 0.0) + _SEGMENT_TIE


def _add(graph: nx.DiGraph, u, v, seg: Segment) -> None:
    """Keep the cheaper of parallel segments between the same two positions."""
    w = _weight(seg)
    if not graph.has_edge(u, v) or w < graph.edges[u, v]["weight"]:
        graph.add_edge(u, v, weight=w, segment=seg)


def enumerate_spans(n_ops: int, max_len: int = 5) -> list[tuple[int, int]]:
    """Contiguous fragments [start, stop) of 1..min(max_len, n_ops) operators, shortest first.

    >>> enumerate_spans(3, 2)
    [(0, 1), (1, 2), (2, 3), (0, 2), (1, 3)]
    """
    if n_ops < 1:
        return []
    return [(s, s + k) for k in range(1, min(max_len, n_ops) + 1) for s in range(n_ops - k + 1)]
