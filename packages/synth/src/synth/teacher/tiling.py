"""Tile sizes the lowering writes into its launch glue, and the small set a GPU sweep tries.

`lower(graph)` uses `Tiling()` (what the SFT data is made with). `lower(graph, tiling)` writes other caps;
`SWEEP` is the set `generator=teacher` offers when a search asks for several samples (best_of_n with
n > 1 on a GPU keeps the fastest verified one: the config sweep).
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class Tiling:
    # elements per program of a pointwise kernel (cap on BLOCK)
    pointwise_block: int = 1024
    # elements per program of row, channel-norm and pooling kernels (rows x row block)
    row_tile: int = 4096
    # cap on the inner block of a reduction walked in steps (channel norms, pooling windows)
    max_block: int = 1024
    # caps on a matmul's BLOCK_M / BLOCK_N and BLOCK_K (tl.dot needs at least 16)
    matmul_mn: int = 64
    matmul_k: int = 32
    # tl.dot's input precision: "ieee" (exact fp32 products on CUDA cores) or "tf32x3" (each fp32 product as
    # three TF32 tensor-core products, big * big + big * small + small * big: error near fp32's, several
    # times the throughput); the verifier decides whether a variant is accurate enough
    dot_precision: str = "ieee"


# the default first, then larger tiles (fewer, longer programs), smaller tiles (more parallelism on small
# shapes) and wide matmul tiles; the large and wide ones run their tl.dot on tensor cores (tf32x3)
SWEEP = (Tiling(), Tiling(4096, 16384, 2048, 128, 32, "tf32x3"), Tiling(256, 1024, 256, 32, 32),
         Tiling(2048, 8192, 1024, 128, 64, "tf32x3"))

_current: contextvars.ContextVar[Tiling] = contextvars.ContextVar("tiling", default=Tiling())


def current() -> Tiling:
    """The tiling of the lowering in progress."""
    return _current.get()


@contextlib.contextmanager
def using(tiling: Tiling):
    token = _current.set(tiling)
    try:
        yield tiling
    finally:
        _current.reset(token)
