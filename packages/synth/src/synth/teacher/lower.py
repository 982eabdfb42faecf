"""Lower a synth IR `Graph` to one candidate program: `@triton.jit` kernels plus a `ModelNew` that runs them.

Partition (in topological order):

* pointwise regions: a pointwise operator joins the region of an input's producer when both have the same
  shape and joining keeps the regions acyclic; each region becomes one kernel over its output shape that
  reads every outside input through the strides of `input.expand(shape)` (broadcast dims have stride 0),
  or by flat offset when the input is contiguous with exactly that shape;
* row operators (reductions, softmax family, layer/RMS norm): the reduced dims are permuted last, the
  input made a contiguous (rows, cols) matrix, and one row kernel runs over it;
* layout operators (flatten, permute, cat, ...): views or copies in the glue, which the verifier allows;
  an output made by one is copied by a Triton kernel so that every returned tensor comes from a kernel.

Anything else raises `Unsupported`. `ModelNew.__init__` repeats the reference's lines, so its signature,
parameters and state_dict are the reference's.
"""
from __future__ import annotations

import networkx as nx

from synth.ir import Graph
from synth.teacher.pointwise import POINTWISE_OPS, expression
from synth.teacher.rows import ROW_OPS, row_kernel
from synth.teacher.support import Unsupported, reason

HEADER = "import torch\nimport torch.nn as nn\nimport triton\nimport triton.language as tl\n"
LAYOUT_OPS = frozenset({"flatten", "unflatten", "transpose", "permute", "unsqueeze", "cat", "stack"})
# layout ops whose result is contiguous when their inputs are
_KEEPS_CONTIGUOUS = frozenset({"flatten", "unflatten", "unsqueeze", "cat", "stack"})
_NORM_MODULES = frozenset({"layer_norm", "rms_norm"})
POINTWISE_BLOCK = 1024


def supported_ops() -> frozenset[str]:
    """Every operator name the teacher lowers."""
    return POINTWISE_OPS | frozenset(ROW_OPS) | LAYOUT_OPS


def lower(graph: Graph) -> str:
    """The candidate program (source text) for `graph`; raises Unsupported for an operator not covered."""
    for n in graph.compute_nodes():
        op = graph.op_name(n)
        if op not in supported_ops():
            raise Unsupported(op, reason(op))
    return _Lowering(graph).program()


