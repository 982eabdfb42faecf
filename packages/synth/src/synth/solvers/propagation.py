"""The default solver: bounds propagation plus randomized depth-first search with restarts.

Propagation keeps an interval per variable and tightens it from every constraint touching a changed
variable (linear: the usual min/max activity bounds; product: interval division, all factors >= 1) until
nothing changes. Search assigns the decision variables in random order (targets of products last, since
their factors usually fix them), each to a random value: log-uniform over its current interval, or a
power of two with probability `p_pow2`; with probability `p_fair` the interval is first capped at the
variable's fair share of the element and FLOP budgets (so early tensors do not starve later ones). A
value that fails propagation cuts the interval above it (caps
are the usual culprit) and another value is drawn; past `max_failures` the search restarts, and after
`restarts` restarts the problem counts as unsolved. Values are checked exactly before being returned.
"""
from __future__ import annotations

import math
import random

from synth.csp import Compiled


class _Restart(Exception):
    pass


class PropagationSolver:
    """Propagation + randomized search (see the module docstring)."""

    def __init__(self, p_pow2: float = 0.5, p_fair: float = 0.8, max_failures: int = 200, restarts: int = 4,
                 max_revisions: int = 20000) -> None:
        self.p_pow2, self.p_fair, self.max_failures, self.restarts = p_pow2, p_fair, max_failures, restarts
        self.max_revisions = max_revisions

    def solve(self, problem: Compiled, rng: random.Random) -> list[int] | None:
        return _Search(problem, rng, self).run()


