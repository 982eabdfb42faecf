"""Stage `compile`, in the candidate's worker: import the program from a file and build `ModelNew` with
the reference's weights. A failure is written to the report (`report["error"]`) for the judge."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from verify.inputs import load_module
from verify.integrity import snapshot
from verify.worker import Reject, build_candidate, build_reference, classify_runtime, settle, write_source


@dataclass
class Loaded:
    """What the later stages run: the task's modules (task, then shape variants), the reference model
    (for its weights and eager timing), ModelNew, and the watched functions before the candidate loaded."""

    modules: list
    model: torch.nn.Module
    init: list
    new_cls: type
    new: torch.nn.Module
    clean: dict


def compile_stage(job: dict, cfg, device, private: str, gpu, report: dict) -> Loaded | None:
    """Load everything (None, with report["error"] set, when the candidate does not load)."""
    started = time.perf_counter()
    on_gpu = device.type == "cuda"
    try:
        codes = [job["code"], *[job["variants"][i] for i in job["variants_ok"]]]
        modules = [
            load_module(write_source(c, private, f"task_{i}"), f"_drt_task_{os.getpid()}_{i}")
            for i, c in enumerate(codes)
        ]
        # every step that may put work on the GPU holds the lock shared (and waits for that work before it
        # lets go), so none of it runs beside another worker's timed calls: the candidate's import and
        # constructor are its code too
        with gpu():
            model, init = build_reference(modules[0], cfg, device)
            clean = snapshot()
            try:
                cand = load_module(
                    write_source(job["program"], private, "candidate"), f"_drt_candidate_{os.getpid()}"
                )
            except Exception as e:
                raise Reject(
                    "compile", "import_error", f"importing the program failed: {type(e).__name__}: {e}"[:400]
                )
            new_cls = getattr(cand, "ModelNew", None)
            if not isinstance(new_cls, type) or not issubclass(new_cls, torch.nn.Module):
                raise Reject("compile", "import_error", "ModelNew is not an nn.Module subclass")
            try:
                new = build_candidate(new_cls, init, model, cfg, device)
            except Exception as e:
                raise Reject(
                    "compile",
                    "init_error",
                    f"ModelNew(*get_init_inputs()) failed: {type(e).__name__}: {e}"[:400],
                )
            settle(on_gpu)
    except Reject as r:
        report["error"] = {"stage": r.stage, "error_class": r.error_class, "message": str(r)}
        return None
    except Exception as e:
        stage, cls, msg = classify_runtime(e)
        report["error"] = {"stage": stage, "error_class": cls, "message": msg}
        return None
    report["compiled"] = True
    report["subclasses_model"] = any(c.__name__ == "Model" for c in type(new).__mro__)
    report["phases"]["load"] = round(time.perf_counter() - started, 4)
    return Loaded(modules, model, init, new_cls, new, clean)
