"""Device timestamps of the kernels, copies and fills a stretch of GPU work runs
(CUPTI, via torch's profiler).

The graph timing method times a call as the span from the start of its first kernel to the end of its
last, on the GPU's own clock. Events around graph replays also hold the time the GPU takes to launch
each call's first kernel. With the inputs rotated through L2, that launch time differs between
captures of the same calls, for reasons outside the candidate's control. On an H200, a graph of a
2.2 us kernel cost 2.17 or 2.53 us per call depending on the capture: a fixed difference, the same in
every process, while the kernel's own duration stayed within 0.8 % (benchmarks/verify/RESULTS.md).
Kernels inside one call, and the gaps between them, are all inside the span.
"""
from __future__ import annotations

import torch
from torch.autograd import DeviceType

_profile = torch.autograd.profiler.profile
_profiler_enabled = torch.autograd._profiler_enabled


class DeviceTrace:
    """Context manager: records the device interval of every kernel, memcpy and memset this process runs
    inside it. Raises on entry when the profiler cannot start: another profiler running (torch would nest
    them, and each would stop the other's session), no CUPTI."""

    def __enter__(self) -> "DeviceTrace":
        if _profiler_enabled():
            raise RuntimeError("another profiler is running in this process")
        self._prof = _profile(use_device="cuda", use_cpu=False, use_kineto=True)
        self._prof.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._prof.__exit__(*exc)

    def intervals_ns(self) -> list[tuple[int, int]]:
        """(start, end) in ns of each device activity recorded, by start time."""
        return sorted((e.start_ns(), e.end_ns()) for e in self._prof.kineto_results.events()
                      if e.device_type() == DeviceType.CUDA and e.duration_ns() > 0)


def call_spans_ms(intervals: list[tuple[int, int]], calls: int, lead: int = 0,
                  groups: int = 1) -> list[float] | None:
    """The device time of each of `calls` calls that ran one after another: from its first activity's start
    to its last one's end, in ms. `intervals` holds `groups` groups one after another, each of `lead`
    activities (e.g. an L2 flush) and then its share of the calls, the same number of activities for every
    call; None when the counts do not divide evenly (calls whose kernels vary in number cannot be told
    apart).

    >>> call_spans_ms([(0, 9), (10, 1010), (1020, 1520), (1600, 2600), (2620, 3120)], 2, lead=1)
    [0.00151, 0.00152]
    >>> call_spans_ms([(0, 9), (10, 1010), (1020, 1029), (1600, 2600)], 2, lead=1, groups=2)
    [0.001, 0.001]
    >>> call_spans_ms([(0, 5), (6, 9), (10, 12)], 2) is None
    True
    """
    if calls < 1 or groups < 1 or calls % groups or not intervals or len(intervals) % groups:
        return None
    per_group, out = len(intervals) // groups, []
    for g in range(0, len(intervals), per_group):
        body = intervals[g + lead:g + per_group]
        if not body or len(body) % (calls // groups):
            return None
        k = len(body) // (calls // groups)
        out += [(max(e for _, e in body[i:i + k]) - body[i][0]) / 1e6 for i in range(0, len(body), k)]
    return out


_warm = False


def warm_up() -> None:
    """Start and stop one empty trace, once per process: the first start loads CUPTI (seconds), which should
    not happen while the GPU is held for timing. A failure is left for the timed trace to report."""
    global _warm
    if not _warm:
        _warm = True
        try:
            with DeviceTrace():
                pass
        except Exception:  # noqa: BLE001 - reported where it matters, by the timing that needs the trace
            pass
