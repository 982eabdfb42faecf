"""The fusion plan of a synth IR `Graph`: which operators share a kernel, and in what order the kernels run.

`plan(graph)` partitions the compute nodes (in topological order) into steps; each step is one kernel or
one glue step, written by the emitter of its kernel family (`FAMILIES`, the `_Lowering` methods of
`lower.py`). A new fusion is a change here; a new kernel family is an entry in `FAMILIES` and one emitter.

* pointwise regions: a pointwise operator joins the region of an input's producer when both have the same
  shape and joining keeps the regions acyclic; each region becomes one kernel over its output shape;
* epilogues: a pointwise region may also join the region of a matmul-class operator, a convolution, a
  pooling operator, a batch or group norm, a triu / tril, a flip or a row operator of its shape (at most
  one such host per region): the host's kernel computes it (`matmul.py`: inside the tiled `tl.dot` kernel;
  `conv.py`: one kernel after the PyTorch convolution, with the conv bias; `pool.py`: on the pooled
  values; `channel_norm.py`: in the normalising pass; `triangle.py`: on the triangle; `flip.py`: on the
  flipped values; `rows.py`: inside the row kernel, for a row operator that reduces, or whose reduced
  dims are last or one block read in place, so its output is written in row-major order; not for argmax /
  argmin, whose output is int64);
* prologues: a pointwise region whose one result feeds only a row, channel-norm or windowed pooling
  operator, reading one tensor of the same shape, is applied inside that kernel as the tile is loaded (a
  row kernel reading its rows in place also loads the region's other, broadcast, inputs);
* gathers: a cat or stack read only by one pointwise region of its shape (not returned) is read by that
  region's kernel from its two inputs, never written (`gather.py`);
* direct outputs: a returned convolution with nothing to fuse is returned straight from PyTorch, as long
  as another output comes from a kernel.

Row geometry (`row_dims`, `row_in_place`, `row_in_order`) is shared with the row emitter: reduced dims that
are one block are read in place through an inner stride; other sets of dims are permuted last.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx

from synth.ir import Graph
from synth.teacher.channel_norm import CHANNEL_NORM_OPS
from synth.teacher.conv import CONV_OPS
from synth.teacher.flip import FLIP_OPS
from synth.teacher.gather import GATHER_OPS
from synth.teacher.global_pool import is_global
from synth.teacher.matmul import MATMUL_OPS
from synth.teacher.pointwise import POINTWISE_OPS
from synth.teacher.pool import POOL_OPS
from synth.teacher.rows import ROW_OPS
from synth.teacher.triangle import TRIANGLE_OPS

LAYOUT_OPS = frozenset({"flatten", "unflatten", "transpose", "permute", "unsqueeze", "squeeze", "reshape",
                        "narrow", "expand", "cat", "stack"})
# row operators that are nn.Module norms over the trailing dims
_NORM_MODULES = frozenset({"layer_norm", "rms_norm", "instance_norm1d", "instance_norm2d", "instance_norm3d"})
# operators whose output a pointwise region can consume inside their own kernel (the epilogue)
EPILOGUE_HOSTS = MATMUL_OPS | CONV_OPS
# kernel family of each operator: the `lower._Lowering` method that writes a step it hosts
FAMILIES: dict[str, str] = {
    **dict.fromkeys(MATMUL_OPS, "matmul"), **dict.fromkeys(CONV_OPS, "conv"),
    **dict.fromkeys(POINTWISE_OPS, "pointwise"), **dict.fromkeys(ROW_OPS, "rows"),
    **dict.fromkeys(POOL_OPS, "pool"), **dict.fromkeys(CHANNEL_NORM_OPS, "channel_norm"),
    **dict.fromkeys(TRIANGLE_OPS, "triangle"), **dict.fromkeys(LAYOUT_OPS, "layout"),
    **dict.fromkeys(FLIP_OPS, "flip"),
}


@dataclass(frozen=True)
class Step:
    """Compute nodes written together (sorted): by `family`'s emitter around `host` (a pointwise region's
    host is its first node), or not at all when `gathered` (a cat / stack its consumer's kernel reads)."""

    nodes: list[int]
    host: int
    family: str
    gathered: bool = False


@dataclass
class Plan:
    """The steps in an order that respects data flow, and the fusions their emitters apply."""

    steps: list[Step]
    # row / channel-norm / pool operator -> (the tensor it loads, the pointwise nodes applied on load)
    prologue: dict[int, tuple[int, list[int]]]
    # row operator -> the prologue's other inputs (broadcast to the tile, read through their strides)
    prologue_inputs: dict[int, list[int]]
    # returned convolutions with nothing to fuse, returned straight from PyTorch (bias included)
    direct: set[int]


def plan(graph: Graph) -> Plan:
    """The fusion plan of `graph` (see the module docstring)."""
    planner = _Planner(graph)
    groups = planner.groups()
    direct = planner._direct_outputs(groups)
    gathers = planner._fused_gathers(groups)
    steps = []
    for group in groups:
        hosts = [n for n in group if graph.op_name(n) not in POINTWISE_OPS]
        host = hosts[0] if hosts else group[0]
        steps.append(Step(group, host, FAMILIES[graph.op_name(host)], group[0] in gathers))
    return Plan(steps, planner.prologue, planner.prologue_inputs, direct)


class _Planner:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.prologue: dict[int, tuple[int, list[int]]] = {}
        self.prologue_inputs: dict[int, list[int]] = {}

    def groups(self) -> list[list[int]]:
        """Groups of compute nodes, each one kernel (or one glue step), in an order that respects data flow.

        A pointwise node joins (and merges) the regions of its same-shape pointwise or epilogue-host
        producers while the region keeps at most one host and stays convex: no path leaves it and comes
        back, so the regions form a DAG."""
        g = self.g
        region_of: dict[int, int] = {}
        groups: dict[int, list[int]] = {}
        for n in g.compute_nodes():
            region = [n]
            if g.op_name(n) in POINTWISE_OPS:
                near = dict.fromkeys(region_of[p] for p in g.inputs_of(n) if p in region_of
                                     and (g.op_name(p) in POINTWISE_OPS or self._host(p))
                                     and g.shape(p) == g.shape(n))
                for r in near:
                    merged = groups[r] + region
                    if sum(self._host(m) for m in merged) <= 1 and self._convex(merged):
                        region = groups.pop(r) + region
            groups[n] = sorted(region)
            for m in region:
                region_of[m] = n
        self._fuse_prologues(groups, region_of)
        order = nx.DiGraph()
        order.add_nodes_from(groups)
        for u, v in g.g.edges():
            if u in region_of and region_of[u] != region_of[v]:
                order.add_edge(region_of[u], region_of[v])
        return [groups[r] for r in nx.lexicographical_topological_sort(order, key=lambda r: groups[r][0])]

    def _fuse_prologues(self, groups: dict[int, list[int]], region_of: dict[int, int]) -> None:
        """Move a pointwise region into the row, channel-norm or (windowed) pooling kernel that consumes it
        (a prologue, applied to the tile as it is loaded) when the region's one result feeds only that
        operator and the region reads an outside tensor of the same shape (loaded as the tile): e.g.
        erf -> amin becomes one kernel. A row kernel reading its rows in place also loads the region's
        other (broadcast) inputs at the tile's positions: x - p -> amax is one kernel."""
        g = self.g
        for r, group in list(groups.items()):
            hosts = [n for n in group if g.op_name(n) in ROW_OPS or g.op_name(n) in CHANNEL_NORM_OPS
                     or g.op_name(n) in POOL_OPS and not is_global(g.op_name(n), g.params(n))]
            if len(hosts) != 1:
                continue
            n = hosts[0]
            (p,) = g.inputs_of(n)
            if p not in region_of or region_of[p] == r:
                continue
            source = groups.get(region_of[p], [])
            members = set(source)
            if (not source or any(g.op_name(m) not in POINTWISE_OPS for m in source)
                    or any(m in g.outputs for m in source)
                    or any(c not in members and c != n for m in source for c in g.consumers(m))
                    or g.consumers(p) != [n]):
                continue
            outside = list(dict.fromkeys(t for m in source for t in g.inputs_of(m) if t not in members))
            anchors = [t for t in outside if g.shape(t) == g.shape(p)]
            if not anchors:
                continue
            if len(outside) > 1 and not (g.op_name(n) in ROW_OPS and row_in_place(g, n)):
                continue  # other inputs are read at the tile's flat positions: rows read in place only
            self.prologue[n] = (anchors[0], source)
            self.prologue_inputs[n] = [t for t in outside if t != anchors[0]]
            del groups[region_of[p]]
            for m in source:
                region_of[m] = r

    def _host(self, n: int) -> bool:
        """Node `n` can run a pointwise region on its output inside its own kernel (an epilogue)."""
        op = self.g.op_name(n)
        return (op in EPILOGUE_HOSTS or op in POOL_OPS or op in CHANNEL_NORM_OPS or op in TRIANGLE_OPS
                or op in FLIP_OPS or op in ROW_OPS and not ROW_OPS[op].out_dtype and row_in_order(self.g, n))

    def _convex(self, region: list[int]) -> bool:
        """No input from outside `region` depends on a node inside it."""
        members = set(region)
        for n in region:
            for t in self.g.inputs_of(n):
                if t not in members and (nx.ancestors(self.g.g, t) | {t}) & members:
                    return False
        return True

    def _direct_outputs(self, steps: list[list[int]]) -> set[int]:
        """Returned convolutions with nothing to fuse that need no Triton pass: PyTorch's result (its bias
        inside the call) is returned as it is. The candidate must still compute some output in Triton (the
        verifier's no-op test), so when every output is such a convolution the smallest one keeps its Triton
        pass (bias, or a copy)."""
        g = self.g
        alone = {group[0] for group in steps if len(group) == 1 and g.op_name(group[0]) in CONV_OPS}
        direct = {n for n in dict.fromkeys(g.outputs) if n in alone}
        if direct and all(n in direct for n in g.outputs):
            direct.discard(min(direct, key=lambda n: (math.prod(g.shape(n)), n)))
        return direct

    def _fused_gathers(self, steps: list[list[int]]) -> set[int]:
        """cat / stack nodes read only by one pointwise region of their own shape (not returned): that
        region's kernel loads each element from the input that holds it (`teacher.gather`)."""
        g = self.g
        region = {m: i for i, group in enumerate(steps) for m in group}
        fused = set()
        for group in steps:
            n = group[0]
            if len(group) != 1 or g.op_name(n) not in GATHER_OPS or n in g.outputs:
                continue
            consumers = g.consumers(n)
            if any(c not in region for c in consumers):
                continue  # read by another kernel's prologue
            regions = {region[c] for c in consumers}
            if (len(regions) == 1 and all(g.op_name(m) in POINTWISE_OPS for m in steps[next(iter(regions))])
                    and all(g.shape(c) == g.shape(n) for c in consumers)):
                fused.add(n)
        return fused


def row_dims(g: Graph, n: int) -> tuple[list[int], list[int]]:
    """(reduced dims, permutation moving them last) of row operator `n`."""
    op, rank = g.op_name(n), len(g.shape(g.inputs_of(n)[0]))
    if op.startswith("instance_norm"):
        dims = list(range(2, rank))
    elif op in _NORM_MODULES:
        features = g.params(n).get("features")  # a tuple: the trailing dims it normalises over
        k = len(features) if isinstance(features, (list, tuple)) else 1
        dims = list(range(rank - k, rank))
    else:
        dims = _reduced_dims(g.params(n)["dim"], rank)
    return dims, [d for d in range(rank) if d not in dims] + dims


def row_in_place(g: Graph, n: int) -> bool:
    """Row operator `n` reads its input in place (no permuted copy): its tile's flat positions are the
    input's own row-major offsets."""
    dims, perm = row_dims(g, n)
    return perm == list(range(len(perm))) or _consecutive(dims)


def row_in_order(g: Graph, n: int) -> bool:
    """Row operator `n` writes its output in the output's own row-major order (it reduces, or its dims
    are already last), so a pointwise epilogue can index it by flat offset."""
    dims, perm = row_dims(g, n)
    return ROW_OPS[g.op_name(n)].reduces or perm == sorted(perm) or _consecutive(dims)


def _consecutive(dims: list[int]) -> bool:
    """Sorted dims form one block (d, d + 1, ...)."""
    return dims == list(range(dims[0], dims[0] + len(dims)))


def _reduced_dims(dim, rank: int) -> list[int]:
    """The dims an operator's `dim` parameter (an int or a list of ints) names, non-negative and sorted."""
    dims = dim if isinstance(dim, (list, tuple)) else [dim]
    return sorted({d % rank for d in dims})
