"""Typed configuration of a verification (the `verify` node of the Hydra config)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from hydra.core.config_store import ConfigStore

# Aten ops a candidate may call outside its kernels without it counting as torch compute:
# allocation, views, copies and data movement.
FREE_TORCH_OPS = (
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
    "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "fill_", "zero_",
    "arange", "scalar_tensor", "copy_", "clone", "_to_copy", "contiguous", "view", "_unsafe_view",
    "reshape", "expand", "permute", "transpose", "t", "squeeze", "unsqueeze", "select", "slice",
    "as_strided", "split", "split_with_sizes", "chunk", "narrow", "unbind", "detach", "alias",
    "lift_fresh", "_local_scalar_dense", "cat", "stack", "flatten", "unflatten", "resize_", "set_",
    "is_same_size", "view_as", "expand_as", "item", "sym_size", "sym_stride", "sym_numel", "_reshape_alias",
    "unfold", "pad", "constant_pad_nd", "_conj", "_neg_view", "slice_scatter",
)

# fields that change how a verification runs but never its verdict (left out of the cache key)
_NOT_IN_DIGEST = ("ref_cache_gb", "kernel_cache", "persistent_workers", "max_jobs_per_worker")


@dataclass
class VerifyConfig:
    """How strictly and how long to verify. Every field is a Hydra override: `verify.trials=8`."""

    # "auto" (CUDA when present, else the CPU interpreter), "cuda" or "cpu"
    device: str = "auto"
    # correctness trials with fresh seeded inputs (at least 5)
    trials: int = 5
    # extra trials with the task's size constants changed (catches hard-coded shapes); 0 disables
    shape_variants: int = 1
    # base seed; trial i uses seed + i for inputs, weights always use seed
    seed: int = 42
    # absolute / relative tolerance per output dtype
    atol: dict = field(default_factory=lambda: {"float32": 1e-4, "float64": 1e-6,
                                                "float16": 1e-2, "bfloat16": 1e-2})
    rtol: dict = field(default_factory=lambda: {"float32": 1e-4, "float64": 1e-6,
                                                "float16": 1e-2, "bfloat16": 1e-2})
    # float32 outputs may also differ by this many times the reference's own float32 rounding error (the
    # largest |float32 reference - float64 reference| of that output): long reductions (a matmul with
    # K=4096) legitimately differ by more than atol with another summation order, while a lower precision
    # (fp16 or TF32 tiles) is thousands of times worse. 0 disables (atol/rtol alone).
    error_floor_factor: float = 8.0
    # aten ops (besides FREE_TORCH_OPS) the forward may call outside kernels, e.g. convolution for hybrids
    allowed_torch_ops: list = field(default_factory=lambda: [
        "convolution", "_convolution", "cudnn_convolution", "convolution_overrideable", "mkldnn_convolution"])
    # allow any torch compute outside kernels (hybrid programs assembled by search); faithfulness then
    # rests on launch counting and the no-op test alone
    allow_torch_compute: bool = False
    # time candidate and baselines (GPU only; ignored on the interpreter)
    timing: bool = True
    # also time torch.compile(Model) (adds its compile time to the verification)
    compile_baseline: bool = False
    # also time torch.compile(Model, mode="max-autotune-no-cudagraphs") (verdict.speedup_compile_max); its
    # compile autotunes on the GPU (minutes on large GEMMs) and holds the device lock shared meanwhile
    compile_max_autotune: bool = False
    # timed calls per callable: at least min_reps, at most max_reps, aiming at budget_ms of timed work
    min_reps: int = 20
    max_reps: int = 200
    budget_ms: float = 40.0
    # warm-up calls before timing (excluded)
    warmup: int = 3
    # how calls are timed: "graph" (captured in a CUDA graph, inputs rotated over copies so that each call
    # reads them from DRAM; checked against a direct call, else "stream") or "stream" (launched and timed
    # call by call after an L2 flush). See verify/timing/
    timing_method: str = "graph"
    # bytes of the buffer written between timed calls to flush L2 ("stream"); "graph": bytes of input
    # copies read between two uses of the same copy
    l2_flush_bytes: int = 256 * 2**20
    # how L2 is flushed before each timed call: "write" fills the buffer (as Triton's do_bench; L2 is then
    # full of dirty lines that the timed call's loads must write back), "read" sums it (L2 left clean)
    l2_flush: str = "write"
    # timed calls rotate over this many copies of the inputs (same values, other addresses), so that one
    # process's memory placement does not bias its median; copies only while they fit in 256 MiB
    input_copies: int = 1
    # peak memory bandwidth of the device in GB/s; a candidate faster than the bytes it must move allows
    # is re-measured, then failed as implausible_speed. 0 disables the check.
    peak_bandwidth_gbps: float = 3350.0
    # seconds a single verification may take (reference and candidate each) before it is a timeout
    timeout_s: float = 120.0
    # GPU only: seconds one forward (or the timing) may hold the device before the job is a timeout; a
    # hanging candidate would otherwise stall every worker on its GPU for the whole timeout_s
    gpu_hold_limit_s: float = 60.0
    # disk kept for reference outputs reused across a task's candidates, GiB; the least recently used are
    # deleted beyond it (and computed again if their task comes back). Changes no verdict.
    ref_cache_gb: float = 8.0
    # host memory cap per worker process, GiB (address-space limit on CPU, RSS watchdog everywhere)
    mem_cap_gb: float = 8.0
    # GPU memory cap per worker process, GiB; null = an equal share of 90% of the card per worker
    gpu_mem_gb: float | None = None
    # "never": a fresh forked, confined process per candidate (the trust boundary: nothing a candidate does
    # reaches the next; on a GPU each creates its CUDA context). "always" (or "auto": on GPUs only): one kept,
    # unconfined process runs candidates in turn and is replaced once one could have left anything behind
    # (verify/zygote.py); faster on a GPU, but a patch no check sees would carry over to later candidates
    persistent_workers: str = "never"
    # candidates a kept worker verifies before it is replaced anyway
    max_jobs_per_worker: int = 64
    # Triton's (and Inductor's) cache: "private" (a fresh one per candidate: nothing one candidate compiles
    # or plants reaches another; each compiles its own kernels) or "shared" (one per verifier, kept across
    # its candidates: a repeated kernel compiles once, and a candidate could plant entries for later ones)
    kernel_cache: str = "private"
    # run the static checks of the format stage (the dynamic checks always run)
    static_checks: bool = True
    # CPU interpreter only: first compile every kernel the forward launches with Triton's GPU front end
    # (sm_90, in a process without the interpreter; verify/gpu_frontend.py). A program the interpreter would
    # run but a GPU would not compile is rejected at the compile stage (triton_compile_error).
    gpu_compile_check: bool = True

    def __post_init__(self):
        if self.trials < 1:
            raise ValueError(f"verify.trials must be >= 1, got {self.trials}")
        if self.input_copies < 1:
            raise ValueError(f"verify.input_copies must be at least 1, got {self.input_copies}")
        if self.ref_cache_gb <= 0:
            raise ValueError(f"verify.ref_cache_gb must be positive, got {self.ref_cache_gb}")
        if self.timing_method not in ("graph", "stream"):
            raise ValueError(f"verify.timing_method must be graph or stream, got {self.timing_method!r}")
        if self.l2_flush not in ("write", "read"):
            raise ValueError(f"verify.l2_flush must be write or read, got {self.l2_flush!r}")
        if self.device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"verify.device must be auto, cuda or cpu, got {self.device!r}")
        if self.kernel_cache not in ("private", "shared"):
            raise ValueError(f"verify.kernel_cache must be private or shared, got {self.kernel_cache!r}")
        if self.persistent_workers not in ("auto", "always", "never"):
            raise ValueError(
                f"verify.persistent_workers must be auto, always or never, got {self.persistent_workers!r}")

    @classmethod
    def from_mapping(cls, m) -> VerifyConfig:
        """Build from a dict or DictConfig, naming unknown keys instead of ignoring them."""
        m = dict(m)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(m) - known)
        if unknown:
            raise ValueError(f"unknown verify config key(s) {unknown}; known keys: {sorted(known)}")
        for key in ("atol", "rtol", "allowed_torch_ops"):
            if key in m and m[key] is not None and not isinstance(m[key], (dict, list)):
                m[key] = dict(m[key]) if hasattr(m[key], "items") else list(m[key])
        return cls(**m)

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        """Hash of the fields that change a verdict (cache key part)."""
        fields_ = {k: v for k, v in self.to_dict().items() if k not in _NOT_IN_DIGEST}
        if not fields_["compile_max_autotune"]:  # off: the digests (caches, bench run keys) from before it
            del fields_["compile_max_autotune"]
        return hashlib.sha256(json.dumps(fields_, sort_keys=True).encode()).hexdigest()[:16]


# The `verifier` config group's schema: verifier/default.yaml extends it, so every package that takes
# `- verifier@verify: default` gets these fields and their types, and a wrong key or type fails at
# composition naming the key. Registered on import; verify's search-path plugin imports this module.
ConfigStore.instance().store(group="verifier", name="schema", node=VerifyConfig)