class _Search:
    def __init__(self, problem: Compiled, rng: random.Random, cfg: PropagationSolver) -> None:
        self.pb, self.rng, self.cfg = problem, rng, cfg
        n = problem.size
        # constraint ids: linear i -> i, product j -> n_lin + j
        self.n_lin = len(problem.linears)
        self.watch: list[list[int]] = [[] for _ in range(n)]
        for i, (terms, _, _) in enumerate(problem.linears):
            for v, _ in terms:
                self.watch[v].append(i)
        targets = set()
        self.factor_of: list[list[int]] = [[] for _ in range(n)]
        for j, (z, _, factors) in enumerate(problem.products):
            for v in {z, *factors}:
                self.watch[v].append(self.n_lin + j)
            for v in set(factors):
                self.factor_of[v].append(j)
            targets.add(z)
        self.targets = targets
        self.budgets_of: list[list[int]] = [[] for _ in range(n)]
        for i, (terms, _, sense) in enumerate(problem.linears):
            if sense == "<=" and all(c > 0 for _, c in terms):
                for v, _ in terms:
                    self.budgets_of[v].append(i)

    def run(self) -> list[int] | None:
        pb = self.pb
        for _ in range(self.cfg.restarts):
            lo, hi = list(pb.lo), list(pb.hi)
            if not self.propagate(lo, hi, range(self.n_lin + len(pb.products))):
                return None
            order = [v for v in range(pb.size) if pb.decision[v]]
            self.rng.shuffle(order)
            order.sort(key=lambda v: v in self.targets)
            self.failures = 0
            try:
                result = self.dfs(order, 0, lo, hi)
            except _Restart:
                continue
            if result is None:
                return None
            values = self.finish(*result)
            if values is not None:
                return values
        return None

    def finish(self, lo, hi) -> list[int] | None:
        """Fix whatever propagation left open (aux vars), then check exactly."""
        for v in range(self.pb.size):
            if lo[v] != hi[v]:
                hi[v] = lo[v]
                if not self.propagate(lo, hi, self.watch[v]):
                    return None
        return lo if self.pb.check(lo) is None else None

    def dfs(self, order, i, lo, hi):
        while i < len(order) and lo[order[i]] == hi[order[i]]:
            i += 1
        if i == len(order):
            return lo, hi
        v = order[i]
        while lo[v] <= hi[v]:
            top = hi[v]
            if self.rng.random() < self.cfg.p_fair:
                top = max(lo[v], min(top, self.fair_share(v, lo, hi)))
            value = self.pick(lo[v], top)
            lo2, hi2 = list(lo), list(hi)
            lo2[v] = hi2[v] = value
            if self.propagate(lo2, hi2, self.watch[v]):
                result = self.dfs(order, i + 1, lo2, hi2)
                if result is not None:
                    return result
            self.failures += 1
            if self.failures > self.cfg.max_failures:
                raise _Restart
            if value > lo[v]:
                hi[v] = value - 1
            else:
                lo[v] = value + 1
        return None

    def fair_share(self, v: int, lo: list[int], hi: list[int]) -> int:
        """The largest value of `v` that leaves every product it feeds, and every budget (a `<=` sum of
        positive terms) that product is charged to, an even share for the factors and terms still open."""
        pb, share = self.pb, hi[v]
        for j in self.factor_of[v]:
            z, coeff, factors = pb.products[j]
            cap = hi[z]
            for i in self.budgets_of[z]:
                terms, const, _ = pb.linears[i]
                slack, open_terms = -const, 0
                for u, c in terms:
                    if lo[u] == hi[u]:
                        slack -= c * lo[u]
                    else:
                        open_terms += 1
                cap = min(cap, slack // max(open_terms, 1))
            fixed, free = coeff, 0
            for f in factors:
                if lo[f] == hi[f]:
                    fixed *= lo[f]
                else:
                    free += 1
            share = min(share, int((max(cap, 1) / fixed) ** (1 / max(free, 1))))
        return share

    def pick(self, a: int, b: int) -> int:
        rng = self.rng
        if a == b:
            return a
        if a < 1 or b - a < 4:
            return rng.randint(a, b)
        if rng.random() < self.cfg.p_pow2:
            e_lo, e_hi = (a - 1).bit_length(), b.bit_length() - 1
            if e_lo <= e_hi:
                return 1 << rng.randint(e_lo, e_hi)
        return min(b, int(math.exp(rng.uniform(math.log(a), math.log(b + 1)))))

    def propagate(self, lo: list[int], hi: list[int], constraints) -> bool:
        pb, n_lin, watch = self.pb, self.n_lin, self.watch
        queue = list(dict.fromkeys(constraints))
        queued = set(queue)
        budget = self.cfg.max_revisions
        while queue:
            c = queue.pop()
            queued.discard(c)
            budget -= 1
            if budget < 0:
                return True
            if c < n_lin:
                changed = _linear(pb.linears[c], lo, hi)
            else:
                changed = _product(pb.products[c - n_lin], lo, hi)
            if changed is None:
                return False
            for v in changed:
                for c2 in watch[v]:
                    if c2 != c and c2 not in queued:
                        queued.add(c2)
                        queue.append(c2)
        return True


def _linear(constraint, lo, hi):
    """Tighten bounds from `sum(c x) + const (==|<=) 0`; returns changed vars, or None if infeasible."""
    terms, const, sense = constraint
    minsum = maxsum = const
    for v, c in terms:
        if c > 0:
            minsum += c * lo[v]
            maxsum += c * hi[v]
        else:
            minsum += c * hi[v]
            maxsum += c * lo[v]
    if minsum > 0 or (sense == "==" and maxsum < 0):
        return None
    changed = []
    for v, c in terms:
        if c > 0:
            rest_min = minsum - c * lo[v]
            new_hi = (-rest_min) // c
            new_lo = -((maxsum - c * hi[v]) // c) if sense == "==" else lo[v]
        else:
            rest_min = minsum - c * hi[v]
            new_lo = -(rest_min // c)
            new_hi = (maxsum - c * lo[v]) // (-c) if sense == "==" else hi[v]
        if not _tighten(v, new_lo, new_hi, lo, hi, changed):
            return None
    return changed


def _product(constraint, lo, hi):
    """Tighten bounds from `z == coeff * prod(factors)` with factors >= 1."""
    z, coeff, factors = constraint
    plo = phi = coeff
    for f in factors:
        plo *= lo[f]
        phi *= hi[f]
    changed = []
    if not _tighten(z, plo, phi, lo, hi, changed):
        return None
    for f in factors:
        others_lo, others_hi = plo // lo[f], phi // hi[f]
        new_lo = -(-lo[z] // others_hi)
        new_hi = hi[z] // others_lo
        if not _tighten(f, new_lo, new_hi, lo, hi, changed):
            return None
    return changed


def _tighten(v, new_lo, new_hi, lo, hi, changed) -> bool:
    """Narrow v's bounds to [new_lo, new_hi], noting v in `changed` if they moved; False if empty."""
    if new_lo > lo[v] or new_hi < hi[v]:
        lo[v], hi[v] = max(lo[v], new_lo), min(hi[v], new_hi)
        if lo[v] > hi[v]:
            return False
        changed.append(v)
    return True
