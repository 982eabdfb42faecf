"""SFT pairs from the teacher: lower every generated program, verify it, keep the accepted (prompt, response).

`python -m synth ... teacher.enabled=true` calls `export_sft` after the dataset is written. The one command
that reproduces the SFT parquet for every operator the teacher lowers (level 1, operators drawn uniformly
from the teacher's 78: about 5 programs each; sizes the CPU interpreter verifies in a few minutes; drop the
three sampler caps on a GPU):

    python -m synth level=1 n=390 teacher.enabled=true teacher.supported_only=true \
        sampler.max_dim=64 sampler.max_elements=32768 sampler.max_flops=2097152 out=runs/sft_l1

Outputs, next to the dataset of `python -m synth` (see synth.export):

    tasks/l<level>/_teacher_<id>.py   the teacher's program for task <id> (the leading "_" keeps task-folder
                                      readers such as bench's FolderSuite from taking it for a task)
    teacher_verdicts.jsonl            verdict cache: a rerun of the same command (overwrite=true) makes the
                                      same programs and verifies only those not verified yet
    sft_pairs.parquet                 accepted pairs: prompt (the RL rows' chat messages, synth.prompts),
                                      response (one or two sentences + the fenced program), task_id, hash,
                                      level, ops, split, and the verdict's backend, trials, max_abs_err,
                                      max_rel_err, kernel_launches, speedup_eager, speedup_compile
    sft_summary.json                  accepted / rejected / unsupported counts, overall and per operator

`rl.data.sft_messages(out/"sft_pairs.parquet", ...)` turns the parquet into veRL's SFT `messages` column.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

from synth.ir import Graph
from synth.prompts import PromptTemplate
from synth.teacher import Unsupported, lower, supported_ops
from verify import Verifier, VerifyConfig
from verify.task import Task

PAIRS = "sft_pairs.parquet"
SUMMARY = "sft_summary.json"
VERDICTS = "teacher_verdicts.jsonl"
# the name of every @triton.jit function of a program
_KERNEL = re.compile(r"@triton\.jit[^\n]*\n\s*def (\w+)")
COLUMNS = ("prompt", "response", "task_id", "hash", "level", "ops", "split", "backend", "trials",
           "max_abs_err", "max_rel_err", "kernel_launches", "speedup_eager", "speedup_compile")


def teacher_response(program: str, ops: Sequence[str]) -> str:
    """The completion a model should write for a teacher program: two sentences, then the fenced program.

    >>> text = teacher_response("@triton.jit\\ndef add_kernel(): pass\\n", ["relu", "add", "relu"])
    >>> print(text.split(". ")[0])
    This `ModelNew` implements the 3 operators of `Model` (relu, add) with 1 Triton kernel (`add_kernel`)
    >>> text.endswith("def add_kernel(): pass\\n```\\n")
    True
    """
    kernels = _KERNEL.findall(program)
    n, k = len(ops), len(kernels)
    names = ", ".join(f"`{name}`" for name in kernels[:6]) + (", ..." if k > 6 else "")
    return (f"This `ModelNew` implements the {n} operator{'s' if n != 1 else ''} of `Model` "
            f"({', '.join(dict.fromkeys(ops))}) with {k} Triton kernel{'s' if k != 1 else ''} ({names}). "
            "Grids and block sizes are computed from the input shapes at run time, so it works for any sizes."
            f"\n\n```python\n{program.rstrip()}\n```\n")


def teacher_path(out: Path, entry: dict) -> Path:
    """Where the teacher's program for a manifest entry goes (beside the task file)."""
    task = out / entry["path"]
    return task.with_name(f"_teacher_{task.stem}.py")


def supported_sampler_ops() -> list[str]:
    """The operators the teacher lowers, for `teacher.supported_only` (replaces sampler.ops)."""
    return sorted(supported_ops())


def _verify_config(cfg: dict) -> VerifyConfig:
    """The teacher's verifier: `teacher.verify` (verify's `verifier` group), else VerifyConfig's defaults."""
    settings = cfg.get("verify") or {}
    # run.py's OmegaConf.to_object already builds the structured node as a VerifyConfig
    return settings if isinstance(settings, VerifyConfig) else VerifyConfig.from_mapping(settings)


def lower_entries(out: Path, entries: list[dict]) -> list[tuple[dict, Task, object]]:
    """[(entry, task, program text or the Unsupported error)], writing each program beside its task."""
    items = []
    for entry in entries:
        path = out / entry["path"]
        task = Task.from_file(path)
        graph = Graph.from_dict(task.meta["graph"])
        try:
            program = lower(graph)
        except Unsupported as e:
            items.append((entry, task, e))
            continue
        teacher_path(out, entry).write_text(program)
        items.append((entry, task, program))
    return items


