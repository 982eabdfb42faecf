"""Lower a synth IR `Graph` to one candidate program: `@triton.jit` kernels plus a `ModelNew` that runs them.

`plan.py` decides which operators share a kernel (the fusion plan); this module writes each step of the
plan with the emitter of its kernel family (`plan.FAMILIES`):

* `pointwise`: one kernel over a region's output shape that reads every outside input through the strides
  of `input.expand(shape)` (broadcast dims have stride 0), or by flat offset when the input is contiguous
  with exactly that shape; a gathered cat / stack is read from its two inputs (`gather.py`);
* `matmul`: linear / matmul / mm / bmm as one tiled `tl.dot` kernel with the region in its epilogue;
* `conv`: the convolution in PyTorch without its bias, then the bias and the region in one Triton kernel;
* `rows`: reductions, softmax family, layer/RMS/instance norm, argmax/argmin as one row kernel (reduced dims
  that are one block read in place through an inner stride, others permuted last into a (rows, cols)
  matrix), with its prologue and epilogue;
* `pool`: one windowed-reduction kernel (`pool.py`), or for a global average pool a plane-mean kernel after
  a partial-sum kernel when there are few planes (`global_pool.py`);
* `channel_norm`: batch / group norm as one looped reduction kernel, or, for few long rows, a
  block-statistics kernel and a normalising kernel (`channel_norm.py`);
* `triangle`: triu / tril in one pass (`triangle.py`);
* `flip`: torch.flip as one gather-by-index kernel with the consuming pointwise region (`flip.py`);
* `layout`: views or copies in the glue, which the verifier allows; an output not made by a kernel (a
  layout copy, a bare convolution, a view of an input) is copied by a Triton kernel so that every returned
  tensor comes from a kernel; a contiguous view of kernel outputs (flatten, unflatten, unsqueeze, squeeze,
  reshape) is returned as it is.

Anything else raises `Unsupported`. `ModelNew.__init__` repeats the reference's lines, so its signature,
parameters and state_dict are the reference's.
"""
from __future__ import annotations

from synth.ir import Graph
from synth.teacher import matmul
from synth.teacher.channel_norm import (
    channel_norm_glue,
    channel_norm_kernel,
    norm_stats_kernel,
    split_norm,
    with_prologue,
)
from synth.teacher.conv import CONV_OPS, bias_view, conv_call
from synth.teacher.epilogue import index_args, index_call, region_body, signature
from synth.teacher.flip import flip_glue, flip_kernel
from synth.teacher.gather import gather_args, gather_call, gather_glue, gather_load
from synth.teacher.global_pool import global_pool_glue, is_global, mean_kernel, partial_kernel
from synth.teacher.plan import FAMILIES, Plan, plan, row_dims, row_in_place
from synth.teacher.pointwise import expression
from synth.teacher.pool import pool_glue, pool_kernel
from synth.teacher.rows import ROW_OPS, row_kernel
from synth.teacher.support import Unsupported, reason
from synth.teacher.tiling import Tiling, current, using
from synth.teacher.triangle import triangle_glue, triangle_kernel

HEADER = "import torch\nimport torch.nn as nn\nimport triton\nimport triton.language as tl\n"
# layout ops whose result is contiguous when their inputs are
_KEEPS_CONTIGUOUS = frozenset({"flatten", "unflatten", "unsqueeze", "squeeze", "reshape", "cat", "stack"})
# layout ops that are views of their (contiguous) input
_VIEWS = frozenset({"flatten", "unflatten", "unsqueeze", "squeeze", "reshape"})


def supported_ops() -> frozenset[str]:
    """Every operator name the teacher lowers: those with a kernel family."""
    return frozenset(FAMILIES)


