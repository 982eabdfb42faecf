"""The teacher as a generator: synth's rule-based Triton lowering, no model (`generator=teacher`).

    python -m search task=fixtures/softmax strategy=best_of_n generator=teacher
    python -m bench suite=fixtures strategy=best_of_n strategy.n=1 generator=teacher

For each prompt the task's code is read back from the first user message (the reference program's
fenced block, as `synth.prompts.PromptTemplate` writes it), traced into the operator IR by the search
frontend, and lowered by `synth.teacher.lower`. When the traced graph prints back to the task's own code
(synthetic programs), the teacher's program is the answer as it is. Otherwise (any other Model) its
`ModelNew` would have the graph's constructor and weight names, so it is wrapped the way fragment
assemblies are (`search.emit`): a `ModelNew` with the task's `__init__` that builds the teacher's module
and points its weights at the task's own. A program with ATen calls the frontend keeps opaque (an LSTM, a
loss without a synth operator) or operators the teacher does not lower becomes a hybrid (`teacher_assembly`):
the runs between them are lowered as fragments, they stay PyTorch, and the pieces are assembled as the
fragment search's are; `is_hybrid` tells a search to verify such a program as it verifies assemblies. The
completion is the same shape a model writes: one or two sentences and one fenced python block
(`synth.sft.teacher_response`).

The teacher is deterministic. Asked for n completions, it gives up to n distinct ones: the default
tiling first, then the other tile caps of `synth.teacher.tiling.SWEEP`. Where a cap does not bind on a
task's shapes, two variants are the same program and only one is kept. `best_of_n` with n > 1 on a GPU
keeps the fastest verified one, which makes it a small config sweep. A task the frontend cannot trace or
the teacher cannot lower any part of gets no completion (`on_unsupported: empty`: best_of_n then has no
attempt, the fragment search leaves that fragment in
PyTorch) or stops the run (`on_unsupported: error`); `declined` keeps the reason per task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from search.assembly import Segment
from search.emit import AssemblyError, Piece, assemble_program
from search.fragments import Fragment, _init_inputs
from search.frontend import Program, UnsupportedConstruct, is_opaque, trace
from search.generators.base import Generator, Messages, prompt_hash
from synth.sft import teacher_response
from synth.teacher import Unsupported, lower
from synth.teacher.tiling import SWEEP, Tiling
from verify.candidate import FormatError, extract_program
from verify.config import FREE_TORCH_OPS
from verify.task import Task

log = logging.getLogger(__name__)


class TeacherDeclined(ValueError):
    """The teacher has no program for this task (`on_unsupported: error`); the message says why."""


def task_from_messages(messages: Messages) -> Task:
    """The reference program of a prompt: the fenced block of its first user message that has one."""
    for m in messages:
        if m["role"] == "user" and "```" in m["content"]:
            try:
                code = extract_program(m["content"])
            except FormatError:
                continue
            return Task.from_code(code.strip() + "\n", id=f"teacher/{prompt_hash(messages)[:12]}")
    raise ValueError(
        "generator=teacher found no fenced python block in any user message; prompts must carry the "
        "reference program as search.prompts.task_messages (synth.prompts.PromptTemplate) writes it"
    )


def whole_program_fragment(program: Program) -> Fragment:
    """The traced graph itself as a fragment covering every operator, for `search.emit` to wrap.

    Its task is the graph's printed Model: parameter leaves are `parameter<id>`, module weights
    `<op><id>.<suffix>` (the printer's names), each mapped to the task's state_dict key."""
    g = program.graph
    code = g.to_code()
    state_map = {}
    for node, entry in program.state.items():
        for suffix, key in entry.items():
            name = f"{g.op_name(node)}{node}"
            state_map[f"{name}.{suffix}" if suffix else name] = key
    task = Task.from_code(
        code,
        id=f"{program.task.id}#teacher",
        source="fragment",
        level=len(program),
        ops=tuple(program.op_names),
        dtype=program.task.dtype,
    )
    return Fragment(
        0, len(program), task, tuple(g.data_inputs()), tuple(g.outputs), state_map, tuple(_init_inputs(code))
    )


@dataclass(frozen=True)
class TeacherProgram:
    """The teacher's candidate for a task: its text, the traced operator names, and the operators it left
    in PyTorch (the ATen calls the frontend kept opaque and operators the teacher does not lower)."""

    text: str
    ops: list[str]
    torch_ops: list[str]

    @property
    def hybrid(self) -> bool:
        """Whether its forward computes with torch outside kernels (views, copies and layout do not count,
        as for the verifier's FREE_TORCH_OPS): such a program verifies with `allow_torch_compute` only."""
        return any(
            op.split(".")[1 if op.startswith("aten.") else 0] not in FREE_TORCH_OPS for op in self.torch_ops
        )


def teacher_program(task: Task, tiling: Tiling | None = None) -> tuple[str, list[str]]:
    """(candidate program, operator names) for `task`, with the tile caps of `tiling` (default Tiling()).

    Raises UnsupportedConstruct, Unsupported or AssemblyError when there is none, TaskError when the
    task itself does not run."""
    made = teacher_assembly(task, tiling)
    return made.text, made.ops


def teacher_assembly(task: Task, tiling: Tiling | None = None) -> TeacherProgram:
    """The teacher's program for `task` (see `teacher_program`). A program the teacher lowers whole is one
    kernel program; otherwise each maximal run of operators without an opaque ATen call is lowered as one
    fragment (a run the teacher rejects is split in halves until its parts lower or are single
    operators, which stay PyTorch), and the pieces are assembled as the fragment search's are (`search.emit`).
    """
    program = trace(task)
    graph = program.graph
    if not program.opaque:
        try:
            lowered = lower(graph, tiling)
        except Unsupported:
            lowered = None
        if lowered is not None and graph.to_code().strip() == task.code.strip():
            return TeacherProgram(lowered, program.op_names, [])
        if lowered is not None:
            whole = Piece(Segment(0, len(program), "kernel", 0.0), whole_program_fragment(program), lowered)
            return TeacherProgram(assemble_program(program, [whole]), program.op_names, [])
    pieces: list[Piece] = []
    start = 0
    for stop in [*program.opaque, len(program)]:
        if start < stop:
            pieces += _lower_span(program, start, stop, tiling)
        if stop < len(program):
            pieces.append(Piece(Segment(stop, stop + 1, "torch", 0.0)))
        start = stop + 1
    torch_ops = [_torch_name(program, p.segment.start) for p in pieces if p.segment.kind == "torch"]
    if not any(p.segment.kind == "kernel" for p in pieces):
        raise Unsupported(torch_ops[0], f"the teacher lowers none of the program's {len(program)} operators")
    return TeacherProgram(assemble_program(program, pieces), program.op_names, torch_ops)


def _torch_name(program: Program, i: int) -> str:
    """`aten.<op>.<overload>` for an opaque call, else the synth operator's name."""
    node = program.ops[i]
    return (
        program.graph.params(node)["call"] if is_opaque(program.graph, node) else program.graph.op_name(node)
    )


def _lower_span(program: Program, start: int, stop: int, tiling: Tiling | None) -> list[Piece]:
    """Operators [start, stop) (no opaque call among them) as kernel pieces, halving what does not lower."""
    fragment = program.fragment(start, stop)
    try:
        return [Piece(Segment(start, stop, "kernel", 0.0), fragment, lower(fragment.graph, tiling))]
    except Unsupported:
        if stop - start == 1:
            return [Piece(Segment(start, stop, "torch", 0.0))]
    mid = (start + stop) // 2
    return _lower_span(program, start, mid, tiling) + _lower_span(program, mid, stop, tiling)


class TeacherGenerator(Generator):
    name = "teacher"

    def __init__(self, on_unsupported: str = "empty") -> None:
        if on_unsupported not in ("empty", "error"):
            raise ValueError(f"generator.on_unsupported must be 'empty' or 'error', got {on_unsupported!r}")
        self.on_unsupported = on_unsupported
        # prompt hash -> the completion (refine and repeated fragments ask again)
        self.cache: dict[str, str] = {}
        # prompt hash -> why the teacher has no program for it
        self.declined: dict[str, str] = {}
        # completions whose program leaves compute in PyTorch (TeacherProgram.hybrid)
        self.hybrids: set[str] = set()
        self._lock = threading.Lock()

    def _one(self, messages: Messages, n: int = 1) -> list[str]:
        """Up to n distinct completions: the default tiling, then SWEEP's others (a config sweep when the
        search keeps the fastest verified one)."""
        return list(
            dict.fromkeys(t for t in (self._variant(messages, i) for i in range(min(n, len(SWEEP)))) if t)
        )

    def _variant(self, messages: Messages, index: int) -> str | None:
        """The completion with SWEEP[index]'s tiling (cached), or None when the teacher declines the task."""
        key = prompt_hash(messages)
        cache_key = key if index == 0 else f"{key}#{index}"
        with self._lock:
            if cache_key in self.cache:
                return self.cache[cache_key]
            if key in self.declined and self.on_unsupported == "empty":
                return None
        task = task_from_messages(messages)
        try:
            made = teacher_assembly(task, SWEEP[index])
        except (UnsupportedConstruct, Unsupported, AssemblyError) as e:
            why = f"{type(e).__name__}: {e}"
            with self._lock:
                self.declined[key] = why
            if self.on_unsupported == "error":
                raise TeacherDeclined(f"the teacher has no program for prompt {key[:12]}: {why}") from None
            log.warning("teacher: no program for prompt %s (%s)", key[:12], why[:200])
            return None
        text = teacher_response(made.text, made.ops)
        with self._lock:
            self.cache[cache_key] = text
            if made.hybrid:
                self.hybrids.add(text)
        return text

    def is_hybrid(self, text: str) -> bool:
        """Whether `text` is one of this teacher's programs that leave compute in PyTorch (verified with the
        search's hybrid verifier, as fragment assemblies are)."""
        with self._lock:
            return text in self.hybrids

    def generate(self, prompts: Sequence[Messages], n: int = 1) -> list[list[str]]:
        return [self._one(m, n) if n > 0 else [] for m in prompts]
