"""What a fresh candidate process pays before its own work, step by step (GPU): CUDA context, Triton's
driver utilities (a gcc build of cuda_utils when the cache is empty), one small kernel's compile and
launch, and the profiler the audit runs. Each step timed in a fresh process with an empty or a warm
Triton cache.

    python benchmarks/verify/probe_process_costs.py --out probe.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r'''
import json, os, sys, time
t = {}
m = time.perf_counter()
import torch, triton, triton.language as tl
t["import"] = time.perf_counter() - m; m = time.perf_counter()
torch.zeros(1, device="cuda"); torch.cuda.synchronize()
t["cuda_context"] = time.perf_counter() - m; m = time.perf_counter()
triton.runtime.driver.active.utils
t["triton_utils"] = time.perf_counter() - m; m = time.perf_counter()

@triton.jit
def add(x, y, o, n, B: tl.constexpr):
    i = tl.program_id(0) * B + tl.arange(0, B)
    tl.store(o + i, tl.load(x + i, mask=i < n) + tl.load(y + i, mask=i < n), mask=i < n)

x = torch.randn(4096, device="cuda"); o = torch.empty_like(x)
add[(4,)](x, x, o, 4096, B=1024); torch.cuda.synchronize()
t["first_kernel"] = time.perf_counter() - m; m = time.perf_counter()
add[(4,)](x, x, o, 4096, B=512); torch.cuda.synchronize()
t["second_kernel"] = time.perf_counter() - m; m = time.perf_counter()
from torch.profiler import ProfilerActivity, profile
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
    add[(4,)](x, x, o, 4096, B=1024); torch.cuda.synchronize()
t["profiler"] = time.perf_counter() - m; m = time.perf_counter()
torch.mm(x.view(64, 64), x.view(64, 64)); torch.cuda.synchronize()
t["cublas"] = time.perf_counter() - m
print(json.dumps({k: round(v, 3) for k, v in t.items()}))
'''


def run(cache: str) -> dict:
    env = dict(os.environ, TRITON_CACHE_DIR=cache)
    script = os.path.join(tempfile.mkdtemp(prefix="probe_child_"), "child.py")  # @triton.jit needs a file
    with open(script, "w") as f:
        f.write(CHILD)
    out = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode:
        return {"error": out.stderr[-800:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    res = {"empty_cache": [], "warm_cache": []}
    warm = tempfile.mkdtemp(prefix="probe_warm_")
    for _ in range(args.repeats):
        res["empty_cache"].append(run(tempfile.mkdtemp(prefix="probe_empty_")))
        res["warm_cache"].append(run(warm))
    for k, rows in res.items():
        print(k)
        for r in rows:
            print("  " + ", ".join(f"{a} {b}" for a, b in r.items()))
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
