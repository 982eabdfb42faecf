"""The columns of results.csv and of the W&B results table (one definition for both).

`speedup_compile_max` / `compiled_max_ms`: torch.compile(mode="max-autotune-no-cudagraphs"), filled only
with verify.compile_max_autotune=true (else empty). `speedup_missing_reason`: why an accepted task has no
speedup (CPU interpreter, timing off, timing failed), empty otherwise.
"""


def verdict_columns(v) -> dict:
    """The result row's columns of the max-autotune baseline and the missing-speedup reason, from the best
    verdict `v` (None when there is none)."""
    reason = v.speedup_missing_reason if v else None
    if v is not None and v.accepted and v.speedup_eager is None and not reason:
        reason = "not timed (no reason recorded)"
    return {
        "speedup_compile_max": v.speedup_compile_max if v else None,
        "compiled_max_ms": v.compiled_max.median_ms if v and v.compiled_max else None,
        "speedup_missing_reason": reason if v is not None and v.accepted else None,
    }


CSV_FIELDS = (
    "task_id",
    "level",
    "name",
    "accepted",
    "stage",
    "error_class",
    "speedup_eager",
    "speedup_compile",
    "speedup_compile_max",
    "speedup_missing_reason",
    "candidate_ms",
    "eager_ms",
    "compiled_ms",
    "compiled_max_ms",
    "kernel_launches",
    "best_kind",
    "assembly",
    "cost",
    "cost_unit",
    "attempts",
    "samples",
    "wall_s",
    "backend",
    "device",
    "strategy",
    "generator",
    "message",
)
