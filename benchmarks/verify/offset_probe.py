"""Where does the per-process timing offset of microsecond kernels come from? (issue 2, repeatability)

With call-by-call event timing (the verifier's "stream" method), a 2-7 us kernel timed in two separate
processes differed by 4-10 % median-to-median while its spread within a process was far smaller; the
answer this probe found (benchmarks/verify/RESULTS.md): the offset is in the per-launch path, and CUDA-graph
replays (`--mode protocols`, protocol graph; now the verifier's default method) agree to about 1 %. This
probe runs `--procs` fresh
processes one after another; each times every fixture (eager and candidate) with `verify.timing` under
several conditions, so that the candidate explanations can be told apart:

- base / again: the same inputs twice (within-process repeatability);
- moved: fresh copies of the inputs behind a pad of process-dependent size (other input addresses);
- ring: the last three outputs kept alive, so each call writes its output to another address;
- heavy: 200 ms of large matmuls right before the timing (a power-hungry neighbour, as in the pool);
- spin: a fixed number of SM clock cycles (pure clock; no memory);
and records the SM clock (two spins of different lengths) and nvidia-smi's clocks, temperature and power
before each process. Prints, per task and condition, the spread of medians across processes (max/min - 1).

    python benchmarks/verify/offset_probe.py --mode conditions --procs 6 --scale 4 --out offset_probe.json

`--mode protocols` keeps every call's time (not only the median) for a few small kernels and a fixed
2 us spin (no memory traffic), timed by alternative protocols, to see the per-call distribution and which
protocol gives medians that agree across processes:

- write / read: L2 flushed by writing (the verifier's default) or reading a 256 MiB buffer;
- none: no flush (L2 warm);
- write_gap: a fixed 20 us spin between the flush and the start event;
- write_jitter: a spin of random length (0-20 us) there instead;
- batch: 16 calls back to back between one pair of events (launch latency overlapped), each on the next of
  enough copies of the inputs to fill the flush buffer's size (so each call finds its inputs out of L2);
  one time per chunk (the chunk's time / 16);
- batch_warm: the same on one copy of the inputs (L2 warm);
- graph / graph_warm: as batch / batch_warm, but the calls (one per input copy, at least 16) are captured
  in a CUDA graph and replayed between the events (no per-kernel launch from the host);
- graph_write: the write protocol (flush, start event, call, end event, 16 times) captured in a CUDA graph,
  the events as graph nodes, the graph replayed until `--calls` calls are timed.
The spin kernel runs a fixed 4,000 SM cycles (about 2 us), the same in every process.

    python benchmarks/verify/offset_probe.py --mode protocols --procs 6 --scale 4 --out offset_protocols.json

`--mode graphstate` tells a per-capture state from a drifting one: per kernel, `--captures` CUDA graphs
(each on new input copies while the earlier ones stay allocated), each timed by events in `--sessions`
sessions 50 ms apart, plus the kernels' own device time from the profiler; `--neighbours 0,7` alternates
0 and 7 idle CUDA processes (2 GiB each) alive beside the probe process, as in a worker pool. It found
that a graph's per-call time takes one of two values per capture, set by memory placement, while the
kernel's own time does not change (hence the verifier's device spans):

    python benchmarks/verify/offset_probe.py --mode graphstate --procs 4 --neighbours 0,7 --captures 6 \
        --sessions 5 --tasks rmsnorm,layernorm,log_softmax,swish_residual --out graphstate.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONDITIONS = ("base", "again", "moved", "ring", "heavy")
SMI_FIELDS = "clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_event_reasons.active"


def smi() -> str:
    try:
        return subprocess.run(["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"nvidia-smi failed: {e}"


def child(proc: int, scale: int, names: list[str]) -> dict:
    import torch

    from verify.candidate import extract_program
    from verify.fixtures import fixture_candidate, fixture_task
    from verify.inputs import load_module, make_inputs, scale_sizes, seed_everything
    from verify.timing import time_callable

    dev = torch.device("cuda")
    kw = timing_kwargs(dev)
    tmp = Path(tempfile.mkdtemp(prefix="offset_probe_"))
    big = torch.randn(8192, 8192, device=dev)
    out: dict = {"proc": proc, "pid": os.getpid(), "tasks": {}}

    def timed(fn, args) -> dict:
        t = time_callable(fn, args, **kw)
        return {"us": t.median_ms * 1e3, "iqr_us": t.iqr_ms * 1e3}

    spin_cycles = 10_000
    out["spin"] = timed(lambda: torch.cuda._sleep(spin_cycles), [])
    out["clock_mhz"] = sm_clock_mhz()
    for name in names:
        task = fixture_task(name)
        (tmp / f"t_{name}.py").write_text(scale_sizes(task.code, scale))
        (tmp / f"c_{name}.py").write_text(extract_program(fixture_candidate(name)))
        tm = load_module(tmp / f"t_{name}.py", f"t_{name}")
        cm = load_module(tmp / f"c_{name}.py", f"c_{name}")
        seed_everything(0)
        model = tm.Model(*tm.get_init_inputs()).to(dev)
        seed_everything(0)
        new = cm.ModelNew(*tm.get_init_inputs()).to(dev)
        inputs = make_inputs(tm, 0, dev)
        row: dict = {"input_ptrs": [x.data_ptr() % 2**21 for x in inputs if isinstance(x, torch.Tensor)]}
        for cond in CONDITIONS:
            args, pad = inputs, None
            if cond == "moved":
                pad = torch.empty((proc * 7919 + len(name) * 104_729) % (32 * 2**20) + 4096, dtype=torch.uint8,
                                  device=dev)
                args = make_inputs(tm, 0, dev)
            for label, mod in (("eager", model), ("cand", new)):
                fn = mod
                if cond == "ring":
                    kept: list = []

                    def fn(*a, _m=mod, _kept=kept):
                        y = _m(*a)
                        _kept.append(y)
                        del _kept[:-3]
                        return y
                if cond == "heavy":
                    for _ in range(10):
                        big @ big
                with torch.no_grad():
                    row[f"{label}_{cond}"] = timed(fn, args)
            del pad
        out["tasks"][name] = row
    out["spin_end"] = timed(lambda: torch.cuda._sleep(spin_cycles), [])
    out["clock_mhz_end"] = sm_clock_mhz()
    return out


def sm_clock_mhz() -> float:
    """SM clock from two spins of different lengths (their fixed launch and event overhead cancels)."""
    import torch

    ms = []
    for cycles in (200_000, 2_000_000):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(100_000)
        a.record()
        torch.cuda._sleep(cycles)
        b.record()
        torch.cuda.synchronize()
        ms.append(a.elapsed_time(b))
    return 1_800_000 / (ms[1] - ms[0]) / 1e3


PROTOCOLS = ("write", "read", "none", "write_gap", "write_jitter", "batch", "batch_warm", "graph", "graph_warm",
             "graph_write")
PROTOCOL_TASKS = ("layernorm", "rmsnorm", "relu_scale_bias", "softmax")


def cpu_groups() -> list[list[int]]:
    """The allowed CPUs split by NUMA node (when there are several), else into two halves."""
    allowed = sorted(os.sched_getaffinity(0))
    nodes = []
    for node in sorted(Path("/sys/devices/system/node").glob("node[0-9]*")):
        cpus = set()
        for part in (node / "cpulist").read_text().strip().split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
        if cpus & set(allowed):
            nodes.append(sorted(cpus & set(allowed)))
    if len(nodes) >= 2:
        return nodes
    half = len(allowed) // 2
    return [allowed[:half], allowed[half:]]


def pin(proc: int) -> list[int]:
    groups = cpu_groups()
    cpus = groups[proc % len(groups)]
    os.sched_setaffinity(0, cpus)
    return cpus


def protocol_child(proc: int, scale: int, names: list[str], calls: int, protocols: list[str]) -> dict:
    import random

    import torch

    from verify.config import VerifyConfig
    from verify.timing import spin_cycles_per_ms

    dev = torch.device("cuda")
    flush = torch.empty(VerifyConfig().l2_flush_bytes // 4, dtype=torch.float32, device=dev)
    per_us = spin_cycles_per_ms() / 1e3
    rng = random.Random(proc)
    fns = {"spin2us": (lambda: torch.cuda._sleep(4000), [])}
    for name in names:
        model, args = _candidate(name, scale, dev)
        fns[name] = (model, args)
    out: dict = {"proc": proc, "clock_mhz": sm_clock_mhz(), "times_us": {}}
    chunk = 16
    with torch.no_grad():
        for name, (fn, args) in fns.items():
            for _ in range(3):
                fn(*args)
            for proto in protocols:
                times: list[float] = []
                if proto == "graph_write":
                    out["times_us"][f"{name}/{proto}"] = _graph_flush_times(fn, args, calls, chunk, flush)
                    continue
                if proto.startswith(("batch", "graph")):
                    times = _batch_times(fn, args, calls, chunk, proto in ("batch", "graph"), flush.numel() * 4,
                                         per_us, graph=proto.startswith("graph"))
                    out["times_us"][f"{name}/{proto}"] = times
                    continue
                while len(times) < calls:
                    starts = [torch.cuda.Event(enable_timing=True) for _ in range(chunk)]
                    ends = [torch.cuda.Event(enable_timing=True) for _ in range(chunk)]
                    torch.cuda.synchronize()
                    torch.cuda._sleep(int(3000 * per_us))  # 3 ms: the CPU enqueues the chunk well ahead
                    for i in range(chunk):
                        if proto.startswith("write"):
                            flush.fill_(i & 0xFF)
                        elif proto == "read":
                            flush.sum()
                        if proto == "write_gap":
                            torch.cuda._sleep(int(20 * per_us))
                        elif proto == "write_jitter":
                            torch.cuda._sleep(int(rng.uniform(0, 20) * per_us))
                        starts[i].record()
                        fn(*args)
                        ends[i].record()
                    torch.cuda.synchronize()
                    times += [a.elapsed_time(b) * 1e3 for a, b in zip(starts, ends)]
                out["times_us"][f"{name}/{proto}"] = times
    out["clock_mhz_end"] = sm_clock_mhz()
    return out


def graphstate_child(proc: int, scale: int, names: list[str], captures: int, sessions: int) -> dict:
    """Per kernel, `captures` CUDA graphs (each on fresh input copies, the earlier ones kept alive so that
    addresses differ), each timed in `sessions` sessions 50 ms apart; plus the kernels' own device time
    from the profiler (CUPTI), to tell a per-capture state from a drifting one, and kernel time from the
    gaps between a graph's kernels."""
    import torch

    from verify.config import VerifyConfig
    from verify.timing import spin_cycles_per_ms

    dev = torch.device("cuda")
    cold = VerifyConfig().l2_flush_bytes
    per_us = spin_cycles_per_ms() / 1e3
    out: dict = {"proc": proc, "clock_mhz": sm_clock_mhz(), "kernels": {}}
    with torch.no_grad():
        for name in names:
            fn, args = _candidate(name, scale, dev)
            for _ in range(3):
                fn(*args)
            kept, rows = [], []
            for _ in range(captures):
                g, sets, outs, n = _capture_rotated(fn, args, cold)
                kept.append((sets, outs))
                row = {"n": n, "in_ptr_mod_2m": sets[0][0].data_ptr() % 2**21,
                       "out_ptr_mod_2m": _first_tensor(outs[0]).data_ptr() % 2**21, "sessions_us": []}
                for _ in range(sessions):
                    time.sleep(0.05)
                    row["sessions_us"].append(statistics.median(_replay_times(g, n, 8, per_us)))
                try:
                    row["kernel_us"] = _profiled_kernel_us(g, n)
                except Exception as e:  # noqa: BLE001 - a probe: keep the timings without the profile
                    row["kernel_us"], row["profile_error"] = float("nan"), str(e)[:200]
                rows.append(row)
                del g
            out["kernels"][name] = rows
    out["clock_mhz_end"] = sm_clock_mhz()
    return out


