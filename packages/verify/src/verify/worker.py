"""What runs inside a worker process: the reference job (trusted) and the candidate job (untrusted).

The reference job runs the task (no candidate code) under each trial's seed, and under the timing seed
on a GPU, and saves the outputs, their float64 error floors and the buffers; it reports the file's
digest and the task's memory footprint. The candidate job runs the candidate's stages in a confined
process that never sees a reference output: compile (verify/stage_compile.py), the trials and the
no-op run that feed faithfulness and correctness (verify/stage_trials.py), then, when the judge says
so, timing (verify/stage_timed.py). Each stage writes what it measured (outputs, launches, ops, flags)
to a payload file in the job's private folder and reports it as an event; verify/judge.py, in the
verifier's process, compares with the references and decides the verdict.
"""
from __future__ import annotations

import copy
import hashlib
import os
from contextlib import nullcontext
from pathlib import Path

import torch
import torch._dynamo

from verify import launches
from verify.audit import TorchAudit
from verify.compare import error_floors, flatten, unstable_truths
from verify.config import VerifyConfig
from verify.inputs import load_module, make_inputs, seed_everything, to_device, zero_float_inputs
from verify.plan import record_trial, timing_seeds, trial_plan
from verify.reference_timing import time_baselines, time_eager

launches.install()


