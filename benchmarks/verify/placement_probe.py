"""Does where a module's parameters live set a small kernel's time? (issue 2, repeatability)

The verifier's graph method gives every captured call its own copy of the inputs, but not of the module's
parameters and buffers: they stay at one address per process. batchnorm_relu (one kernel, 16 programs,
about 3 us) still differed by 4-16 % between processes when timed by device spans. This probe runs
`--procs` fresh processes one after another; each times every task `--trials` times with
`verify.timing.time_callable` (the verifier's code), under three variants per trial:

- fresh: a new instance of the candidate module (new parameter addresses; the older ones stay allocated)
  on new inputs;
- again: the same module and inputs as `fresh`, timed once more (the noise floor within a placement);
- rotated: the same module, but each call gets the next of `--param-copies` clones of its parameters and
  buffers (`torch.func.functional_call`), as the inputs get their copies.

If the trials of `fresh` spread within a process as much as processes differ, and `rotated` does not, the
parameters' placement is the cause and copying them per call removes it. What it found (H200, 2026-12-03;
benchmarks/verify/RESULTS.md): neither. `again` spread as much as `fresh` (8.5 %), while graphs captured
directly (`--mode captures`) agreed within 1 %: the graph method's number of input copies followed a
host-timed call, hence the share of inputs left in L2. The verifier now flushes L2 inside the graph.

`--mode captures` separates what a capture fixes: per trial, the candidate's calls are captured anew
(`--calls` calls per graph) and timed by device spans (median of 16 group means), on
- newsets: new input copies each capture (what the verifier does);
- samesets: the same input copies in every capture of the process (only the graph and its outputs are new);
- replayed: the process's first graph, replayed again (nothing new: the noise floor);
- rotated: new input copies and per-call clones of the parameters and buffers.

    python benchmarks/verify/placement_probe.py --procs 4 --trials 4 --tasks batchnorm_relu,rmsnorm,layernorm \
        --out placement.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("fresh", "again", "rotated")


class RotatingParams:
    """Calls `model` with the next of `copies` clones of its parameters and buffers on each call."""

    def __init__(self, model, copies: int):
        import torch

        state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        self.model, self.i = model, 0
        self.sets = [{k: v.detach().clone() for k, v in state.items()} for _ in range(copies)]
        self._call = torch.func.functional_call

    def __call__(self, *args):
        state = self.sets[self.i % len(self.sets)]
        self.i += 1
        return self._call(self.model, state, args)


def child(scale: int, names: list[str], trials: int, copies: int) -> dict:
    import torch

    from verify.device_trace import warm_up
    from verify.timing import time_callable

    sys.path.insert(0, str(Path(__file__).parent))
    from offset_probe import _candidate, sm_clock_mhz, timing_kwargs

    dev = torch.device("cuda")
    kw = timing_kwargs(dev)
    warm_up()
    out: dict = {"clock_mhz": sm_clock_mhz(), "tasks": {}}
    kept = []
    for name in names:
        rows = {v: [] for v in VARIANTS}
        calls = {v: [] for v in VARIANTS}
        methods = set()
        for _ in range(trials):
            model, args = _candidate(name, scale, dev)
            kept.append((model, args))
            with torch.no_grad():
                for variant, fn in (("fresh", model), ("again", model), ("rotated", RotatingParams(model, copies))):
                    t = time_callable(fn, args, **kw)
                    rows[variant].append(t.median_ms * 1e3)
                    calls[variant].append(t.runs)
                    methods.add(t.method + (f" ({t.fallback})" if t.fallback else ""))
        out["tasks"][name] = {**rows, "methods": sorted(methods), "calls_timed": calls,
                              "param_ptrs_mod_2mib": [p.data_ptr() % 2**21 for p in kept[-1][0].parameters()]}
    return out


def _spans_us(graph, n: int, replays: int = 2) -> float:
    import torch

    from verify.device_trace import DeviceTrace, call_spans_ms

    with DeviceTrace() as trace:
        for _ in range(replays):
            graph.replay()
        torch.cuda.synchronize()
    spans = call_spans_ms(trace.intervals_ns(), replays * n)
    group = -(-len(spans) // 16)
    return statistics.median(statistics.fmean(spans[i:i + group]) for i in range(0, len(spans), group)) * 1e3


def _capture(fn, sets: list, n: int):
    import torch

    fn(*sets[0])
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = [fn(*sets[i % len(sets)]) for i in range(n)]
    graph.replay()
    torch.cuda.synchronize()
    return graph, outs


CAPTURE_VARIANTS = ("newsets", "samesets", "replayed", "rotated")


def captures_child(scale: int, names: list[str], trials: int, copies: int, calls: int) -> dict:
    import torch

    from verify.device_trace import warm_up

    sys.path.insert(0, str(Path(__file__).parent))
    from offset_probe import _candidate, sm_clock_mhz

    dev = torch.device("cuda")
    warm_up()
    out: dict = {"clock_mhz": sm_clock_mhz(), "tasks": {}}
    for name in names:
        model, args = _candidate(name, scale, dev)
        clone = lambda: [[a.clone() if isinstance(a, torch.Tensor) else a for a in args] for _ in range(calls)]
        fixed = clone()
        rows = {v: [] for v in CAPTURE_VARIANTS}
        with torch.no_grad():
            first = _capture(model, fixed, calls)
            for _ in range(trials):
                for variant in CAPTURE_VARIANTS:
                    if variant == "replayed":
                        rows[variant].append(_spans_us(first[0], calls))
                        continue
                    fn = RotatingParams(model, copies) if variant == "rotated" else model
                    graph, outs = _capture(fn, fixed if variant == "samesets" else clone(), calls)
                    rows[variant].append(_spans_us(graph, calls))
                    del graph, outs
        out["tasks"][name] = rows
    return out


def spread(values: list[float]) -> float:
    return max(values) / min(values) - 1


def report(runs: list[dict], variants=VARIANTS) -> dict:
    """Per task and variant: the spread of trials within a process (max over processes) and of the
    processes' medians (max/min - 1)."""
    out = {}
    for name in runs[0]["tasks"]:
        row = {}
        for v in variants:
            per = [r["tasks"][name][v] for r in runs]
            row[v] = {"within_max": max(spread(p) for p in per), "across": spread([statistics.median(p) for p in per]),
                      "medians_us": [round(statistics.median(p), 4) for p in per]}
        out[name] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("timing", "captures"), default="timing")
    ap.add_argument("--calls", type=int, default=256, help="calls per graph (--mode captures)")
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--param-copies", type=int, default=64)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--tasks", default="batchnorm_relu,rmsnorm,layernorm")
    ap.add_argument("--out", default="placement_probe.json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = args.tasks.split(",")
    if args.child:
        if args.mode == "captures":
            res = captures_child(args.scale, names, args.trials, args.param_copies, args.calls)
        else:
            res = child(args.scale, names, args.trials, args.param_copies)
        print(json.dumps(res))
        return
    runs = []
    for p in range(args.procs):
        t0 = time.time()
        cmd = [sys.executable, __file__, "--child", "--scale", str(args.scale), "--tasks", args.tasks,
               "--trials", str(args.trials), "--param-copies", str(args.param_copies), "--mode", args.mode,
               "--calls", str(args.calls)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr[-3000:])
            raise SystemExit(f"probe process {p} failed with exit status {res.returncode}")
        runs.append({**json.loads(res.stdout.strip().splitlines()[-1]), "seconds": time.time() - t0})
        print(f"process {p} done in {runs[-1]['seconds']:.1f} s", flush=True)
        Path(args.out).write_text(json.dumps({"runs": runs}, indent=1))
    summary = report(runs, CAPTURE_VARIANTS if args.mode == "captures" else VARIANTS)
    Path(args.out).write_text(json.dumps({"args": vars(args), "runs": runs, "summary": summary}, indent=1))
    print(f"{'task':<16} {'variant':<8} {'within':>8} {'across':>8}  medians (us)")
    for name, row in summary.items():
        for v, s in row.items():
            print(f"{name:<16} {v:<8} {s['within_max']:8.2%} {s['across']:8.2%}  {s['medians_us']}")


if __name__ == "__main__":
    main()
