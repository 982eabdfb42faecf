"""Sampling statistics over manifest entries: operator histogram, chi-square uniformity, pair coverage.

    from synth.stats import summarize
    summarize(entries, op_names)
    # dict: op_counts, chi2, chi2_p, pairs_seen, pairs_feasible, missing_pairs...

A pair (A, B) is feasible when some output rank of A is accepted by some input of B; it is covered when
some program feeds an A output into a B.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from synth.ops import MAX_RANK, Op, get_op

RANKS = range(1, MAX_RANK + 1)


def output_ranks(op: Op) -> set[int]:
    return {ro for r in RANKS for ro in op.rank_options(r)}


def input_ranks(op: Op) -> set[int]:
    ranks = {r for r in RANKS if op.accepts(r)}
    for slot in range(1, op.arity):
        ranks |= {s for r in RANKS if op.accepts(r) for s in op.side_ranks(r, slot)}
    return ranks


def _readable(producer: Op, consumer: Op) -> bool:
    """Synthesis never reads a terminal operator's output (argmax's int64 indices), and feeds the positive
    slots (sqrt's, log's input) fresh positive leaves: a consumer all of whose slots are such reads none."""
    return not producer.terminal and not set(range(consumer.arity or 1)) <= set(consumer.positive_slots)


def feasible_pairs(names: list[str]) -> set[tuple[str, str]]:
    """Ordered (producer, consumer) pairs that synthesis can make: ranks allow them and the producer's
    output may be read by the consumer."""
    outs = {n: output_ranks(get_op(n)) for n in names}
    ins = {n: input_ranks(get_op(n)) for n in names}
    return {(a, b) for a in names for b in names if outs[a] & ins[b] and _readable(get_op(a), get_op(b))}


def chi_square(counts: list[int]) -> tuple[float, float]:
    """Pearson chi-square statistic against the uniform distribution, and its p-value."""
    from scipy.stats import chisquare

    result = chisquare(counts)
    return float(result.statistic), float(result.pvalue)


def summarize(entries: Iterable[dict], names: list[str]) -> dict:
    """Statistics of `entries` (manifest entries or records as dicts) over the operators `names`."""
    ops, pairs, levels, n = Counter(), Counter(), Counter(), 0
    for e in entries:
        n += 1
        levels[e["level"]] += 1
        ops.update(e["ops"])
        pairs.update(tuple(p) for p in e["edges"])
    counts = [ops.get(name, 0) for name in names]
    chi2, p = chi_square(counts) if sum(counts) else (float("nan"), float("nan"))
    feasible = feasible_pairs(names)
    seen = {p for p in pairs if p in feasible}
    return {
        "programs": n,
        "levels": dict(sorted(levels.items())),
        "operators": len(names),
        "op_counts": dict(zip(names, counts)),
        "op_count_min": min(counts),
        "op_count_max": max(counts),
        "chi2": chi2,
        "chi2_dof": len(names) - 1,
        "chi2_p": p,
        "pairs_feasible": len(feasible),
        "pairs_seen": len(seen),
        "pair_coverage": len(seen) / len(feasible) if feasible else 1.0,
        "missing_pairs": sorted(map(list, feasible - seen))[:50],
    }
