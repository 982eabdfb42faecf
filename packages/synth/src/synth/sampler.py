"""CSP-DAG sampling: operators first, then wiring and ranks, then dims by a CSP solver.

Uniformity comes from the order of decisions. The k compute operators are drawn independently and
uniformly from the enabled set *before* anything else; every later retry (new wiring, new parameters,
shape-preserving parameters, finally an isolated wiring where each operator reads fresh leaves, which is
always feasible) keeps that exact sequence. So hard-to-satisfy operators are never resampled away.

Wiring: each operator's input 0 is the previous operator's output (the "spine") whenever ranks allow,
else an unread tensor of the planned rank, else a new data input;
ranks along the spine are planned by dynamic programming that minimises breaks and picks uniformly among
the best plans, and the operators are put in the order (of `orderings` random ones) with fewest breaks.
Other inputs take a dangling tensor first (fan-in), else reuse any earlier tensor with
probability `p_reuse` (fan-out), else a new leaf (a data input, or an `nn.Parameter` with probability
`p_parameter`). An input slot that needs positive values (sqrt, log, div's divisor) always gets a fresh
`input_positive` leaf, and a terminal operator's output (argmax's indices) is never read. Tensors nothing
reads are the program's outputs.

Dims: one integer variable per tensor dim in [1, max_dim], the operators' rules (`Op.constrain`), and
global caps: elements of all tensors and weights <= `max_elements`, FLOPs <= `max_flops`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from synth.csp import Infeasible, OpContext, Problem
from synth.ir import Graph
from synth.ops import MAX_RANK, Op, ShapeError, compute_ops, get_op

RANKS = range(1, MAX_RANK + 1)
MODES = ("normal", "safe", "isolated")


class ConfigError(ValueError):
    """The synthesis configuration cannot work (unknown operator, impossible bounds, bad level)."""


@dataclass
class Attempt:
    """How a program was found: the attempt number and wiring mode that succeeded."""

    attempts: int = 0
    mode: str = "normal"
    failures: list[str] = field(default_factory=list)


class Sampler:
    """Samples solved operator graphs. `solver` is any `synth.solvers.Solver`.

    `ops` restricts the compute operators (names; None = all registered). The caps bound every program;
    `attempts` is how many wirings to try per mode before moving to the next mode.
    """

    def __init__(self, solver, ops: list[str] | None = None, max_dim: int = 2**15, max_elements: int = 2**26,
                 max_flops: int = 2**36, p_reuse: float = 0.3, p_parameter: float = 0.3,
                 p_uniform_input: float = 0.1, attempts: int = 3, orderings: int = 16) -> None:
        self.solver = solver
        self.ops: list[Op] = [get_op(n) for n in ops] if ops else compute_ops()
        bad = [op.name for op in self.ops if op.kind != "compute"]
        if bad:
            raise ConfigError(
                f"{bad} are creation operators; synth.ops lists only compute operators for `ops`")
        if not self.ops:
            raise ConfigError("no compute operators enabled (ops is empty)")
        if max_dim < 2 or max_elements < 64 or max_flops < 64:
            raise ConfigError(f"impossible bounds: max_dim={max_dim} (needs >= 2), "
                              f"max_elements={max_elements}, "
                              f"max_flops={max_flops} (each needs >= 64); raise them")
        if max_dim > max_elements:
            raise ConfigError(f"max_dim={max_dim} exceeds max_elements={max_elements}; lower max_dim")
        self.max_dim, self.max_elements, self.max_flops = max_dim, max_elements, max_flops
        self.p_reuse, self.p_parameter, self.p_uniform_input = p_reuse, p_parameter, p_uniform_input
        self.attempts, self.orderings = attempts, orderings

    # the three stages -----------------------------------------------------------------------------------
    def op_sequence(self, rng: random.Random, k: int) -> list[Op]:
        """k operators drawn independently and uniformly: the only place operator choice happens."""
        if k < 1:
            raise ConfigError(f"level must be >= 1 (a program needs at least one compute operator), got {k}")
        return [rng.choice(self.ops) for _ in range(k)]

    def sample(self, rng: random.Random, k: int, check=None) -> tuple[Graph, Attempt]:
        """A solved graph with exactly k compute operators. `check(graph)` returns an error or None."""
        return self.realise(self.op_sequence(rng, k), rng, check)

    def realise(self, ops: list[Op], rng: random.Random, check=None) -> tuple[Graph, Attempt]:
        """Wire, solve and check `ops`, retrying wirings (never the operators) until one works."""
        info = Attempt()
        for mode in MODES:
            for _ in range(self.attempts if mode != "isolated" else 2 * self.attempts):
                info.attempts += 1
                graph, ranks = self.wire(ops, rng, mode)
                solved = self.solve(graph, ranks, rng)
                if solved is None:
                    info.failures.append(f"{mode}: no solution")
                    continue
                error = check(graph) if check else None
                if error is None:
                    info.mode = mode
                    return graph, info
                info.failures.append(f"{mode}: {error}")
        raise RuntimeError(f"no valid program for operators {[op.name for op in ops]} after {info.attempts} "
                           f"attempts: {info.failures[-3:]}")

    # wiring -------------------------------------------------------------------------------------------
    def order(self, ops: list[Op], rng: random.Random) -> list[Op]:
        """The sampled operators in the order, among `orderings` random ones, with fewest spine breaks
        (a break leaves a tensor unread, i.e. an extra output). The multiset of operators is unchanged."""
        best_ops, best_cost = ops, self._breaks_table(ops)[0][0]
        for _ in range(self.orderings - 1):
            if best_cost == 0:
                break
            candidate = list(ops)
            rng.shuffle(candidate)
            cost = self._breaks_table(candidate)[0][0]
            if cost < best_cost:
                best_ops, best_cost = candidate, cost
        return best_ops

    def _breaks_table(self, ops: list[Op]) -> list[list[int]]:
        """best[i][r]: fewest spine breaks for ops[i:] when the spine tensor entering ops[i] has rank r."""
        k = len(ops)
        best = [[0] * (MAX_RANK + 1) for _ in range(k + 1)]
        for i in range(k - 1, -1, -1):
            for r in range(MAX_RANK + 1):
                best[i][r] = min(cost for cost, *_ in self._rank_moves(ops[i], r, best[i + 1]))
        return best

    def rank_plan(self, ops: list[Op], rng: random.Random) -> list[tuple[int, int, bool]]:
        """Per operator: (rank of input 0, output rank, input 0 is a new leaf), with fewest spine breaks."""
        k = len(ops)
        best = self._breaks_table(ops)
        plan, r = [], 0
        for i in range(k):
            moves = [m for m in self._rank_moves(ops[i], r, best[i + 1]) if m[0] == best[i][r]]
            _, r_in, r_out, fresh = rng.choice(moves)
            plan.append((r_in, r_out, fresh))
            r = 0 if ops[i].terminal else r_out
        return plan

    @staticmethod
    def _rank_moves(op: Op, r: int, best_next: list[int]):
        """(breaks from here on, input rank, output rank, input 0 is new) for `op` when the spine tensor has
        rank `r` (0: none). A terminal operator's output ends the spine: the next operator starts anew; an
        operator with a positive input starts one (its input 0 is always a fresh positive leaf)."""
        def after(ro):
            return best_next[0 if op.terminal else ro]

        if r and op.accepts(r) and 0 not in op.positive_slots:
            return [(after(ro), r, ro, False) for ro in op.rank_options(r)]
        penalty = 1 if r else 0
        return [(penalty + after(ro), ri, ro, True) for ri in RANKS for ro in op.rank_options(ri)]

    def wire(self, ops: list[Op], rng: random.Random, mode: str = "normal") -> tuple[Graph, dict[int, int]]:
        """The graph of `ops` with structural parameters and no shapes, and the rank of every tensor."""
        g, rank = Graph(), {}
        isolated, safe = mode == "isolated", mode != "normal"
        if not isolated:
            ops = self.order(ops, rng)
        plan = self.rank_plan(ops, rng)
        spine = None
        for op, (r0, r_out, fresh0) in zip(ops, plan):
            if isolated:
                r0 = rng.choice([r for r in RANKS if op.accepts(r)])
                r_out = rng.choice(op.rank_options(r0))
            dangling = ([t for t in self._readable(g, g.sinks()) if rank[t] == r0]
                        if fresh0 and not isolated and 0 not in op.positive_slots else [])
            if dangling:
                first, fresh = rng.choice(dangling), [False]
            elif 0 in op.positive_slots:
                first, fresh = self._positive_leaf(g, rank, r0), [True]
            elif isolated or fresh0 or spine is None:
                first, fresh = self._leaf(g, rank, r0, rng, data=True), [True]
            else:
                first, fresh = spine, [False]
            ins = [first]
            for slot in range(1, op.arity):
                if slot in op.positive_slots:
                    ins.append(self._positive_leaf(g, rank, rng.choice(op.side_ranks(r0, slot))))
                    fresh.append(True)
                    continue
                t, is_new = self._side_input(g, rank, op.side_ranks(r0, slot), ins, rng, isolated)
                ins.append(t)
                fresh.append(is_new)
            params = op.sample_params(rng, [rank[t] for t in ins], r_out, safe, fresh)
            spine = g.add(op.name, ins, **params)
            rank[spine] = r_out
        g.outputs = g.sinks()
        return g, rank

    def _leaf(self, g: Graph, rank: dict, r: int, rng: random.Random, data: bool) -> int:
        if not data and rng.random() < self.p_parameter:
            name = "parameter"
        else:
            name = "input_uniform" if rng.random() < self.p_uniform_input else "input"
        n = g.add(name)
        rank[n] = r
        return n

    @staticmethod
    def _positive_leaf(g: Graph, rank: dict, r: int) -> int:
        n = g.add("input_positive")
        rank[n] = r
        return n

    def _side_input(self, g, rank, ranks, taken, rng, isolated) -> tuple[int, bool]:
        if not isolated:
            dangling = [t for t in self._readable(g, g.sinks()) if rank[t] in ranks and t not in taken]
            if dangling:
                return rng.choice(dangling), False
            if rng.random() < self.p_reuse:
                earlier = [t for t in self._readable(g, g.nodes()) if rank[t] in ranks and t not in taken]
                if earlier:
                    return rng.choice(earlier), False
        return self._leaf(g, rank, rng.choice(list(ranks)), rng, data=False), True

    @staticmethod
    def _readable(g: Graph, tensors: list[int]) -> list[int]:
        """`tensors` without the outputs of terminal operators (index tensors nothing reads)."""
        return [t for t in tensors if not g.op(t).terminal]

    # dims -----------------------------------------------------------------------------------------------
    def problem(self, g: Graph, rank: dict[int, int]) -> tuple[Problem, dict[int, list[int]]]:
        """The CSP of `g`'s dims and the dim variables of every tensor."""
        p = Problem()
        dims = {n: [p.var(1, self.max_dim) for _ in range(rank[n])] for n in g.nodes()}
        numel = {}
        for n in g.nodes():
            numel[n] = p.var(1, self.max_elements, decision=False)
            p.product(numel[n], dims[n])
        flop_terms, weight_terms = [], []
        for n in g.compute_nodes():
            ins = g.inputs_of(n)
            ctx = OpContext(p, [dims[t] for t in ins], dims[n], [numel[t] for t in ins], numel[n], flop_terms,
                            weight_terms, flop_cap=self.max_flops, element_cap=self.max_elements)
            g.op(n).constrain(ctx, g.params(n))
        p.linear({v: 1 for v in list(numel.values()) + weight_terms}, -self.max_elements, "<=")
        if flop_terms:
            p.linear({v: 1 for v in flop_terms}, -self.max_flops, "<=")
        return p, dims

    def solve(self, g: Graph, rank: dict[int, int], rng: random.Random) -> Graph | None:
        """Solve `g`'s dims in place (shapes and size parameters); None when the solver finds nothing."""
        p, dims = self.problem(g, rank)
        try:
            compiled = p.compile()
        except Infeasible:
            return None
        values = self.solver.solve(compiled, rng)
        if values is None:
            return None
        for n in g.nodes():
            g.set_shape(n, [values[compiled.of[v]] for v in dims[n]])
        g.fill_size_params()
        solved = {n: g.shape(n) for n in g.nodes()}
        g.infer_shapes()
        wrong = {n: (solved[n], g.shape(n)) for n in g.nodes() if g.shape(n) != solved[n]}
        if wrong:
            raise ShapeError(f"solver shapes disagree with operator rules (a constrain/infer bug): {wrong}")
        return g