def lower(graph: Graph, tiling: Tiling | None = None) -> str:
    """The candidate program (source text) for `graph`, with the tile caps of `tiling` (default: Tiling(),
    what the SFT data uses); raises Unsupported for an operator not covered."""
    for n in graph.compute_nodes():
        op = graph.op_name(n)
        if op not in supported_ops():
            raise Unsupported(op, reason(op))
    with using(tiling or Tiling()):
        return _Lowering(graph, plan(graph)).program()


class _Lowering:
    """The emitters: one method per kernel family (`plan.FAMILIES`), each writing one step of the plan."""

    def __init__(self, graph: Graph, fusion: Plan) -> None:
        self.g = graph
        self.plan = fusion
        self.kernels: list[str] = []
        self.kernel_names: set[str] = set()
        self.body: list[str] = []
        self.names: dict[int, str] = {}
        self.contiguous: dict[int, bool] = {}
        # tensors computed in the glue (layout views, bare convolutions), not by a kernel
        self.from_glue: set[int] = set()
        # cat / stack nodes that the consuming pointwise kernel reads from their inputs
        self.gathers: set[int] = {step.host for step in fusion.steps if step.gathered}

    # program ------------------------------------------------------------------------------------------
    def program(self) -> str:
        g = self.g
        for n in g.creation_nodes():
            self.names[n] = f"self.{g.op_name(n)}{n}" if g.op(n).module else f"x{n}"
            self.contiguous[n] = True
        for step in self.plan.steps:
            if not step.gathered:  # else its consumer's kernel reads the cat / stack from the two inputs
                getattr(self, step.family)(step.host, step.nodes)
        copied = [n in self.from_glue and n not in self.plan.direct and not self._views_kernel_output(n)
                  for n in g.outputs]
        outs = [self.copy(n) if copy else self.names[n] for n, copy in zip(g.outputs, copied)]
        self.body.append(f"return {outs[0]}" if len(outs) == 1 else f"return ({', '.join(outs)})")
        init, forward = _reference_signature(g)
        header = HEADER
        if any(g.op_name(n) in CONV_OPS for n in g.compute_nodes()):
            header += "import torch.nn.functional as F\n"
        lines = [header, ""] + [k + "\n\n" for k in self.kernels]
        lines += ["class ModelNew(nn.Module):"] + [f"    {line}" if line else "" for line in init]
        lines += ["", f"    {forward}"] + [f"        {line}" if line else "" for line in self.body]
        return "\n".join(lines) + "\n"

    def _prologue_lines(self, before: list[int], src: int,
                        others: list[int] = ()) -> tuple[list[str], dict[int, str]]:
        """Kernel lines computing the prologue nodes `before` from the loaded tile `x` (tensor `src`) and the
        tiles q0, q1... of tensors `others`, and each node's value name."""
        g = self.g
        values, first = {src: "x", **{t: f"q{j}" for j, t in enumerate(others)}}, []
        for m in before:
            values[m] = f"p{m}"
            args = [values[t] for t in g.inputs_of(m)]
            first.append(f"p{m} = {expression(g.op_name(m), args, g.params(m))}")
        return first, values

    def _kernel_name(self, stem: str) -> str:
        name, i = f"{stem}_kernel", 2
        while name in self.kernel_names:
            name, i = f"{stem}_{i}_kernel", i + 1
        self.kernel_names.add(name)
        return name

    # pointwise regions --------------------------------------------------------------------------------
    def region(self, group: list[int], host: int | None = None, host_value: str = "acc", first: int = 0):
        """The pointwise part of region `group`: (outside input nodes, kernel lines, (value, node) pairs to
        store, kernel stem, comment). Outside inputs are named in{first}, in{first + 1}...; the host's value
        is `host_value` and the host's own inputs are not region inputs."""
        g = self.g
        members = set(group)
        outside = []
        for n in group:
            if n != host:
                outside += [t for t in g.inputs_of(n) if t not in members and t not in outside]
        outputs = [n for n in group if n in g.outputs or any(c not in members for c in g.consumers(n))]
        values = {t: f"in{first + i}" for i, t in enumerate(outside)}
        if host is not None:
            values[host] = host_value
        lines = []
        for n in group:
            if n == host:
                continue
            args = [values[t] for t in g.inputs_of(n)]
            values[n] = f"v{n}"
            lines.append(f"v{n} = {expression(g.op_name(n), args, g.params(n))}")
        ops = [g.op_name(n) for n in group]
        stem = "fused_" + "_".join(dict.fromkeys(ops[:3])) if len(ops) > 1 else ops[0]
        comment = " -> ".join(ops) + " over one output shape"
        return outside, lines, [(values[n], n) for n in outputs], stem, comment

    def pointwise(self, host: int, group: list[int]) -> None:
        g = self.g
        outside, lines, outputs, stem, comment = self.region(group)
        operands, gathered = [], {}
        for t in outside:
            if t in self.gathers:  # a cat / stack read from its two inputs
                a, b = (self.names[u] for u in g.inputs_of(t))
                self.body += gather_glue(f"g{t}", g.op_name(t), g.params(t)["dim"] % len(g.shape(t)), a, b)
                gathered[len(operands)] = g.op_name(t)
                operands.append((f"g{t}", True))
            else:
                operands.append((self.names[t], self._dense(t, group[-1])))
        self._elementwise(stem, comment, operands, lines, [(value, f"t{n}") for value, n in outputs],
                          len(self.g.shape(group[-1])), gathered)
        for _, n in outputs:
            self.names[n], self.contiguous[n] = f"t{n}", True

    def _views_kernel_output(self, n: int) -> bool:
        """Glue tensor `n` is a contiguous view (flatten, unflatten, unsqueeze) of tensors that kernels wrote,
        so it can be returned as it is: no copy kernel, as the reference returns its own view."""
        g = self.g
        if g.op_name(n) not in _VIEWS or not self.contiguous[n]:
            return False
        return all(t not in g.creation_nodes() and (t not in self.from_glue or self._views_kernel_output(t))
                   for t in g.inputs_of(n))

    def _dense(self, t: int, n: int) -> bool:
        """Tensor `t` is contiguous with exactly node `n`'s shape, so it is read by flat offset."""
        return self.contiguous[t] and self.g.shape(t) == self.g.shape(n)

    def copy(self, n: int) -> str:
        """A Triton copy of glue-made output `n` (a view, a PyTorch conv) into a fresh contiguous tensor."""
        dest = f"t{n}_out"
        self._elementwise("copy", "copy a tensor made in the glue (possibly strided) into a contiguous one",
                          [(self.names[n], False)], [], [("in0", dest)], len(self.g.shape(n)))
        return dest

    def _elementwise(self, stem, comment, operands, lines, outputs, rank,
                     gathered: dict | None = None) -> None:
        """One kernel over the broadcast shape of `operands` ((glue tensor, dense) pairs, loaded as in0,
        in1...): run `lines`, and store each (kernel value, glue variable) pair of `outputs` into a new
        contiguous tensor of that name. A dense operand is contiguous with the output's shape. `gathered`
        maps operand indices to "cat" / "stack": that operand is the prefix of `gather.gather_glue`'s names
        and is read from the two inputs."""
        strided = [i for i, (_, dense) in enumerate(operands) if not dense]
        gathered = gathered or {}
        name = self._kernel_name(stem)
        args = [a for i in range(len(operands))
                for a in (gather_args(i) if i in gathered else [f"in{i}_ptr"])]
        args += [f"out{j}_ptr" for j in range(len(outputs))]
        args += ["n_elements"] + index_args(strided, rank)
        src = ["@triton.jit", *signature(name, args, ["BLOCK"]),
               f"    # {comment}" + ("; broadcast inputs are read through their strides" if strided else ""),
               "    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
               "    mask = offsets < n_elements"]
        src += [f"    {line}" for i, op in gathered.items() for line in gather_load(i, op)]
        src += [f"    {line}" for line in region_body(len(operands), strided, rank, lines,
                                                         [value for value, _ in outputs],
                                                         loaded=frozenset(gathered))]
        self.kernels.append("\n".join(src))

        names = [glue for glue, _ in operands]
        first = f"{names[0]}a" if 0 in gathered else names[0]
        self.body.append(f"# {comment}")
        shapes = ", ".join(f"{v}_shape" if i in gathered else f"{v}.shape" for i, v in enumerate(names))
        self.body.append(f"shape = torch.broadcast_shapes({shapes})" if len(names) > 1
                         else f"shape = {shapes}")
        outs = [out for _, out in outputs]
        for out in outs:
            self.body.append(f"{out} = torch.empty(shape, device={first}.device, dtype={first}.dtype)")
        self.body.append(f"n_elements = {outs[0]}.numel()")
        self.body.append(f"BLOCK = min(triton.next_power_of_2(n_elements), {current().pointwise_block})")
        call = [a for i, v in enumerate(names) for a in (gather_call(v) if i in gathered else [v])]
        call += outs + ["n_elements"] + index_call(names, strided)
        self.body.append(f"{name}[(triton.cdiv(n_elements, BLOCK),)]({', '.join(call)}, BLOCK=BLOCK)")

    # matmul and conv regions ----------------------------------------------------------------------------
    def matmul(self, host: int, group: list[int]) -> None:
        """Matmul-class `host` as a tiled tl.dot kernel computing the rest of `group` in its epilogue."""
        g = self.g
        op = g.op_name(host)
        outside, lines, outputs, _, _ = self.region(group, host, "acc")
        ins = g.inputs_of(host)
        module = f"self.{op}{host}" if op == "linear" else None
        ranks = tuple(len(g.shape(t)) for t in ins)
        same_batch = len(set(ranks)) == 1 and len({g.shape(t)[:-2] for t in ins}) == 1
        bias = g.params(host).get("bias", True) if op == "linear" else False
        epilogue = [g.op_name(n) for n in group if n != host]
        what = f"{op} (x @ weight.T + bias)" if bias else op
        text = f"{what} as a tiled fp32 tl.dot" + (
            f", epilogue fused: {' -> '.join(epilogue)}" if epilogue else "")
        name = self._kernel_name("_".join([op, *dict.fromkeys(epilogue[:3])]))
        operands = [(self.names[t], self._dense(t, host)) for t in outside]
        strided = [i for i, (_, dense) in enumerate(operands) if not dense]
        rank = len(g.shape(host))
        dims = matmul.gemm_dims(op, [g.shape(t) for t in ins], g.shape(host))  # (B, M, N, K): the tiling
        self.kernels.append(matmul.matmul_kernel(name, text, bool(bias), len(outside), strided, rank, lines,
                                                 [value for value, _ in outputs], op, dims))
        self.body.append(f"# {text}")
        self.body += matmul.operand_glue(op, [self.names[t] for t in ins], module, ranks, same_batch)
        self.body += matmul.launch_glue(name, f"{module}.bias" if bias else None, [n for n, _ in operands],
                                        [f"t{n}" for _, n in outputs], strided, op, dims)
        for _, n in outputs:
            self.names[n], self.contiguous[n] = f"t{n}", True

    def conv(self, host: int, group: list[int]) -> None:
        """Convolution `host` in PyTorch, then its bias and the rest of `group` as one Triton epilogue."""
        g = self.g
        op = g.op_name(host)
        module = f"self.{op}{host}"
        (x,) = g.inputs_of(host)
        raw = f"t{host}_conv"
        bias = g.params(host).get("bias", True)
        epilogue = [g.op_name(n) for n in group if n != host]
        parts = (["bias"] if bias else []) + epilogue
        if not epilogue and (host not in g.outputs or host in self.plan.direct):
            # nothing to fuse: the bias stays in the PyTorch call and the consumer reads its result
            self.body.append(f"# {op} in PyTorch (an aten convolution, which the verifier allows); "
                             + ("returned as it is (the Triton kernels compute another output)"
                                if host in self.plan.direct else "its consumers read the result"))
            self.body.append(f"conv = {module}")
            self.body.append(f"{raw} = {conv_call(op, self.names[x], 'conv', bias=bool(bias))}")
            self.names[host], self.contiguous[host] = raw, False
            self.from_glue.add(host)
            return
        self.body.append(
            f"# {op} in PyTorch without its bias (an aten convolution, which the verifier allows)")
        self.body.append(f"# then in Triton: {' -> '.join(parts)}" if parts
                         else "# its consumers read the result")
        self.body.append(f"conv = {module}")
        self.body.append(f"{raw} = {conv_call(op, self.names[x], 'conv')}")
        if not bias and not epilogue:
            self.names[host], self.contiguous[host] = raw, False
            self.from_glue.add(host)
            return
        # in0: the raw conv output (any strides); in1: the bias, broadcast over (N, C, *spatial)
        operands = [(raw, False)]
        if bias:
            self.body.append(f"t{host}_bias = {bias_view(op, 'conv')}")
            operands.append((f"t{host}_bias", False))
        outside, lines, outputs, _, _ = self.region(group, host, f"v{host}", first=len(operands))
        lines.insert(0, f"v{host} = in0 + in1" if bias else f"v{host} = in0")
        operands += [(self.names[t], self._dense(t, host)) for t in outside]
        comment = f"{op} epilogue: {' -> '.join(parts)} on the PyTorch convolution's output"
        self._elementwise(f"{op}_{'_'.join(dict.fromkeys(parts[:3]))}", comment, operands, lines,
                          [(value, f"t{n}") for value, n in outputs], len(g.shape(host)))
        for _, n in outputs:
            self.names[n], self.contiguous[n] = f"t{n}", True

    # row operators ------------------------------------------------------------------------------------
    def rows(self, n: int, group: list[int] | None = None) -> None:
        """Row operator `n`, computing the rest of `group` (pointwise, its shape) in the kernel's epilogue."""
        g = self.g
        op = g.op_name(n)
        spec = ROW_OPS[op]
        (src,) = g.inputs_of(n)
        src, before = self.plan.prologue.get(n, (src, []))
        x, rank = self.names[src], len(g.shape(src))
        dims, perm = row_dims(g, n)
        # reduced dims that are one consecutive block but not the last ones: rows are read in place through
        # an inner stride (no permuted copy), and a full-row result is written in the input's own layout
        moved = not row_in_place(g, n)
        inner = perm != list(range(rank)) and not moved
        outside, lines, outputs, _, _ = self.region(group or [n], n, "y")
        epilogue = [g.op_name(m) for m in group or [n] if m != n]
        prologue = [g.op_name(m) for m in before]
        name = self._kernel_name(
            "_".join([*dict.fromkeys(prologue[:2]), f"{op}_rows", *dict.fromkeys(epilogue[:3])]))
        operands = [(self.names[t], self._dense(t, n)) for t in outside]
        strided = [i for i, (_, dense) in enumerate(operands) if not dense]
        others = self.plan.prologue_inputs.get(n, [])
        first, values = self._prologue_lines(before, src, others)
        self.kernels.append(row_kernel(name, op, len(operands), strided, len(g.shape(n)), lines,
                                       [value for value, _ in outputs], first, values[g.inputs_of(n)[0]],
                                       inner, len(others), rank))
        b = self.body
        b.append(f"# {op} over dim{'s' if len(dims) > 1 else ''} {', '.join(map(str, dims))}: "
                 + ("reduced dims last, one row each" if moved else
                    "rows read in place with an inner stride" if inner else "one row each")
                 + (f"; prologue fused: {' -> '.join(prologue)}" if prologue else "")
                 + (f"; epilogue fused: {' -> '.join(epilogue)}" if epilogue else ""))
        b.append(f"rows = {x}.permute({', '.join(map(str, perm))}).contiguous()" if moved
                 else f"rows = {x}.contiguous()")
        if inner:
            b.append(f"n_cols = rows.shape[{dims[0]}:{dims[-1] + 1}].numel()")
            b.append(f"n_inner = rows.shape[{dims[-1] + 1}:].numel()")
            b.append("n_rows = rows.numel() // n_cols")
        else:
            b.append(f"n_cols = rows.shape[{rank - len(dims)}:].numel()")
            b.append("rows = rows.reshape(-1, n_cols)")
            b.append("n_rows = rows.shape[0]")
        if spec.reduces:
            keep = g.params(n).get("keepdim", False)
            sizes = [("1" if d in dims else f"{x}.shape[{d}]") for d in range(rank) if keep or d not in dims]
            b.append(f"shape = ({', '.join(sizes)}{',' if len(sizes) == 1 else ''})")
        elif moved:
            b.append("shape = rows.shape  # the output with its dims permuted; put back below")
        else:
            b.append(f"shape = {x}.shape")
        outs = [f"t{m}" for _, m in outputs]
        for out in outs:
            dtype = spec.out_dtype or "rows.dtype"
            b.append(f"{out} = torch.empty(shape, device=rows.device, dtype={dtype})")
        b.append("BLOCK_N = triton.next_power_of_2(n_cols)")
        b.append(f"BLOCK_M = max(1, min(triton.next_power_of_2(n_rows), {current().row_tile} // BLOCK_N))")
        module = f"self.{op}{n}"
        extra = [f"{module}.{'weight' if a == 'w' else 'bias'}" for a in spec.affine]
        if spec.eps:
            eps = f"{module}.eps" if op != "rms_norm" else \
                f"{module}.eps if {module}.eps is not None else torch.finfo(rows.dtype).eps"
            b.append(f"eps = {eps}")
        names = [glue for glue, _ in operands]
        call = ["rows"] + extra + names + outs + ["n_rows", "n_cols"] + (["n_inner"] if inner else [])
        call += ["eps"] if spec.eps else []
        call += index_call(names, strided)
        if others:  # the prologue's other inputs, strided over the row operator's input shape
            call += [self.names[t] for t in others] + [f"*{x}.shape"]
            call += [f"*{self.names[t]}.expand({x}.shape).stride()" for t in others]
        grid = "(triton.cdiv(n_rows, BLOCK_M),)"
        b.append(f"{name}[{grid}]({', '.join(call)}, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N)")
        for _, m in outputs:
            self.names[m], self.contiguous[m] = f"t{m}", True
        if moved and not spec.reduces:
            out = outs[0]
            inverse = [perm.index(d) for d in range(rank)]
            shape = ", ".join(f"{x}.shape[{d}]" for d in perm)
            b.append(f"{out} = {out}.reshape({shape}).permute({', '.join(map(str, inverse))})")
            self.contiguous[n] = False

    # pooling and channel norms ----------------------------------------------------------------------------
    def pool(self, n: int, group: list[int]) -> None:
        """Pooling `n`, computing the rest of `group` (pointwise, its shape) in the kernel's epilogue."""
        g = self.g
        op = g.op_name(n)
        outside, lines, outputs, _, _ = self.region(group, n, "y")
        epilogue = [g.op_name(m) for m in group if m != n]
        (x,) = g.inputs_of(n)
        x, before = self.plan.prologue.get(n, (x, []))
        name = self._kernel_name("_".join([*dict.fromkeys(g.op_name(m) for m in before[:2]), op,
                                           *dict.fromkeys(epilogue[:3])]))
        operands = [(self.names[t], self._dense(t, n)) for t in outside]
        strided = [i for i, (_, dense) in enumerate(operands) if not dense]
        values, outs, glue = ([value for value, _ in outputs], [f"t{m}" for _, m in outputs],
                              [t for t, _ in operands])
        if is_global(op, g.params(n)):
            partial = self._kernel_name(f"{op}_partial")
            self.kernels += [partial_kernel(partial),
                             mean_kernel(name, len(operands), strided, len(g.shape(n)), lines, values)]
            self.body += global_pool_glue(name, partial, op, self.names[x], outs, glue, strided, epilogue)
        else:
            first, values_in = self._prologue_lines(before, x)
            self.kernels.append(pool_kernel(name, op, g.params(n), len(operands), strided, len(g.shape(n)),
                                            lines, values, first, values_in[g.inputs_of(n)[0]]))
            self.body += pool_glue(name, op, g.params(n), self.names[x], outs, glue, strided, epilogue)
        for _, m in outputs:
            self.names[m], self.contiguous[m] = f"t{m}", True

    def channel_norm(self, n: int, group: list[int]) -> None:
        """Batch or group norm `n`, computing the rest of `group` (pointwise, its shape) in the kernel's
        epilogue."""
        g = self.g
        op = g.op_name(n)
        outside, lines, outputs, _, _ = self.region(group, n, "y")
        epilogue = [g.op_name(m) for m in group if m != n]
        stem = "group_norm" if op == "group_norm" else "batch_norm"
        (x,) = g.inputs_of(n)
        src, before = self.plan.prologue.get(n, (x, []))
        name = self._kernel_name("_".join([*dict.fromkeys(g.op_name(m) for m in before[:2]), stem,
                                           *dict.fromkeys(epilogue[:3])]))
        operands = [(self.names[t], self._dense(t, n)) for t in outside]
        strided = [i for i, (_, dense) in enumerate(operands) if not dense]
        values, outs = [value for value, _ in outputs], [f"t{m}" for _, m in outputs]
        first, loaded = self._prologue_lines(before, src)
        fuse = (lambda k: with_prologue(k, first, loaded[x])) if before else (lambda k: k)
        stats = None
        if split_norm(op, g.shape(x), g.params(n).get("groups", 1)):
            stats = self._kernel_name(f"{stem}_stats")
            self.kernels.append(fuse(norm_stats_kernel(stats, op)))
        self.kernels.append(fuse(channel_norm_kernel(name, op, len(operands), strided, len(g.shape(n)), lines,
                                                     values, split=stats is not None)))
        x = src
        self.body += channel_norm_glue(name, op, self.names[x], f"self.{op}{n}", outs,
                                       [t for t, _ in operands], strided, epilogue, stats)
        for _, m in outputs:
            self.names[m], self.contiguous[m] = f"t{m}", True

    def triangle(self, n: int, group: list[int]) -> None:
        """triu / tril `n`, computing the rest of `group` (pointwise, its shape) in the kernel's epilogue."""
        g = self.g
        op = g.op_name(n)
        outside, lines, outputs, _, _ = self.region(group, n, "y")
        epilogue = [g.op_name(m) for m in group if m != n]
        name = self._kernel_name("_".join([op, *dict.fromkeys(epilogue[:3])]))
        operands = [(self.names[t], self._dense(t, n)) for t in outside]
        strided = [i for i, (_, dense) in enumerate(operands) if not dense]
        outs = [f"t{m}" for _, m in outputs]
        self.kernels.append(triangle_kernel(name, op, g.params(n).get("diagonal", 0), len(operands), strided,
                                            len(g.shape(n)), lines, [value for value, _ in outputs]))
        (x,) = g.inputs_of(n)
        self.body += triangle_glue(name, op, self.names[x], outs, [t for t, _ in operands], strided, epilogue)
        for _, m in outputs:
            self.names[m], self.contiguous[m] = f"t{m}", True

    def flip(self, n: int, group: list[int]) -> None:
        """flip `n`, computing the rest of `group` (pointwise, its shape) in the kernel's epilogue."""
        g = self.g
        outside, lines, outputs, _, _ = self.region(group, n, "y")
        epilogue = [g.op_name(m) for m in group if m != n]
        name = self._kernel_name("_".join(["flip", *dict.fromkeys(epilogue[:3])]))
        operands = [(self.names[t], self._dense(t, n)) for t in outside]
        strided = [i for i, (_, dense) in enumerate(operands) if not dense]
        outs = [f"t{m}" for _, m in outputs]
        dims, rank = g.params(n)["dims"], len(g.shape(n))
        self.kernels.append(flip_kernel(name, dims, rank, len(operands), strided, lines,
                                        [value for value, _ in outputs]))
        (x,) = g.inputs_of(n)
        self.body += flip_glue(name, dims, self.names[x], outs, [t for t, _ in operands], strided, epilogue)
        for _, m in outputs:
            self.names[m], self.contiguous[m] = f"t{m}", True

    # layout operators -----------------------------------------------------------------------------------
    def layout(self, n: int, group: list[int]) -> None:
        g = self.g
        ins = g.inputs_of(n)
        x = self.names[ins[0]]
        if g.op_name(n) == "reshape":
            expr = f"{x}.reshape({', '.join(_reshape_sizes(x, g.shape(ins[0]), g.shape(n)))})"
        elif g.op_name(n) == "expand":  # -1 keeps a dim's own size (new leading dims are given)
            src, dst = g.shape(ins[0]), g.shape(n)
            lead = len(dst) - len(src)
            sizes = list(dst[:lead]) + [-1 if a == s else s for a, s in zip(src, dst[lead:])]
            expr = f"{x}.expand({', '.join(map(str, sizes))})"
        else:
            expr = g.op(n).forward_expr([self.names[t] for t in ins], g.params(n), None)
        self.body.append(f"t{n} = {expr}  # layout only: a view or copy, no arithmetic")
        self.names[n] = f"t{n}"
        self.from_glue.add(n)
        self.contiguous[n] = g.op_name(n) in _KEEPS_CONTIGUOUS and all(self.contiguous[t] for t in ins)