def fp32_truth() -> None:
    """Full fp32 everywhere: a tf32 reference would hide precision downgrades."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


fp32_truth()  # at import, before a kept worker's pristine snapshot: a job must not look like a flag change


def write_source(code: str, directory: str, stem: str) -> Path:
    path = Path(directory) / f"{stem}.py"
    path.write_text(code)
    return path


def _perturb_constant_parameters(model, seed: int) -> None:
    """Seeded noise on every parameter whose values are all equal (norm weights of 1, biases of 0): with
    those, a kernel that forgets `* weight` or `+ bias` would still be right. Parameters are visited in
    creation order, so a ModelNew that creates the same parameters gets the same values."""
    gen = torch.Generator().manual_seed(seed + 7919)
    with torch.no_grad():
        for p in model.parameters():
            if not p.is_floating_point() or p.numel() < 1:
                continue
            noise = torch.randn(p.shape, generator=gen)
            if p.numel() > 1 and bool((p == p.reshape(-1)[0]).all()):
                c = float(p.reshape(-1)[0])
                p.copy_(c * (1 + 0.1 * noise) if c else 0.01 * noise)


def build_reference(module, cfg: VerifyConfig, device):
    seed_everything(cfg.seed)
    init = module.get_init_inputs()
    seed_everything(cfg.seed)
    model = module.Model(*init)
    _perturb_constant_parameters(model, cfg.seed)
    return model.to(device), init


def buffers_of(model) -> dict:
    return {name: b.detach() for name, b in model.named_buffers()}


def nbytes(obj) -> int:
    """Bytes held by the tensors in `obj` (a tensor, or lists and tuples of them)."""
    return sum(t.numel() * t.element_size() for t in flatten(obj) if isinstance(t, torch.Tensor))


def reference_job(job: dict, gpu_lock=None) -> dict:
    """Run the task for every trial (and the timing inputs on a GPU); save outputs to job['out_path'].
    Raises on a broken task."""
    cfg = VerifyConfig(**job["config"])
    device = torch.device(job["device"])
    on_gpu = device.type == "cuda"
    fp32_truth()
    tmp = os.environ.get("TMPDIR") or "."
    with gpu_lock.shared() if gpu_lock else nullcontext():
        if on_gpu:
            torch.cuda.reset_peak_memory_stats(device)
        codes = [job["code"], *job["variants"]]
        modules = [load_module(write_source(c, tmp, f"task_{i}"), f"_drt_task_{os.getpid()}_{i}")
                   for i, c in enumerate(codes)]
        model, _ = build_reference(modules[0], cfg, device)
        twin = _float64_twin(model) if cfg.error_floor_factor > 0 else None
        outputs, sizes, variants_ok, floors, truths, ops = [], [], [], [], [], []
        before = {k: b.cpu().clone() for k, b in buffers_of(model).items()}
        plan = trial_plan(cfg, list(range(len(job["variants"]))), job["input_seed"])
        replayed = None
        for n, (mod_idx, seed) in enumerate(plan):
            if n == record_trial(cfg) and not mod_idx and job.get("replay_seed") is not None:
                replayed = _replay_reference(model, twin, modules[0], job["replay_seed"], device)
            # a variant that fails part-way must not leave its mark on the buffers (running statistics):
            # the candidate never runs a dropped variant
            saved = {k: b.clone() for k, b in buffers_of(model).items()} if mod_idx else {}
            try:
                inputs = make_inputs(modules[mod_idx], seed, device)
                rng = _rng_state(device)
                # the ops the task itself runs: the only allowed ops a candidate may run outside kernels
                audit = TorchAudit(poison_alloc=False) if not ops else None
                with torch.no_grad(), audit or nullcontext():
                    out = model(*inputs)
                if audit is not None:
                    ops = sorted(audit.op_names())
            except Exception:
                if mod_idx == 0:
                    raise
                with torch.no_grad():
                    for k, b in buffers_of(model).items():
                        b.copy_(saved[k])
                continue  # a variant the task itself cannot run is dropped
            if mod_idx == 0 and zero_float_inputs(inputs):
                raise ValueError(
                    "get_inputs() returned only zero-valued float tensors; tests need random data")
            if mod_idx:
                variants_ok.append(mod_idx - 1)
            floor, truth = _floors(twin, inputs, out, rng, device)
            floors.append(floor)
            truths.append(truth)
            outputs.append(_to_host(out))
            sizes.append(nbytes(inputs) + nbytes(out))
        buffers = {k: b.cpu() for k, b in buffers_of(model).items()}
        timed = None
        if on_gpu and cfg.timing:
            # what the timed calls must return: the model as the trials left it, the timed calls' inputs
            inputs = make_inputs(modules[0], timing_seeds(job["input_seed"])[1], device)
            rng = _rng_state(device)
            with torch.no_grad():
                out = model(*inputs)
            floor, truth = _floors(twin, inputs, out, rng, device)
            timed = {"output": _to_host(out), "floors": floor, "truths": truth}
        footprint = torch.cuda.max_memory_allocated(device) if on_gpu else (
            nbytes(list(model.parameters())) + nbytes(list(model.buffers())) + max(sizes))
        torch.save({"outputs": outputs, "buffers": buffers, "buffers_before": before, "floors": floors,
                    "truths": truths, "timed": timed, "replayed": replayed}, job["out_path"])
    with open(job["out_path"], "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    # the baselines the judge holds the candidate's worker to (see reference_timing.py); after the shared
    # hold above, since the measurements take the lock exclusively
    baselines = (_trusted_baselines(model, modules[0], job["input_seed"], cfg, device, gpu_lock)
                 if timed is not None else {})
    return {**baselines, "trials": cfg.trials, "variants_ok": variants_ok, "nbytes": sizes[0],
            "footprint": int(footprint), "digest": digest, "ops": ops,
            "device": torch.cuda.get_device_name(device) if on_gpu else "cpu"}


def _trusted_baselines(model, module, input_seed: int, cfg, device, lock) -> dict:
    """Eager and the configured torch.compile baselines, timed in this trusted process. A torch.compile
    that fails here leaves that baseline without a trusted time (the judge then drops the candidate's
    figure for it) rather than making the task "not run"; an eager failure is the task's own."""
    try:
        return time_baselines(model, module, input_seed, cfg, device, lock)
    except Exception as e:
        if not (cfg.compile_baseline or cfg.compile_max_autotune):
            raise
        why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
        eager = time_eager(model, module, input_seed, cfg, device, lock)
        return {"eager": eager, "compiled": None, "compiled_max": None, "baseline_error": why}


def _replay_reference(model, twin, module, seed: int, device) -> dict:
    """The reference for the replayed check's inputs (verify/replay.py), from the model as the recorded trial
    finds it; the buffers of the model and its twin are put back, so the trials see no extra call."""
    models = [m for m in (model, twin) if m is not None]
    saved = [{k: b.clone() for k, b in buffers_of(m).items()} for m in models]
    inputs = make_inputs(module, seed, device)
    rng = _rng_state(device)
    with torch.no_grad():
        out = model(*inputs)
    floor, truth = _floors(twin, inputs, out, rng, device)
    with torch.no_grad():
        for m, kept in zip(models, saved):
            for k, b in buffers_of(m).items():
                b.copy_(kept[k])
    return {"output": _to_host(out), "floors": floor, "truths": truth}


def _to_host(out):
    return to_device(out, "cpu") if not isinstance(out, torch.Tensor) else out.detach().cpu()


