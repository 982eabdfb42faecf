"""The teacher as a generator: synth's rule-based Triton lowering, no model (`generator=teacher`).

    python -m search task=fixtures/softmax strategy=best_of_n generator=teacher
    python -m bench suite=fixtures strategy=best_of_n strategy.n=1 generator=teacher

For each prompt the task's code is read back from the first user message (the reference program's
fenced block, as `synth.prompts.PromptTemplate` writes it), traced into the operator IR by the search
frontend, and lowered by `synth.teacher.lower`. When the traced graph prints back to the task's own code
(synthetic programs), the teacher's program is the answer as it is. Otherwise (any other Model) its
`ModelNew` would have the graph's constructor and weight names, so it is wrapped the way fragment
assemblies are (`search.emit`): a `ModelNew` with the task's `__init__` that builds the teacher's module
and points its weights at the task's own. The completion is the same shape a model writes: one or two
sentences and one fenced python block (`synth.sft.teacher_response`).

The teacher is deterministic. Asked for n completions, it gives up to n distinct ones: the default
tiling first, then the other tile caps of `synth.teacher.tiling.SWEEP`. Where a cap does not bind on a
task's shapes, two variants are the same program and only one is kept. `best_of_n` with n > 1 on a GPU
keeps the fastest verified one, which makes it a small config sweep. A task the frontend cannot trace or the teacher cannot lower gets no completion
(`on_unsupported: empty`: best_of_n then has no attempt, the fragment search leaves that fragment in
PyTorch) or stops the run (`on_unsupported: error`); `declined` keeps the reason per task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from synth.sft import teacher_response
from synth.teacher import Unsupported, lower
from synth.teacher.tiling import SWEEP, Tiling
from verify.candidate import FormatError, extract_program
from verify.task import Task

from search.assembly import Segment
from search.emit import AssemblyError, Piece, assemble_program
from search.fragments import Fragment, _init_inputs
from search.frontend import Program, UnsupportedConstruct, trace
from search.generators.base import Generator, Messages, prompt_hash

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
    task = Task.from_code(code, id=f"{program.task.id}#teacher", source="fragment", level=len(program),
                          ops=tuple(program.op_names), dtype=program.task.dtype)
    return Fragment(0, len(program), task, tuple(g.data_inputs()), tuple(g.outputs), state_map,
                    tuple(_init_inputs(code)))


def teacher_program(task: Task, tiling: Tiling | None = None) -> tuple[str, list[str]]:
    """(candidate program, operator names) for `task`, with the tile caps of `tiling` (default Tiling()).

    Raises UnsupportedConstruct, Unsupported or AssemblyError when there is none, TaskError when the
    task itself does not run."""
    program = trace(task)
    graph = program.graph
    lowered = lower(graph, tiling)
    if graph.to_code().strip() == task.code.strip():
        return lowered, program.op_names
    whole = Piece(Segment(0, len(program), "kernel", 0.0), whole_program_fragment(program), lowered)
    return assemble_program(program, [whole]), program.op_names


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
        self._lock = threading.Lock()

    def _one(self, messages: Messages, n: int = 1) -> list[str]:
        """Up to n distinct completions: the default tiling, then SWEEP's others (a config sweep when the
        search keeps the fastest verified one)."""
        return list(dict.fromkeys(t for t in (self._variant(messages, i) for i in range(min(n, len(SWEEP)))) if t))

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
            program, ops = teacher_program(task, SWEEP[index])
        except (UnsupportedConstruct, Unsupported, AssemblyError) as e:
            why = f"{type(e).__name__}: {e}"
            with self._lock:
                self.declined[key] = why
            if self.on_unsupported == "error":
                raise TeacherDeclined(f"the teacher has no program for prompt {key[:12]}: {why}") from None
            log.warning("teacher: no program for prompt %s (%s)", key[:12], why[:200])
            return None
        text = teacher_response(program, ops)
        with self._lock:
            self.cache[cache_key] = text
        return text

    def generate(self, prompts: Sequence[Messages], n: int = 1) -> list[list[str]]:
        return [self._one(m, n) if n > 0 else [] for m in prompts]