def _first_tensor(x):
    import torch

    return x if isinstance(x, torch.Tensor) else _first_tensor(x[0])


def _capture_rotated(fn, args, cold_bytes: int):
    """A CUDA graph of max(16, copies) calls, call i on input copy i mod copies (fresh clones, enough
    that `cold_bytes` are read between two uses of one copy, at most 256). Returns (graph, copies,
    outputs, calls)."""
    import torch

    size = sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))
    copies = min(256, -(-cold_bytes // max(size, 1)))
    sets = [[a.clone() if isinstance(a, torch.Tensor) else a for a in args] for _ in range(copies)]
    n = max(16, copies)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn(*sets[0])
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        outs = [fn(*sets[k % copies]) for k in range(n)]
    return g, sets, outs, n


def _replay_times(g, n: int, replays: int, per_us: float) -> list[float]:
    """Per-call us of `replays` replays of `g` (n calls each), behind a 3 ms spin."""
    import torch

    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(replays)]
    g.replay()
    torch.cuda.synchronize()
    torch.cuda._sleep(int(3000 * per_us))
    for a, b in ev:
        a.record()
        g.replay()
        b.record()
    torch.cuda.synchronize()
    return [a.elapsed_time(b) * 1e3 / n for a, b in ev]


def _profiled_kernel_us(g, n: int) -> float:
    """Mean device time (us) of the kernels one call of `g` runs, from the profiler (CUPTI), over 4 replays."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    g.replay()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(4):
            g.replay()
        torch.cuda.synchronize()
    from torch.autograd import DeviceType

    kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    return sum(e.device_time_total for e in kernels) / (4 * n) if kernels else float("nan")


def graphstate_report(runs: list[dict]) -> dict:
    summary: dict = {}
    for name in runs[0]["kernels"]:
        print(f"{name}: per process (neighbour contexts), per capture: median of sessions [min-max] / kernel us")
        for r in runs:
            caps = r["kernels"][name]
            cells = [f"{statistics.median(c['sessions_us']):.3f}[{min(c['sessions_us']):.2f}-"
                     f"{max(c['sessions_us']):.2f}]/{c['kernel_us']:.3f}" for c in caps]
            print(f"  proc {r['proc']} ({r['neighbours']}): " + " ".join(cells))
        meds = [statistics.median(c["sessions_us"]) for r in runs for c in r["kernels"][name]]
        kern = [c["kernel_us"] for r in runs for c in r["kernels"][name]]
        within = statistics.median(max(c["sessions_us"]) / min(c["sessions_us"]) - 1
                                   for r in runs for c in r["kernels"][name])
        summary[name] = {"capture_spread": spread(meds), "kernel_spread": spread(kern),
                         "session_spread_median": within}
        print(f"  spread over captures {100 * spread(meds):.1f}%, of kernel time {100 * spread(kern):.1f}%, "
              f"within a capture over sessions (median) {100 * within:.2f}%")
    return summary


def neighbours(k: int) -> list:
    """`k` idle processes, each holding a CUDA context and 2 GiB of device memory (as a worker pool's)."""
    code = ("import torch, time; x = torch.empty(2**29, device='cuda'); torch.cuda.synchronize(); "
            "print('ready', flush=True); time.sleep(3600)")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(k)]
    for p in procs:
        p.stdout.readline()
    return procs


def _graph_flush_times(fn, args, calls: int, chunk: int, flush) -> list[float]:
    """Per-call times of `chunk` (flush, start event, call, end event) captured in one CUDA graph."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(*args)
    torch.cuda.current_stream().wait_stream(side)
    starts = [torch.cuda.Event(enable_timing=True, external=True) for _ in range(chunk)]
    ends = [torch.cuda.Event(enable_timing=True, external=True) for _ in range(chunk)]
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(chunk):
            flush.fill_(i & 0xFF)
            starts[i].record()
            fn(*args)
            ends[i].record()
    times: list[float] = []
    while len(times) < calls:
        g.replay()
        torch.cuda.synchronize()
        times += [a.elapsed_time(b) * 1e3 for a, b in zip(starts, ends)]
    return times


def _batch_times(fn, args, calls: int, chunk: int, rotate: bool, cold_bytes: int, per_us: float,
                 graph: bool = False) -> list[float]:
    """Per-call times from chunks of `chunk` back-to-back calls between one pair of events (calls // chunk
    values); with `rotate`, each call takes the next of enough input copies to exceed `cold_bytes`. With
    `graph`, one chunk (max(chunk, copies) calls) is captured in a CUDA graph and replayed."""
    import torch

    size = sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))
    copies = min(256, -(-cold_bytes // size)) if rotate and size else 1
    sets = [args] + [[a.clone() if isinstance(a, torch.Tensor) else a for a in args] for _ in range(copies - 1)]
    g = None
    if graph:
        chunk = max(chunk, copies)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for k in range(3):
                fn(*sets[k % len(sets)])
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for k in range(chunk):
                fn(*sets[k % len(sets)])
        n = max(4, calls // chunk)
    else:
        n = calls // chunk
    times, k = [], 0
    while len(times) < n:
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        torch.cuda._sleep(int(3000 * per_us))
        a.record()
        if g is not None:
            g.replay()
        else:
            for _ in range(chunk):
                fn(*sets[k % len(sets)])
                k += 1
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / chunk)
    return times


def timing_kwargs(dev) -> dict:
    """`time_callable`'s keyword arguments as the verifier's default config sets them (flush buffer on `dev`)."""
    import torch

    from verify.config import VerifyConfig

    cfg = VerifyConfig()
    flush = torch.empty(cfg.l2_flush_bytes // 4, dtype=torch.float32, device=dev)
    return dict(warmup=cfg.warmup, min_reps=cfg.min_reps, max_reps=cfg.max_reps, budget_ms=cfg.budget_ms,
                flush=flush, flush_mode=cfg.l2_flush)


def _candidate(name: str, scale: int, dev):
    """The fixture's correct candidate module (task sizes x `scale`) and its inputs, on `dev`."""
    from verify.candidate import extract_program
    from verify.fixtures import fixture_candidate, fixture_task
    from verify.inputs import load_module, make_inputs, scale_sizes, seed_everything

    tmp = Path(tempfile.mkdtemp(prefix="offset_probe_"))
    (tmp / f"t_{name}.py").write_text(scale_sizes(fixture_task(name).code, scale))
    (tmp / f"c_{name}.py").write_text(extract_program(fixture_candidate(name)))
    tm = load_module(tmp / f"t_{name}.py", f"t_{name}")
    cm = load_module(tmp / f"c_{name}.py", f"c_{name}")
    seed_everything(0)
    return cm.ModelNew(*tm.get_init_inputs()).to(dev), make_inputs(tm, 0, dev)


def iqm(values: list[float]) -> float:
    """Mean of the middle half (interquartile mean)."""
    v = sorted(values)
    q = len(v) // 4
    return statistics.fmean(v[q: len(v) - q])


def protocol_report(runs: list[dict]) -> dict:
    keys = list(runs[0]["times_us"])
    summary: dict = {}
    print(f"{'kernel/protocol':30s} {'median':>7s} {'spread':>7s} | {'mean':>7s} {'spread':>7s} | {'IQM':>7s} "
          f"{'spread':>7s} | {'IQR':>5s} | medians per process (us)")
    for key in keys:
        per = [r["times_us"][key] for r in runs]
        med = [statistics.median(t) for t in per]
        mean = [statistics.fmean(t) for t in per]
        mid = [iqm(t) for t in per]
        iqr = statistics.median(q[2] - q[0] for q in (statistics.quantiles(t, n=4) for t in per))
        summary[key] = {"medians_us": med, "means_us": mean, "iqms_us": mid, "spread_median": spread(med),
                        "spread_mean": spread(mean), "spread_iqm": spread(mid), "iqr_us": iqr}
        print(f"{key:30s} {statistics.median(med):7.2f} {100 * spread(med):6.2f}% | {statistics.median(mean):7.2f} "
              f"{100 * spread(mean):6.2f}% | {statistics.median(mid):7.2f} {100 * spread(mid):6.2f}% | {iqr:5.2f} | "
              + " ".join(f"{m:.2f}" for m in med))
    print("CPUs per process: " + "; ".join(f"{r['cpus'][0]}-{r['cpus'][-1]}" for r in runs))
    print("clocks (MHz) per process, start/end: " + ", ".join(f"{r['clock_mhz']:.0f}/{r['clock_mhz_end']:.0f}"
                                                            for r in runs))
    return summary


def spread(values: list[float]) -> float:
    return max(values) / min(values) - 1 if values and min(values) > 0 else float("nan")


def report(runs: list[dict]) -> dict:
    names = list(runs[0]["tasks"])
    summary: dict = {"per_task": {}}
    print(f"{'task':18s} {'fn':5s} " + " ".join(f"{c:>8s}" for c in CONDITIONS) + "   across-proc spread of medians")
    for name in names:
        summary["per_task"][name] = {}
        for label in ("eager", "cand"):
            cells = []
            for cond in CONDITIONS:
                med = [r["tasks"][name][f"{label}_{cond}"]["us"] for r in runs]
                summary["per_task"][name][f"{label}_{cond}"] = {"medians_us": med, "spread": spread(med)}
                cells.append(f"{100 * spread(med):7.2f}%")
            base = statistics.median(r["tasks"][name][f"{label}_base"]["us"] for r in runs)
            within = statistics.median(abs(r["tasks"][name][f"{label}_again"]["us"] /
                                           r["tasks"][name][f"{label}_base"]["us"] - 1) for r in runs)
            summary["per_task"][name][f"{label}_within"] = within
            print(f"{name:18s} {label:5s} " + " ".join(cells) + f"   ({base:.2f} us; base->again within a "
                  f"process {100 * within:.2f}%)")
    print("\nper process: SM clock at start/end (MHz), spin of 10k cycles at start/end (us), nvidia-smi before")
    for r in runs:
        print(f"  proc {r['proc']}: clock {r['clock_mhz']:.0f}/{r['clock_mhz_end']:.0f}; spin {r['spin']['us']:.3f}/"
              f"{r['spin_end']['us']:.3f} us; smi {r['smi']}")
    print("\ncandidate 'base' medians per process (us)")
    for name in names:
        print(f"  {name:18s} " + "  ".join(f"{r['tasks'][name]['cand_base']['us']:.2f}" for r in runs))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("conditions", "protocols", "graphstate"), default="conditions")
    ap.add_argument("--captures", type=int, default=8, help="graphs per kernel (--mode graphstate)")
    ap.add_argument("--sessions", type=int, default=6, help="timings per graph (--mode graphstate)")
    ap.add_argument("--neighbours", default="0", help="comma-separated idle CUDA processes alive beside each "
                    "probe process, cycled over the processes (--mode graphstate)")
    ap.add_argument("--calls", type=int, default=512, help="timed calls per kernel and protocol (--mode protocols)")
    ap.add_argument("--procs", type=int, default=6)
    ap.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated subset (--mode protocols)")
    ap.add_argument("--affinity", choices=("none", "alternate"), default="none",
                    help="alternate: even processes pinned to the first CPU group (NUMA node, else half of the "
                         "allowed CPUs), odd ones to the second, before the CUDA context is made")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--tasks", default="", help="comma-separated fixture names (default: every fixture)")
    ap.add_argument("--out", default="offset_probe.json")
    ap.add_argument("--child", type=int, default=-1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    from verify.fixtures import fixture_names

    default = PROTOCOL_TASKS if args.mode in ("protocols", "graphstate") else fixture_names()
    names = args.tasks.split(",") if args.tasks else list(default)
    if args.child >= 0:
        cpus = pin(args.child) if args.affinity == "alternate" else sorted(os.sched_getaffinity(0))
        if args.mode == "graphstate":
            print(json.dumps(graphstate_child(args.child, args.scale, names, args.captures, args.sessions)))
        elif args.mode == "protocols":
            res = protocol_child(args.child, args.scale, names, args.calls, args.protocols.split(","))
            print(json.dumps({**res, "cpus": cpus}))
        else:
            print(json.dumps(child(args.child, args.scale, names)))
        return
    runs = []
    for p in range(args.procs):
        before = smi()
        t0 = time.time()
        cmd = [sys.executable, __file__, "--child", str(p), "--scale", str(args.scale), "--tasks", ",".join(names),
               "--mode", args.mode, "--calls", str(args.calls), "--protocols", args.protocols,
               "--affinity", args.affinity, "--captures", str(args.captures), "--sessions", str(args.sessions)]
        k = int(args.neighbours.split(",")[p % len(args.neighbours.split(","))])
        idle = neighbours(k)
        res = subprocess.run(cmd, capture_output=True, text=True)
        for q in idle:
            q.kill()
        if res.returncode != 0:
            print(res.stderr[-3000:])
            raise SystemExit(f"probe process {p} failed with exit status {res.returncode}")
        run = json.loads(res.stdout.strip().splitlines()[-1])
        run["smi"], run["seconds"], run["neighbours"] = before, time.time() - t0, k
        runs.append(run)
        print(f"process {p} done in {run['seconds']:.1f} s", flush=True)
        Path(args.out).write_text(json.dumps({"runs": runs}, indent=1))
    summary = {"protocols": protocol_report, "graphstate": graphstate_report}.get(args.mode, report)(runs)
    Path(args.out).write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