def _float64_twin(model):
    """A float64 copy of the reference model (None if it cannot be copied): its outputs measure the float32
    reference's own rounding error (compare.error_floors)."""
    try:
        return copy.deepcopy(model).double()
    except Exception:
        return None


def _rng_state(device) -> tuple:
    return torch.get_rng_state(), (torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _floors(twin, inputs, out, rng, device) -> tuple[list[float], list]:
    """compare.error_floors and compare.unstable_truths of one trial: the twin runs the same inputs in
    float64 from the same RNG state."""
    outs = flatten(out)
    none = ([0.0] * len(outs), [None] * len(outs))
    if twin is None or not any(isinstance(o, torch.Tensor) and o.dtype == torch.float32 for o in outs):
        return none
    torch.set_rng_state(rng[0])
    if rng[1] is not None:
        torch.cuda.set_rng_state(rng[1], device)
    wide = [x.double() if isinstance(x, torch.Tensor) and x.dtype == torch.float32 else x for x in inputs]
    try:
        with torch.no_grad():
            out64 = twin(*wide)
    except Exception:  # an op without a float64 kernel: the plain tolerances apply
        return none
    return error_floors(out, out64), unstable_truths(out, out64)


def build_candidate(new_cls, init, model, cfg: VerifyConfig, device):
    """ModelNew(*init) with the reference's weights when names and shapes match (else the same seed and
    the same perturbation)."""
    seed_everything(cfg.seed)
    new = new_cls(*init)
    ref_sd, new_sd = model.state_dict(), new.state_dict()
    if ref_sd.keys() == new_sd.keys() and all(ref_sd[k].shape == new_sd[k].shape for k in ref_sd):
        new.load_state_dict(ref_sd)
    else:
        _perturb_constant_parameters(new, cfg.seed)
    return new.to(device)


def candidate_job(job: dict, gpu_lock=None, channel=None) -> dict:
    """The candidate's stages, in this (confined) process; what they measured goes to payload files that
    verify/judge.py reads (see the module docstring). Returns what the worker itself saw go wrong
    (`self_check`), which decides only whether a kept worker may take another candidate."""
    # the stage modules import this one (Reject, settle, build_candidate)
    from verify.stage_compile import compile_stage
    from verify.stage_timed import timed_stage
    from verify.stage_trials import trials_stage

    cfg = VerifyConfig(**job["config"])
    device = torch.device(job["device"])
    fp32_truth()
    on_gpu = device.type == "cuda"
    private = os.environ.get("TMPDIR") or "."
    gpu = gpu_lock.shared if gpu_lock is not None else nullcontext
    report = {"phases": {"setup": job.get("setup_s", 0.0)}, "compiled": False, "error": None}
    loaded = compile_stage(job, cfg, device, private, gpu, report)
    if loaded is not None:
        trials_stage(job, cfg, device, loaded, gpu, report)
    recording = report.pop("recording", None)
    if recording is not None:
        save_payload(recording, private, "recording")
    save_payload(report, private, "trials")
    wants_timing = on_gpu and cfg.timing and report["error"] is None
    if channel is not None:
        channel.event("trials", wants_answer=wants_timing)
        if wants_timing and channel.control().get("go"):
            save_payload(timed_stage(job, cfg, device, loaded, gpu_lock, channel), private, "timed")
            channel.event("timed")
    error = report["error"] or {}
    return {"self_check": {"error_class": error.get("error_class")}}


def save_payload(payload: dict, private: str, name: str) -> None:
    """Write a stage's payload where the judge reads it (a fixed name in the job's private folder)."""
    tmp = os.path.join(private, f".{name}.pt")
    torch.save(payload, tmp)
    os.replace(tmp, os.path.join(private, f"{name}.pt"))


class Reject(Exception):
    def __init__(self, stage: str, error_class: str, message: str):
        super().__init__(message)
        self.stage, self.error_class = stage, error_class


def classify_runtime(e: BaseException) -> tuple[str, str, str]:
    text = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:400]
    low = text.lower()
    if "compilationerror" in low or type(e).__module__.startswith("triton.compiler"):
        return "compile", "triton_compile_error", text
    if "out of memory" in low or "can't allocate memory" in low or isinstance(e, MemoryError):
        return "correct", "out_of_memory", text
    return "correct", "runtime_error", text


def settle(on_gpu: bool) -> None:
    """Wait for this process's GPU work (all streams) before a shared hold of the lock ends."""
    if on_gpu:
        torch.cuda.synchronize()
