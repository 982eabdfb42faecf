"""Tile sizes the lowering writes into its launch glue, and the small set a GPU sweep tries.

`lower(graph)` uses `Tiling()` (what the SFT data is made with and what n=1 gets). Its GEMM tiling comes
from the tuning table (`tuning.py`, `tuning_h200.json`) by the product's kind and shape bucket: 3xTF32
tensor-core tl.dot with Hopper-sized tiles, grouped program order. `lower(graph, tiling)` writes other caps;
a GEMM field left None is the table's, one set overrides it. `SWEEP` is the set `generator=teacher` offers
when a search asks for several samples (best_of_n with n > 1 on a GPU keeps the fastest verified one: the
config sweep).
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, replace

from synth.teacher import tuning
from synth.teacher.tuning import GemmConfig


@dataclass(frozen=True)
class Tiling:
    # elements per program of a pointwise kernel (cap on BLOCK)
    pointwise_block: int = 1024
    # elements per program of row, channel-norm and pooling kernels (rows x row block)
    row_tile: int = 4096
    # cap on the inner block of a reduction walked in steps (channel norms, pooling windows)
    max_block: int = 1024
    # GEMM fields; None: the tuning table's value for the product's kind and shape bucket.
    # caps on a matmul's BLOCK_M / BLOCK_N and BLOCK_K (tl.dot needs at least 16)
    matmul_mn: int | None = None
    matmul_k: int | None = None
    # tl.dot's input precision: "ieee" (exact fp32 products on CUDA cores) or "tf32x3" (each fp32 product as
    # three TF32 tensor-core products, big * big + big * small + small * big: error near fp32's, several
    # times the throughput); the verifier decides whether a variant is accurate enough
    dot_precision: str | None = None
    matmul_warps: int | None = None
    matmul_stages: int | None = None
    # row blocks per group of the grouped program order
    group_m: int | None = None
    # a tuning table other than the committed one (a path; the tuner's candidates, tests)
    table: str | None = None

    def gemm(self, op: str, batch: int, m: int, n: int, k: int) -> tuple[GemmConfig, str]:
        """(config, where it comes from) for a batch of (m x k) @ (k x n) products of operator `op`."""
        kind, bucket = tuning.gemm_kind(op, batch), tuning.gemm_bucket(batch, m, n, k)
        table = tuning.load_table(self.table)
        cfg = tuning.gemm_config(kind, bucket, table)
        overrides = {"block_m": self.matmul_mn, "block_n": self.matmul_mn, "block_k": self.matmul_k,
                     "precision": self.dot_precision, "num_warps": self.matmul_warps,
                     "num_stages": self.matmul_stages, "group_m": self.group_m}
        overrides = {key: v for key, v in overrides.items() if v is not None}
        if overrides:
            return replace(cfg, **overrides), f"{kind}/{bucket}, the tiling's own caps"
        return cfg, f"{kind}/{bucket} of the tuning table"


# the default (the tuning table) first, then larger tiles (fewer, longer programs), smaller tiles (more
# parallelism on small shapes) with exact fp32 (ieee) products, the fallback where 3xTF32 would not pass,
# and wide matmul tiles
SWEEP = (Tiling(), Tiling(4096, 16384, 2048, 128, 32, "tf32x3", 8, 3),
         Tiling(256, 1024, 256, 32, 32, "ieee", 4, 2),
         Tiling(2048, 8192, 1024, 128, 64, "tf32x3", 8, 3))

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
