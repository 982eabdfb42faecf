"""The tuning table: which GEMM tiling the teacher's default lowering writes for a product's shape class.

A matmul-class operator is brought to a batch of products `a[b] @ b[b]`, (B, M, K) @ (B, K, N) (`matmul.py`).
Its *kind* is `linear` (b is `weight.t()`, read K-contiguous), `matmul` (one product: mm, matmul, a 2-d
view) or `bmm` (B > 1), and its *bucket* a coarse shape class (`gemm_bucket`). The table maps
`"kind/bucket"` (or `"gemm/bucket"` for every kind) to a `GemmConfig`: BLOCK_M / BLOCK_N / BLOCK_K (caps:
the launch glue lowers them to the operand's size), num_warps, num_stages, GROUP_M (grouped program order)
and tl.dot's input precision.

The committed table is `tuning_h200.json` beside this file. Its `"source"` says where its numbers come
from: "seeded by hand, not yet measured" until `benchmarks/tune/tune_gemm.py` (one GPU command) times
`candidates()` on the representative shapes of every bucket and writes the fastest verified config per
entry, with the timings, device and versions. `Tiling()` (the default tiling, what n=1 and the SFT data
use) reads it through `gemm_config`; the other tilings of `tiling.SWEEP` override it field by field.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("tuning_h200.json")
PRECISIONS = ("ieee", "tf32x3")
KINDS = ("linear", "matmul", "bmm")


@dataclass(frozen=True)
class GemmConfig:
    """One GEMM tiling: block caps, launch parameters, grouped order and tl.dot precision."""

    block_m: int = 128
    block_n: int = 128
    block_k: int = 32
    num_warps: int = 8
    num_stages: int = 3
    # row blocks per group of the grouped program order (1: plain row-major order of the tiles)
    group_m: int = 8
    # "tf32x3" (three TF32 tensor-core products per fp32 product: fp32-level error) or "ieee" (CUDA cores)
    precision: str = "tf32x3"

    def __post_init__(self):
        for name in ("block_m", "block_n", "block_k"):
            v = getattr(self, name)
            if v < 16 or v & (v - 1):
                raise ValueError(f"GemmConfig.{name} must be a power of two >= 16 (tl.dot), got {v}")
        if self.num_warps not in (1, 2, 4, 8, 16):
            raise ValueError(f"GemmConfig.num_warps must be a power of two <= 16, got {self.num_warps}")
        if self.num_stages < 1 or self.group_m < 1:
            raise ValueError(f"GemmConfig num_stages and group_m must be >= 1, got {self}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"GemmConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")

    @classmethod
    def from_dict(cls, d: dict) -> GemmConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)

    def smem_bytes(self, itemsize: int = 4) -> int:
        """Shared memory of the software pipeline: one A and one B tile per stage."""
        return self.num_stages * (self.block_m + self.block_n) * self.block_k * itemsize

    def label(self) -> str:
        return (f"{self.block_m}x{self.block_n}x{self.block_k} w{self.num_warps} s{self.num_stages} "
                f"g{self.group_m} {self.precision}")


# bucket -> what it covers (in the order gemm_bucket tests them); tiles128 = B * ceil(M/128) * ceil(N/128)
BUCKETS = {
    "thin": "M < 64 or N < 64 (matrix-vector-like: the narrow side is clamped to its size)",
    "small": "fewer than 32 tiles of 128x128 (a quarter of the H200's 132 SMs)",
    "medium": "32 to 263 tiles of 128x128 (under two waves: smaller tiles keep every SM busy)",
    "large": "264 or more tiles of 128x128 (e.g. KernelBench level 2: 1024 x 8192 x 8192)",
}
H200_SMS = 132


def gemm_bucket(batch: int, m: int, n: int, k: int) -> str:
    """The shape class of a batch of `batch` (m x k) @ (k x n) products."""
    if m < 64 or n < 64:
        return "thin"
    tiles = batch * math.ceil(m / 128) * math.ceil(n / 128)
    if tiles < 32:
        return "small"
    if tiles < 2 * H200_SMS:
        return "medium"
    return "large"


def gemm_kind(op: str, batch: int) -> str:
    """`linear`, `bmm` (more than one product) or `matmul`."""
    if op == "linear":
        return "linear"
    return "bmm" if batch > 1 else "matmul"


# the hand-seeded table (what tuning_h200.json holds until the GPU tuner rewrites it): Hopper-sized 3xTF32
# tiles for many tiles, smaller ones where 128x128 would leave SMs idle
SEED = {
    "gemm/thin": GemmConfig(64, 64, 32, 4, 3, 8, "tf32x3"),
    "gemm/small": GemmConfig(64, 64, 32, 4, 3, 8, "tf32x3"),
    "gemm/medium": GemmConfig(64, 128, 32, 4, 4, 8, "tf32x3"),
    "gemm/large": GemmConfig(128, 128, 32, 8, 3, 8, "tf32x3"),
}
SEED_SOURCE = "seeded by hand, not yet measured"


def seed_table() -> dict:
    """The JSON document of the hand-seeded table."""
    return {"source": SEED_SOURCE, "device": None, "generated_at": None, "versions": {},
            "buckets": dict(BUCKETS),
            "gemm": {key: cfg.to_dict() for key, cfg in SEED.items()}, "measurements": {}}


@functools.lru_cache(maxsize=8)
def _load(path: str) -> dict:
    with open(path) as f:
        table = json.load(f)
    for key, value in table.get("gemm", {}).items():
        GemmConfig.from_dict(value)  # validate every entry once
        if "/" not in key:
            raise ValueError(f"{path}: gemm entry {key!r} is not 'kind/bucket'")
    return table


def load_table(path: str | Path | None = None) -> dict:
    """The tuning table (the committed JSON; the hand seed if the file is missing)."""
    p = Path(path) if path else TABLE_PATH
    if not p.exists():
        return seed_table()
    return _load(str(p))


def gemm_config(kind: str, bucket: str, table: dict | None = None) -> GemmConfig:
    """The table's config for `kind/bucket`, else `gemm/bucket`, else the hand seed's."""
    entries = (table or load_table()).get("gemm", {})
    for key in (f"{kind}/{bucket}", f"gemm/{bucket}"):
        if key in entries:
            return GemmConfig.from_dict(entries[key])
    return SEED.get(f"gemm/{bucket}", SEED["gemm/large"])


def table_source(table: dict | None = None) -> str:
    return (table or load_table()).get("source", "unknown")


# representative (batch, M, N, K) per bucket for the tuner: KernelBench's GEMM shapes where it has them
SHAPES = {
    "thin": [(1, 32, 4096, 4096), (1, 4096, 32, 4096)],
    "small": [(1, 256, 256, 8192), (1, 512, 512, 4096)],
    "medium": [(1, 128, 16384, 16384), (1, 128, 32768, 32768)],
    "large": [(1, 1024, 8192, 8192), (1, 16384, 4096, 4096)],
}
BMM_SHAPES = {
    "thin": [(64, 32, 512, 512)],
    "small": [(4, 256, 256, 1024)],
    "medium": [(16, 256, 512, 1024)],
    "large": [(128, 512, 512, 1024)],
}


def candidates(bucket: str, smem_limit: int = 200 * 1024) -> list[GemmConfig]:
    """Configs the tuner times for `bucket`: 3xTF32 tilings that fit in shared memory (wide tiles only with
    8 warps: their fp32 accumulator and TF32 splits would spill with 4), then the exact (ieee) default."""
    if bucket in ("thin", "small"):
        shapes = [(bm, bn, bk, w) for bm, bn, bk in ((32, 64, 32), (64, 32, 32), (32, 32, 64), (64, 64, 32),
                                                      (64, 128, 32), (128, 64, 32)) for w in (4,)]
        shapes += [(128, 128, 32, 8)]
    else:
        shapes = [(64, 64, 32, 4), (64, 128, 32, 4), (128, 64, 32, 4), (128, 128, 32, 4), (128, 128, 32, 8),
                  (128, 128, 64, 8), (128, 256, 32, 8), (256, 128, 32, 8), (64, 256, 32, 8)]
    out = []
    for bm, bn, bk, warps in shapes:
        for stages in (3, 4):
            cfg = GemmConfig(bm, bn, bk, warps, stages, 8, "tf32x3")
            if cfg.smem_bytes() <= smem_limit:
                out.append(cfg)
    out.append(GemmConfig(64, 64, 32, 4, 3, 8, "ieee"))
    return list(dict.fromkeys(out))
