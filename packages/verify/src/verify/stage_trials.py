"""The trials, in the candidate's worker: what stages `faithful` and `correct` are decided on.

Each trial runs ModelNew on fresh seeded inputs under the launch tracker and the torch audit (fresh
allocations poisoned and guarded) and records its output (a host copy) with what was measured around
it: kernel launches and their errors, torch ops outside kernels, guard-band overruns, the streams used,
the output's type and whether it aliases an input or the previous call's output, whether an input
changed, and whether a watched function changed. The forward of trial `plan.record_trial` is also
recorded for the replayed check (verify/record.py, report["recording"]). Then the no-op run: every launch
skipped and what it would have written poisoned; its output goes to the judge, which requires it to be
wrong. Nothing here decides: the judge compares with the references (verify/judge.py).
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch

from verify import launches
from verify.audit import TorchAudit, allowed_for, foreign_tensors
from verify.compare import flatten
from verify.config import FREE_TORCH_OPS
from verify.inputs import make_inputs
from verify.integrity import changed, snapshot
from verify.launches import TRACKER
from verify.plan import record_trial, trial_plan
from verify.record import Recorder
from verify.worker import buffers_of, build_candidate, classify_runtime, settle


def to_report(out):
    """A host copy of an output as the payload may hold it: plain tensors, numbers, strings, None, in lists
    and tuples (anything else as its repr, which matches no reference)."""
    if isinstance(out, torch.Tensor):
        # the type first: any method of a subclass may run its code (the judge rejects it by rec["subclass"])
        if type(out) not in (torch.Tensor, torch.nn.Parameter):
            return f"<{type(out).__name__}>"
        return out.detach().cpu().clone()
    if isinstance(out, (list, tuple)):
        return (
            type(out)(to_report(o) for o in out)
            if type(out) in (list, tuple)
            else [to_report(o) for o in out]
        )
    if out is None or isinstance(out, (bool, int, float, str)):
        return out
    return repr(out)[:200]


def _measure(
    rec: dict, audit: TorchAudit, allowed: set, inputs, originals, out, prev, loaded, on_gpu: bool
) -> None:
    rec["launches"] = len(TRACKER.launches)
    rec["kernel_errors"] = list(TRACKER.errors)[:4]
    rec["torch_ops"], rec["banned_ops"] = audit.compute_ops(set(FREE_TORCH_OPS), allowed)
    rec["overruns"] = audit.overruns()
    current = torch.cuda.current_stream().cuda_stream if on_gpu else None
    rec["side_stream"] = bool(on_gpu and any(launch.stream != current for launch in TRACKER.launches))
    outs = flatten(out)
    rec["subclass"] = "; ".join(foreign_tensors(out, loaded.new))
    in_ptrs = {t.untyped_storage().data_ptr() for t in flatten(inputs) if isinstance(t, torch.Tensor)}
    rec["aliases_input"] = any(
        isinstance(o, torch.Tensor) and o.numel() and o.untyped_storage().data_ptr() in in_ptrs for o in outs
    )
    rec["mutated"] = any(
        isinstance(a, torch.Tensor) and not launches.same(a, b) for a, b in zip(inputs, originals)
    )
    rec["cached"] = (
        any(isinstance(o, torch.Tensor) and o is p for p in flatten(prev) for o in outs)
        if prev is not None
        else False
    )
    rec["patched"] = changed(loaded.clean, snapshot())[:3]
    rec["out"] = to_report(out)


def trials_stage(job: dict, cfg, device, loaded, gpu, report: dict) -> None:
    """Run every trial, then the no-op run; fill report["trials"], ["noop"], ["buffers"], ["patched"]."""
    on_gpu = device.type == "cuda"
    mark = time.perf_counter()
    report["trials"] = recs = []
    kept = []  # every output stays alive: a later call cannot reuse an earlier output's memory
    prev = None
    allowed = allowed_for(cfg.allowed_torch_ops, job["ref_ops"])
    for n, (mod_idx, seed) in enumerate(trial_plan(cfg, job["variants_ok"], job["input_seed"])):
        rec = {}
        recs.append(rec)
        with gpu():
            inputs = make_inputs(loaded.modules[mod_idx], seed, device)
            originals = [t.clone() if isinstance(t, torch.Tensor) else t for t in inputs]
            TRACKER.reset("count")
            audit = TorchAudit(poison_alloc=True)
            recorder = Recorder(inputs, loaded.new) if n == record_trial(cfg) and not mod_idx else None
            audit.recorder = TRACKER.recorder = recorder
            try:
                with torch.no_grad(), audit:
                    out = loaded.new(*inputs)
                    settle(on_gpu)
            except Exception as e:
                stage, cls, msg = classify_runtime(e)
                if mod_idx and stage == "correct" and not TRACKER.errors:
                    stage, cls, msg = (
                        "correct",
                        "shape_specialized",
                        f"fails when the input sizes change: {msg}",
                    )
                rec["error"] = {"stage": stage, "error_class": cls, "message": msg}
                return
            finally:
                TRACKER.mode = "off"
                audit.recorder = TRACKER.recorder = None
            _measure(rec, audit, allowed, inputs, originals, out, prev, loaded, on_gpu)
            if recorder is not None:
                report["recording"] = recorder.finish(out)
        kept.append(out)
        prev = out
    report["phases"]["trials"] = round(time.perf_counter() - mark, 4)
    mark = time.perf_counter()
    report["noop"] = _noop_output(
        lambda: build_candidate(loaded.new_cls, loaded.init, loaded.model, cfg, device),
        loaded.modules[0],
        job["input_seed"],
        device,
        on_gpu,
        gpu,
    )
    report["phases"]["noop"] = round(time.perf_counter() - mark, 4)
    report["buffers"] = {name: b.cpu().clone() for name, b in buffers_of(loaded.new).items()}
    report["patched"] = changed(loaded.clean, snapshot())[:3]


def _noop_output(build, module, input_seed: int, device, on_gpu: bool, gpu=nullcontext):
    """The output of trial 0's inputs with every launch skipped and what it would have written poisoned (a
    host copy), or None when the forward breaks without its kernels (it depends on them).

    Each run gets a fresh ModelNew, so state left by earlier calls (a cached output) cannot stand in
    for the kernels.
    """
    try:
        with gpu():
            inputs = make_inputs(module, input_seed, device)
            TRACKER.reset("detect")
            with torch.no_grad(), TorchAudit(poison_alloc=True):
                build()(*inputs)
            inputs = make_inputs(module, input_seed, device)
            fresh = build()
            TRACKER.reset("noop")
            with torch.no_grad(), TorchAudit(poison_alloc=True):
                out = fresh(*inputs)
                settle(on_gpu)
            return to_report(out)
    except Exception:
        return None
    finally:
        TRACKER.mode = "off"
