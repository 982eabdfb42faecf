"""fragments: the paper's test-time fragment search, with the assembly chosen as a shortest path.

1. Trace the task into the IR (`search.frontend`); enumerate contiguous fragments of 1..min(max_len, n)
   operators, shortest first, plus the whole program as the original task (so a fused whole-program
   kernel is always a candidate, whatever n is). ATen calls the frontend kept opaque stay PyTorch: no
   fragment contains one, and the maximal runs between them are fragments too, whatever their length.
2. Ask the generator for `n` kernels per fragment, in one batch; verify every one against its fragment task.
3. Cost each fragment by its best verified kernel and each operator by its PyTorch cost (cost model:
   measured time on GPU, launch counts on CPU); the cheapest cover is a shortest path (`search.assembly`).
4. Write the assembly as one program (`search.emit`) and verify it end to end against the original task
   (hybrid verifier: operators left in PyTorch are allowed). If it fails, drop the kernel that the
   verdict was about and re-assemble, up to `max_assemblies` times.
5. The answer is the cheapest accepted program among the verified assemblies and whole-program kernels.

A task the frontend cannot trace is searched as a whole program only (the reason goes into the notes).
"""

from __future__ import annotations

from itertools import pairwise

from search import prompts
from search.assembly import NoAssemblyError, best_assembly, enumerate_spans
from search.emit import AssemblyError, Piece, assemble_program
from search.frontend import UnsupportedConstruct, trace
from search.strategies.base import Budget, Run, Strategy


class FragmentSearch(Strategy):
    name = "fragments"

    def __init__(
        self,
        max_len: int = 5,
        n: int = 1,
        whole_program: bool = True,
        max_assemblies: int = 3,
        budget: Budget | dict | None = None,
    ) -> None:
        super().__init__(budget)
        if max_len < 1 or n < 1 or max_assemblies < 1:
            raise ValueError(
                f"strategy.max_len, n and max_assemblies must be >= 1 (got {max_len}, {n}, {max_assemblies})"
            )
        self.max_len, self.n, self.whole_program, self.max_assemblies = (
            max_len,
            n,
            whole_program,
            max_assemblies,
        )

    def search(self, task, generator, judge):
        run = Run(self, task, generator, judge)
        try:
            program = trace(task)
        except UnsupportedConstruct as e:
            run.result.notes.append(f"frontend: {e}; searched the whole program only")
            return run.finish(run.whole_program(min(self.n, run.samples_left())))

        n_ops = len(program)
        spans = [s for s in enumerate_spans(n_ops, self.max_len) if not _has_opaque(program, s)]
        if program.opaque:
            spans += [s for s in _opaque_free_runs(program) if s not in spans]
            calls = sorted({program.graph.params(program.ops[i])["call"] for i in program.opaque})
            run.result.notes.append(
                f"frontend: {len(program.opaque)} of {n_ops} operators are ATen calls that "
                f"stay PyTorch ({', '.join(calls)}); no fragment contains one"
            )
        fragments = {s: program.fragment(*s) for s in spans if not (self.whole_program and s == (0, n_ops))}
        jobs = [(s, fragments[s].task) for s in spans if s in fragments]
        if self.whole_program:
            jobs.append(((0, n_ops), task))
        batch = [prompts.task_messages(t) for _, t in jobs]
        completions = run.generate(batch, self.n)
        pairs, meta = [], []
        for (span, t), messages, texts in zip(jobs, batch, completions):
            for text in texts:
                pairs.append((t, text))
                meta.append((span, t, messages))
        verdicts = run.verify(pairs)
        attempts = [
            run.record("whole" if span == (0, n_ops) and t is task else "fragment", t, m, text, v, span=span)
            for (span, t, m), (_, text), v in zip(meta, pairs, verdicts)
        ]
        whole = [a for a in attempts if a.kind == "whole"]

        best: dict[tuple[int, int], object] = {}
        for a in attempts:
            if a.cost is not None and (a.span not in best or a.cost < best[a.span].cost):
                best[a.span] = a
        assembled = []
        if not any(a.kind == "fragment" for a in best.values()):
            run.result.notes.append("assembly: no verified fragment kernel, nothing to assemble")
            return run.finish(whole)
        singles = [fragments.get((i, i + 1)) or program.fragment(i, i + 1) for i in range(n_ops)]
        torch_costs = run.cost.torch_ops(singles)
        for _ in range(self.max_assemblies):
            if not best or run.time_left() <= 0:
                break
            try:
                plan = best_assembly(n_ops, {s: a.cost for s, a in best.items()}, torch_costs)
            except NoAssemblyError as e:
                run.result.notes.append(f"assembly: {e}")
                break
            chosen = [best[(s.start, s.stop)] for s in plan.kernels]
            if len(plan.segments) == 1 and chosen[0].kind == "whole":
                break  # the whole-program kernel is the best plan; it is verified already
            pieces = [
                Piece(s, fragments.get((s.start, s.stop)), best[(s.start, s.stop)].text)
                if s.kind == "kernel"
                else Piece(s)
                for s in plan.segments
            ]
            try:
                text = assemble_program(program, pieces)
            except AssemblyError as e:
                run.result.notes.append(f"assembly {plan.describe()}: {e}")
                best.pop((plan.kernels[0].start, plan.kernels[0].stop))
                continue
            verdict = run.verify([(task, text)], hybrid=any(s.kind == "torch" for s in plan.segments))[0]
            attempt = run.record(
                "assembly",
                task,
                None,
                text,
                verdict,
                span=(0, n_ops),
                assembly=plan.describe(),
                predicted_cost=plan.cost,
            )
            assembled.append(attempt)
            if verdict.accepted:
                break
            run.result.notes.append(
                f"assembly {plan.describe()} rejected at {verdict.stage} "
                f"[{verdict.error_class}]: {verdict.message[:200]}"
            )
            worst = max(plan.kernels, key=lambda s: s.stop - s.start)
            best.pop((worst.start, worst.stop))
        return run.finish(assembled + whole)


def _has_opaque(program, span: tuple[int, int]) -> bool:
    return any(span[0] <= i < span[1] for i in program.opaque)


def _opaque_free_runs(program) -> list[tuple[int, int]]:
    """The maximal runs of operators between opaque calls (the teacher's fragments: one fused kernel each)."""
    bounds = [-1, *program.opaque, len(program)]
    return [(a + 1, b) for a, b in pairwise(bounds) if b > a + 1]
