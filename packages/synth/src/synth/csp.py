"""Shape constraints as an integer CSP, in the small language every solver understands.

Variables are bounded integers. Constraints are of three kinds:

* equality of two variables (`equal`, merged by union-find before solving, so solvers never see it);
* linear: `sum(c_i * x_i) + const == 0` or `<= 0`;
* product: `z == coeff * prod(x_i)` with every factor >= 1 (tensor sizes, FLOP and element counts).

`Problem.compile()` returns a `Compiled` problem over the merged variables, which is what a solver
(`synth.solvers`) gets. Variables flagged `decision` are the ones a solver samples (tensor dims and
remainders); the others (element and FLOP counts) follow from them.

`OpContext` is what an operator's `constrain` hook sees: the dim variables of its inputs and output,
their element counts, and `flops` / `weights` to charge costs against the global caps.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class Infeasible(ValueError):
    """The constraints contradict each other before any search (empty domain after merging)."""


class Problem:
    """A CSP under construction. See the module docstring for the constraint language."""

    def __init__(self) -> None:
        self.lo: list[int] = []
        self.hi: list[int] = []
        self.decision: list[bool] = []
        self.parent: list[int] = []
        self.linears: list[tuple[dict[int, int], int, str]] = []
        self.products: list[tuple[int, int, tuple[int, ...]]] = []

    def var(self, lo: int, hi: int, decision: bool = True) -> int:
        self.lo.append(lo)
        self.hi.append(hi)
        self.decision.append(decision)
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, v: int) -> int:
        parent = self.parent
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    def equal(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.lo[ra] = max(self.lo[ra], self.lo[rb])
            self.hi[ra] = min(self.hi[ra], self.hi[rb])
            self.decision[ra] = self.decision[ra] or self.decision[rb]

    def fix(self, v: int, value: int) -> None:
        self.at_least(v, value)
        self.at_most(v, value)

    def at_least(self, v: int, value: int) -> None:
        r = self.find(v)
        self.lo[r] = max(self.lo[r], value)

    def at_most(self, v: int, value: int) -> None:
        r = self.find(v)
        self.hi[r] = min(self.hi[r], value)

    def linear(self, coeffs: dict[int, int], const: int = 0, sense: str = "==") -> None:
        if sense not in ("==", "<="):
            raise ValueError(f"sense must be '==' or '<=', got {sense!r}")
        self.linears.append((dict(coeffs), const, sense))

    def product(self, z: int, factors: list[int], coeff: int = 1) -> None:
        self.products.append((z, coeff, tuple(factors)))

    def compile(self) -> "Compiled":
        roots = sorted({self.find(v) for v in range(len(self.parent))})
        index = {r: i for i, r in enumerate(roots)}
        of = [index[self.find(v)] for v in range(len(self.parent))]
        lo = [self.lo[r] for r in roots]
        hi = [self.hi[r] for r in roots]
        for i, (a, b) in enumerate(zip(lo, hi)):
            if a > b:
                raise Infeasible(f"variable {i} has empty domain [{a}, {b}] after merging equal dims")
        linears = []
        for coeffs, const, sense in self.linears:
            merged: dict[int, int] = {}
            for v, c in coeffs.items():
                merged[of[v]] = merged.get(of[v], 0) + c
            merged = {v: c for v, c in merged.items() if c}
            if not merged:
                if (const != 0 and sense == "==") or (const > 0 and sense == "<="):
                    raise Infeasible(f"constant constraint {const} {sense} 0 is false")
                continue
            linears.append((tuple(merged.items()), const, sense))
        products = []
        for z, coeff, factors in self.products:
            fs = tuple(of[f] for f in factors)
            for f in fs:
                lo[f] = max(lo[f], 1)
            products.append((of[z], coeff, fs))
        decision = [self.decision[r] for r in roots]
        return Compiled(lo=lo, hi=hi, decision=decision, linears=linears, products=products, of=of)


@dataclass
class Compiled:
    """A problem over merged variables: what solvers read. `of[v]` maps an original variable to its index."""

    lo: list[int]
    hi: list[int]
    decision: list[bool]
    # ((var, coeff), ...), const, sense
    linears: list[tuple[tuple[tuple[int, int], ...], int, str]]
    # (z, coeff, factors)
    products: list[tuple[int, int, tuple[int, ...]]]
    of: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.lo)

    def check(self, values: list[int]) -> str | None:
        """None when `values` satisfies every bound and constraint, else a description of the first
        violation."""
        for i, (a, b) in enumerate(zip(self.lo, self.hi)):
            if not a <= values[i] <= b:
                return f"var {i}={values[i]} outside [{a}, {b}]"
        for terms, const, sense in self.linears:
            total = const + sum(c * values[v] for v, c in terms)
            if (sense == "==" and total != 0) or (sense == "<=" and total > 0):
                return f"linear {terms} + {const} {sense} 0 violated ({total})"
        for z, coeff, factors in self.products:
            prod = coeff
            for f in factors:
                prod *= values[f]
            if values[z] != prod:
                return f"product var {z}={values[z]} != {prod}"
        return None


@dataclass
class OpContext:
    """What an operator's `constrain` hook works with (all entries are variable ids of `p`)."""

    p: Problem
    # dim variables of each input, outermost first
    ins: list[list[int]]
    # dim variables of the output
    out: list[int]
    # element-count variable of each input
    numel_in: list[int]
    # element-count variable of the output
    numel_out: int
    # cost variables charged against the FLOP cap
    flop_terms: list[int]
    # cost variables charged against the element cap (weights)
    weight_terms: list[int]
    # upper bound of a FLOP cost variable
    flop_cap: int
    # upper bound of a weight cost variable
    element_cap: int

    def flops(self, coeff: int, factors: list[int]) -> None:
        """Charge `coeff * prod(factors)` FLOPs."""
        self.flop_terms.append(self._cost(coeff, factors, self.flop_cap))

    def weights(self, coeff: int, factors: list[int]) -> None:
        """Charge `coeff * prod(factors)` weight elements."""
        self.weight_terms.append(self._cost(coeff, factors, self.element_cap))

    def _cost(self, coeff: int, factors: list[int], cap: int) -> int:
        z = self.p.var(1, cap, decision=False)
        self.p.product(z, factors, coeff)
        return z

    def aux(self, lo: int, hi: int) -> int:
        """A fresh decision variable (a quotient or remainder)."""
        return self.p.var(lo, hi, decision=True)