def pair_row(entry: dict, code: str, program: str, verdict, prompt: PromptTemplate) -> dict:
    """One SFT row: the RL rows' prompt for `code`, the teacher's response, and the verdict's facts."""
    return {"prompt": prompt.messages(code), "response": teacher_response(program, entry["ops"]),
            "task_id": entry["id"], "hash": entry["hash"], "level": entry["level"], "ops": list(entry["ops"]),
            "split": entry["split"], "backend": verdict.backend, "trials": verdict.trials,
            "max_abs_err": verdict.max_abs_err, "max_rel_err": verdict.max_rel_err,
            "kernel_launches": verdict.kernel_launches, "speedup_eager": verdict.speedup_eager,
            "speedup_compile": verdict.speedup_compile}


def export_sft(out: str | Path, entries: list[dict], cfg: dict, prompt: PromptTemplate | None = None) -> dict:
    """Lower, verify and export the teacher's programs for `entries` (manifest entries under `out`).

    `cfg` is the `teacher` node of conf/synth.yaml as a dict. Returns the summary (also in sft_summary.json).
    """
    out = Path(out)
    return write_pairs(out, lower_entries(out, entries), cfg, prompt or PromptTemplate())


def write_pairs(out: Path, items: list[tuple[dict, Task, object]], cfg: dict, prompt: PromptTemplate) -> dict:
    """Verify the programs of `items` (from `lower_entries`), write the accepted pairs and the summary."""
    import pandas as pd

    start = time.time()
    todo = [(task, program) for _, task, program in items if isinstance(program, str)]
    config = _verify_config(cfg)
    with Verifier(config, workers=cfg.get("workers") or None, cache_path=str(out / VERDICTS)) as verifier:
        verdicts = iter(verifier.verify_many(todo, progress=cfg.get("progress", True), desc="teacher verify",
                                             return_exceptions=True))
    rows, outcomes, rejections = [], [], []
    for entry, task, program in items:
        if not isinstance(program, str):
            outcomes.append((entry, "unsupported", program.op))
            continue
        verdict = next(verdicts)
        if isinstance(verdict, Exception):
            outcomes.append((entry, "task_error", None))
            rejections.append({"task_id": entry["id"], "error": str(verdict)[:300]})
        elif verdict.accepted:
            outcomes.append((entry, "accepted", None))
            rows.append(pair_row(entry, task.code, program, verdict, prompt))
        else:
            outcomes.append((entry, "rejected", None))
            rejections.append({"task_id": entry["id"], "stage": verdict.stage,
                               "error_class": verdict.error_class, "message": verdict.message[:300]})
    pd.DataFrame(rows, columns=list(COLUMNS)).to_parquet(out / PAIRS, index=False)
    summary = summarize(outcomes)
    summary.update(wall_s=round(time.time() - start, 1), parquet=str(out / PAIRS),
                   verify={"backend": verifier.backend, "trials": config.trials,
                           "shape_variants": config.shape_variants, "timing": config.timing},
                   rejections=rejections[:50])
    (out / SUMMARY).write_text(json.dumps(summary, indent=1))
    print(table(summary))
    return summary


def summarize(outcomes: list[tuple[dict, str, str | None]]) -> dict:
    """Counts overall and per operator (a program counts once under each operator it uses; an unsupported
    program also names the operator the teacher could not lower).

    >>> s = summarize([({"ops": ["relu", "add"]}, "accepted", None), ({"ops": ["mm"]}, "unsupported", "mm")])
    >>> s["programs"], s["accepted"], s["per_op"]["mm"]["unsupported"], s["unsupported_by"]
    (2, 1, 1, {'mm': 1})
    """
    kinds = ("accepted", "rejected", "unsupported", "task_error")
    summary = {"programs": len(outcomes), **{k: sum(o == k for _, o, _ in outcomes) for k in kinds}}
    per_op: dict[str, dict] = {}
    unsupported_by: dict[str, int] = {}
    for entry, outcome, op in outcomes:
        for name in dict.fromkeys(entry["ops"]):
            counts = per_op.setdefault(name, {"programs": 0, **{k: 0 for k in kinds}})
            counts["programs"] += 1
            counts[outcome] += 1
        if op is not None:
            unsupported_by[op] = unsupported_by.get(op, 0) + 1
    summary["per_op"] = dict(sorted(per_op.items()))
    summary["unsupported_by"] = dict(sorted(unsupported_by.items()))
    return summary


def table(summary: dict) -> str:
    """The console table: one line per operator, then the totals."""
    lines = [f"{'operator':24s} {'programs':>8s} {'accepted':>8s} {'rejected':>8s} {'unsupported':>11s}"]
    for op, c in summary["per_op"].items():
        lines.append(f"{op:24s} {c['programs']:8d} {c['accepted']:8d} {c['rejected'] + c['task_error']:8d} "
                     f"{c['unsupported']:11d}")
    lines.append(f"teacher SFT: {summary['accepted']} accepted, {summary['rejected']} rejected, "
                 f"{summary['unsupported']} unsupported, {summary['task_error']} task errors "
                 f"of {summary['programs']} programs")
    return "\n".join(lines)