class _Lowering:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.kernels: list[str] = []
        self.kernel_names: set[str] = set()
        self.body: list[str] = []
        self.names: dict[int, str] = {}
        self.contiguous: dict[int, bool] = {}

    # partition ----------------------------------------------------------------------------------------
    def steps(self) -> list[list[int]]:
        """Groups of compute nodes, each one kernel (or one glue step), in an order that respects data flow.

        A pointwise node joins (and merges) the regions of its same-shape pointwise producers while the
        region stays convex: no path leaves it and comes back, so the regions form a DAG."""
        g = self.g
        region_of: dict[int, int] = {}
        groups: dict[int, list[int]] = {}
        for n in g.compute_nodes():
            region = [n]
            if g.op_name(n) in POINTWISE_OPS:
                near = dict.fromkeys(region_of[p] for p in g.inputs_of(n) if p in region_of
                                     and g.op_name(p) in POINTWISE_OPS and g.shape(p) == g.shape(n))
                for r in near:
                    if self._convex(groups[r] + region):
                        region = groups.pop(r) + region
            groups[n] = sorted(region)
            for m in region:
                region_of[m] = n
        order = nx.DiGraph()
        order.add_nodes_from(groups)
        for u, v in g.g.edges():
            if u in region_of and region_of[u] != region_of[v]:
                order.add_edge(region_of[u], region_of[v])
        return [groups[r] for r in nx.lexicographical_topological_sort(order, key=lambda r: groups[r][0])]

    def _convex(self, region: list[int]) -> bool:
        """No input from outside `region` depends on a node inside it."""
        members = set(region)
        for n in region:
            for t in self.g.inputs_of(n):
                if t not in members and (nx.ancestors(self.g.g, t) | {t}) & members:
                    return False
        return True

    # program ------------------------------------------------------------------------------------------
    def program(self) -> str:
        g = self.g
        for n in g.creation_nodes():
            self.names[n] = f"self.{g.op_name(n)}{n}" if g.op(n).module else f"x{n}"
            self.contiguous[n] = True
        for group in self.steps():
            op = g.op_name(group[0])
            if op in POINTWISE_OPS:
                self.pointwise(group)
            elif op in ROW_OPS:
                self.rows(group[0])
            else:
                self.layout(group[0])
        outs = []
        for n in g.outputs:
            if g.op_name(n) in LAYOUT_OPS:
                outs.append(self.copy(n))
            else:
                outs.append(self.names[n])
        self.body.append(f"return {outs[0]}" if len(outs) == 1 else f"return ({', '.join(outs)})")
        init, forward = _reference_signature(g)
        lines = [HEADER, ""] + [k + "\n\n" for k in self.kernels]
        lines += ["class ModelNew(nn.Module):"] + [f"    {line}" if line else "" for line in init]
        lines += ["", f"    {forward}"] + [f"        {line}" if line else "" for line in self.body]
        return "\n".join(lines) + "\n"

    def _kernel_name(self, stem: str) -> str:
        name, i = f"{stem}_kernel", 2
        while name in self.kernel_names:
            name, i = f"{stem}_{i}_kernel", i + 1
        self.kernel_names.add(name)
        return name

    # pointwise regions --------------------------------------------------------------------------------
    def pointwise(self, group: list[int]) -> None:
        g = self.g
        members = set(group)
        shape = g.shape(group[-1])
        outside = []
        for n in group:
            outside += [t for t in g.inputs_of(n) if t not in members and t not in outside]
        outputs = [n for n in group if n in g.outputs or any(c not in members for c in g.consumers(n))]
        values = {t: f"in{i}" for i, t in enumerate(outside)}
        lines = []
        for n in group:
            args = [values[t] for t in g.inputs_of(n)]
            values[n] = f"v{n}"
            lines.append(f"v{n} = {expression(g.op_name(n), args, g.params(n))}")
        ops = [g.op_name(n) for n in group]
        stem = "fused_" + "_".join(dict.fromkeys(ops[:3])) if len(ops) > 1 else ops[0]
        comment = " -> ".join(ops) + " over one output shape"
        self._elementwise(stem, comment, outside, lines, [(values[n], f"t{n}") for n in outputs], shape)
        for n in outputs:
            self.names[n], self.contiguous[n] = f"t{n}", True

    def copy(self, n: int) -> str:
        """A Triton copy of layout output `n` (a view in the glue) into a fresh contiguous tensor."""
        dest = f"t{n}_out"
        self._elementwise("copy", "copy a (possibly strided) view into a contiguous tensor", [n], [],
                          [("in0", dest)], self.g.shape(n))
        return dest

    def _elementwise(self, stem, comment, inputs, lines, outputs, shape) -> None:
        """One kernel over `shape`: load tensors `inputs` (as in0, in1...), run `lines`, and store each
        (kernel value, glue variable) pair of `outputs` into a new contiguous tensor of that name."""
        g = self.g
        rank = len(shape)
        strided = [i for i, t in enumerate(inputs) if not (self.contiguous[t] and g.shape(t) == tuple(shape))]
        name = self._kernel_name(stem)
        args = [f"in{i}_ptr" for i in range(len(inputs))] + [f"out{j}_ptr" for j in range(len(outputs))]
        args.append("n_elements")
        if strided:
            args += [f"size{d}" for d in range(rank)]
            args += [f"in{i}_stride{d}" for i in strided for d in range(rank)]
        src = ["@triton.jit", f"def {name}({', '.join(args)}, BLOCK: tl.constexpr):",
               f"    # {comment}" + ("; broadcast inputs are read through their strides" if strided else ""),
               "    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
               "    mask = offsets < n_elements"]
        if strided:
            src.append("    rest = offsets")
            for d in range(rank - 1, 0, -1):
                src += [f"    idx{d} = rest % size{d}", f"    rest = rest // size{d}"]
            src.append("    idx0 = rest")
        for i in range(len(inputs)):
            where = "offsets"
            if i in strided:
                where = " + ".join(f"idx{d} * in{i}_stride{d}" for d in range(rank))
            src.append(f"    in{i} = tl.load(in{i}_ptr + {where}, mask=mask).to(tl.float32)")
        src += [f"    {line}" for line in lines]
        for j, (value, _) in enumerate(outputs):
            cast = f"{value}.to(out{j}_ptr.dtype.element_ty)"
            src.append(f"    tl.store(out{j}_ptr + offsets, {cast}, mask=mask)")
        self.kernels.append("\n".join(src))

        names = [self.names[t] for t in inputs]
        first = names[0]
        self.body.append(f"# {comment}")
        shapes = ", ".join(f"{v}.shape" for v in names)
        self.body.append(f"shape = torch.broadcast_shapes({shapes})" if len(names) > 1
                         else f"shape = {first}.shape")
        outs = [out for _, out in outputs]
        for out in outs:
            self.body.append(f"{out} = torch.empty(shape, device={first}.device, dtype={first}.dtype)")
        self.body.append(f"n_elements = {outs[0]}.numel()")
        self.body.append(f"BLOCK = min(triton.next_power_of_2(n_elements), {POINTWISE_BLOCK})")
        call = names + outs + ["n_elements"]
        if strided:
            call.append("*shape")
            call += [f"*{names[i]}.expand(shape).stride()" for i in strided]
        self.body.append(f"{name}[(triton.cdiv(n_elements, BLOCK),)]({', '.join(call)}, BLOCK=BLOCK)")

    # row operators ------------------------------------------------------------------------------------
    def rows(self, n: int) -> None:
        g = self.g
        op = g.op_name(n)
        spec = ROW_OPS[op]
        (src,) = g.inputs_of(n)
        x, rank = self.names[src], len(g.shape(src))
        dims = [rank - 1] if op in _NORM_MODULES else _reduced_dims(g.params(n)['dim'], rank)
        kept = [d for d in range(rank) if d not in dims]
        perm = kept + dims
        name = self._kernel_name(f"{op}_rows")
        self.kernels.append(row_kernel(name, op))
        out = f"t{n}"
        b = self.body
        b.append(f"# {op} over dim{'s' if len(dims) > 1 else ''} {', '.join(map(str, dims))}: "
                 + ("reduced dims last, one row each" if perm != list(range(rank)) else "one row each"))
        moved = f"{x}.permute({', '.join(map(str, perm))})" if perm != list(range(rank)) else x
        b.append(f"rows = {moved}.contiguous()")
        b.append(f"n_cols = rows.shape[{rank - len(dims)}:].numel()")
        b.append("rows = rows.reshape(-1, n_cols)")
        b.append("n_rows = rows.shape[0]")
        if spec.reduces:
            b.append(f"{out} = torch.empty(n_rows, device=rows.device, dtype=rows.dtype)")
        else:
            b.append(f"{out} = torch.empty_like(rows)")
        b.append("BLOCK_N = triton.next_power_of_2(n_cols)")
        b.append("BLOCK_M = max(1, min(triton.next_power_of_2(n_rows), 4096 // BLOCK_N))")
        extra = []
        if op in _NORM_MODULES:
            module = f"self.{op}{n}"
            extra = [f"{module}.weight"] + ([f"{module}.bias"] if op == "layer_norm" else [])
            eps = f"{module}.eps" if op == "layer_norm" else \
                f"{module}.eps if {module}.eps is not None else torch.finfo(rows.dtype).eps"
            b.append(f"eps = {eps}")
        call = ["rows"] + extra + [out, "n_rows", "n_cols"] + (["eps"] if extra else [])
        grid = "(triton.cdiv(n_rows, BLOCK_M),)"
        b.append(f"{name}[{grid}]({', '.join(call)}, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N)")
        if spec.reduces:
            keep = g.params(n).get("keepdim", False)
            sizes = [("1" if d in dims else f"{x}.shape[{d}]") for d in range(rank) if keep or d not in dims]
            b.append(f"{out} = {out}.reshape({', '.join(sizes)}{',' if len(sizes) == 1 else ''})")
            self.contiguous[n] = True
        elif perm != list(range(rank)):
            inverse = [perm.index(d) for d in range(rank)]
            shape = ", ".join(f"{x}.shape[{d}]" for d in perm)
            b.append(f"{out} = {out}.reshape({shape}).permute({', '.join(map(str, inverse))})")
            self.contiguous[n] = False
        else:
            b.append(f"{out} = {out}.reshape({x}.shape)")
            self.contiguous[n] = True
        self.names[n] = out

    # layout operators -----------------------------------------------------------------------------------
    def layout(self, n: int) -> None:
        g = self.g
        ins = g.inputs_of(n)
        expr = g.op(n).forward_expr([self.names[t] for t in ins], g.params(n), None)
        self.body.append(f"t{n} = {expr}  # layout only: a view or copy, no arithmetic")
        self.names[n] = f"t{n}"
        self.contiguous[n] = g.op_name(n) in _KEEPS_CONTIGUOUS and all(self.contiguous[t] for t in ins)


def _reduced_dims(dim, rank: int) -> list[int]:
    """The dims an operator's `dim` parameter (an int or a list of ints) names, non-negative and sorted."""
    dims = dim if isinstance(dim, (list, tuple)) else [dim]
    return sorted({d % rank for d in dims})


def _reference_signature(graph: Graph) -> tuple[list[str], str]:
    """The reference Model's `__init__` lines (dedented by one level) and its `def forward(...)` line."""
    lines = graph.to_code().splitlines()
    start = lines.index("class Model(nn.Module):") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("    def forward("))
    init = [line[4:] for line in lines[start:end]]
    while init and not init[-1].strip():
        init.pop()
    return init, lines[end].strip()
