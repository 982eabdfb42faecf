"""Lay out a batch so that every group (all rollouts of one prompt) stays whole on one data-parallel rank.

veRL's own balancing spreads single rollouts over ranks by sequence length, which would cut DRPO's groups
apart. Here whole groups are balanced (by total workload) across ranks, each rank's rows are its groups one
after another, and rows of padding (veRL's no-op filler, never part of a real group) come last.
"""
from __future__ import annotations

from collections import defaultdict

from verl.utils.seqlen_balancing import get_seqlen_balanced_partitions


def group_whole_order(uids: list[str], workloads: list[int], dp_size: int, padding: list[bool]) -> list[int]:
    """Row order: rank 0's groups, its padding, rank 1's groups, ... (veRL dispatches equal contiguous
    chunks).

    >>> group_whole_order(["a", "b", "a", "b"], [1, 5, 1, 5], 2, [False] * 4)
    [1, 3, 0, 2]
    """
    groups: dict[str, list[int]] = defaultdict(list)
    pads = []
    for i, (uid, pad) in enumerate(zip(uids, padding)):
        (pads if pad else groups[uid]).append(i)
    members = list(groups.values())
    if len(members) % dp_size:
        raise ValueError(
            f"{len(members)} complete groups cannot be split evenly over {dp_size} data-parallel ranks "
            "without cutting a group; set trainer.v1.sampler.sync_refill_failed_groups=true so failed "
            "groups are refilled")
    sizes = {len(m) for m in members}
    if len(sizes) > 1:
        raise ValueError(f"groups of unequal sizes {sorted(sizes)}: DRPO needs rollout.n outputs per prompt")
    if len(pads) % dp_size:
        raise ValueError(f"{len(pads)} padding rows cannot be split evenly over {dp_size} ranks")
    loads = [sum(workloads[i] for i in m) for m in members]
    parts = get_seqlen_balanced_partitions(loads, k_partitions=dp_size, equal_size=True) if dp_size > 1 \
        else [list(range(len(members)))]
    per_rank_pads = len(pads) // dp_size
    order = []
    for r, part in enumerate(parts):
        for g in part:
            order.extend(members[g])
        order.extend(pads[r * per_rank_pads:(r + 1) * per_rank_pads])
    return order