def _reshape_sizes(x: str, src: tuple[int, ...], dst: tuple[int, ...]) -> list[str]:
    """Target sizes of `x.reshape(...)` written to follow the input's sizes: dims the reshape keeps at the
    front and at the back (batch, spatial) are read from `x.shape` and the largest changed dim is -1 (a
    channel count split into fixed groups), so the glue holds when the verifier's shape-variant trial
    changes those sizes.

    >>> _reshape_sizes("t", (8, 6, 5), (8, 2, 3, 5))
    ['t.shape[0]', '2', '-1', 't.shape[2]']
    """
    front = 0
    while front < min(len(src), len(dst)) - 1 and src[front] == dst[front]:
        front += 1
    back = 0
    while back < min(len(src), len(dst)) - front - 1 and src[-1 - back] == dst[-1 - back]:
        back += 1
    sizes = [f"{x}.shape[{i}]" for i in range(front)] + [str(s) for s in dst[front:len(dst) - back]]
    sizes += [f"{x}.shape[{len(src) - back + j}]" for j in range(back)]
    middle = dst[front:len(dst) - back]
    if middle:
        sizes[front + middle.index(max(middle))] = "-1"
    return sizes


def _reference_signature(graph: Graph) -> tuple[list[str], str]:
    """The reference Model's `__init__` lines (dedented by one level) and its `def forward(...)` line."""
    lines = graph.to_code().splitlines()
    start = lines.index("class Model(nn.Module):") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("    def forward("))
    init = [line[4:] for line in lines[start:end]]
    while init and not init[-1].strip():
        init.pop()
    return init, lines[end].strip()
