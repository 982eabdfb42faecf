"""Where the graph method's host time goes: cProfile of verify.timing.time_callable on fixtures (eager and
candidate), one process, the fixtures' sizes x `--scale`. Prints the wall time per callable and the top
functions by cumulative time.

    python benchmarks/verify/timing_cost.py --scale 1 --tasks batchnorm_relu,rmsnorm,softmax,linear
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--tasks", default="batchnorm_relu,rmsnorm,softmax,linear")
    ap.add_argument("--top", type=int, default=35)
    args = ap.parse_args()
    import torch

    from verify.device_trace import warm_up
    from verify.timing import time_callable

    sys.path.insert(0, str(Path(__file__).parent))
    from offset_probe import _candidate, timing_kwargs

    dev = torch.device("cuda")
    kw = timing_kwargs(dev)
    warm_up()
    jobs = [(name, _candidate(name, args.scale, dev)) for name in args.tasks.split(",")]
    with torch.no_grad():
        for _, (model, a) in jobs:  # compile and warm every kernel first
            time_callable(model, a, **kw)
    prof = cProfile.Profile()
    with torch.no_grad():
        for name, (model, a) in jobs:
            t0 = time.perf_counter()
            prof.enable()
            t = time_callable(model, a, **kw)
            prof.disable()
            wall = time.perf_counter() - t0
            print(f"{name:18s} {wall:7.3f} s  {t.median_ms * 1e3:9.3f} us  calls {t.runs}  {t.method}")
    for key in ("cumulative", "tottime"):
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats(key).print_stats(args.top)
        print(s.getvalue())


if __name__ == "__main__":
    main()
