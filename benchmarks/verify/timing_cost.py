"""Where the graph method's host time goes: cProfile of verify.timing.time_callable on fixtures (eager and
candidate), one process, the fixtures' sizes x `--scale`. Prints the wall time per callable, split into
`prepare_timing` (runs while other workers use the GPU) and `measure()` (the part a verifier holds the GPU
exclusively for), and the top functions by cumulative time; with --out, the split as JSON.

    python benchmarks/verify/timing_cost.py --scale 1 --tasks batchnorm_relu,rmsnorm,softmax,linear \\
        --out cost.json
"""
from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import pstats
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--tasks", default="batchnorm_relu,rmsnorm,softmax,linear")
    ap.add_argument("--top", type=int, default=35)
    ap.add_argument("--out", help="write the per-task wall times (prepare, measure) here as JSON")
    args = ap.parse_args()
    import torch

    from verify.device_trace import warm_up
    from verify.timing import prepare_timing, time_callable

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
    rows = []
    print(f"{'task':18s} {'prepare s':>9s} {'measure s':>9s} {'median us':>10s}  calls  method")
    with torch.no_grad():
        for name, (model, a) in jobs:
            prof.enable()
            t0 = time.perf_counter()
            ready = prepare_timing(model, a, **kw)
            t1 = time.perf_counter()
            t = ready.measure()
            t2 = time.perf_counter()
            prof.disable()
            rows.append({"task": name, "prepare_s": t1 - t0, "measure_s": t2 - t1,
                         "median_us": t.median_ms * 1e3, "calls": t.runs, "method": t.method})
            print(f"{name:18s} {t1 - t0:9.3f} {t2 - t1:9.3f} {t.median_ms * 1e3:10.3f}  {t.runs:5d}  "
                  f"{t.method}")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv), "scale": args.scale,
            "note": "wall times under cProfile", "rows": rows}, indent=2))
    for key in ("cumulative", "tottime"):
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats(key).print_stats(args.top)
        print(s.getvalue())


if __name__ == "__main__":
    main()
