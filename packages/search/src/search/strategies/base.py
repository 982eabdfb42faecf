"""The strategy interface, budgets, and the bookkeeping every strategy shares."""

from __future__ import annotations

import time
from dataclasses import dataclass

from search import prompts
from search.costs import CostModel
from search.generators.base import Generator, Messages, prompt_hash
from search.judge import Judge
from search.result import Attempt, SearchResult
from verify.task import Task
from verify.verdict import Verdict

# `Attempt.assembly` of a whole program its generator assembled with operators left in PyTorch
HYBRID_WHOLE = "generator's hybrid: kernels and torch operators"


@dataclass
class Budget:
    """Limits of one search; the strategy stops asking for more once one is reached."""

    # completions the generator may produce for this task, all prompts together
    samples: int = 64
    # seconds of wall time for this task (generation and verification together)
    wall_time_s: float = 3600.0


class Strategy:
    name = "strategy"

    def __init__(self, budget: Budget | dict | None = None) -> None:
        self.budget = budget if isinstance(budget, Budget) else Budget(**dict(budget or {}))

    def search(self, task: Task, generator: Generator, judge: Judge) -> SearchResult:
        raise NotImplementedError


class Run:
    """State of one search: the clock, the sample budget, the cost model and the attempts so far."""

    def __init__(self, strategy: Strategy, task: Task, generator: Generator, judge: Judge) -> None:
        self.strategy, self.task, self.generator, self.judge = strategy, task, generator, judge
        self.budget = strategy.budget
        self.cost = CostModel(judge.timing, judge.config, judge.timing_lock)
        self.result = SearchResult(
            task_id=task.id,
            strategy=strategy.name,
            generator=getattr(generator, "name", type(generator).__name__),
            cost_model=self.cost.describe(),
            cost_unit=self.cost.unit,
        )
        self.start = time.monotonic()
        self.samples = 0

    def time_left(self) -> float:
        return self.budget.wall_time_s - (time.monotonic() - self.start)

    def samples_left(self) -> int:
        return max(0, self.budget.samples - self.samples)

    def generate(self, batch: list[Messages], n: int) -> list[list[str]]:
        """n completions per prompt, cut to the sample and time budgets (earlier prompts first); a prompt
        cut off gets no completion."""
        allowed = min(len(batch), self.samples_left() // n) if n > 0 else 0
        if self.time_left() <= 0:
            allowed = 0
        if allowed < len(batch):
            self.result.notes.append(f"budget: {len(batch) - allowed} of {len(batch)} prompts not sent")
        out: list[list[str]] = []
        if allowed:
            t0 = time.monotonic()
            out = [list(c) for c in self.generator.generate(batch[:allowed], n)]
            self.result.generate_s += time.monotonic() - t0
            self.samples += sum(len(c) for c in out)
        return out + [[] for _ in range(len(batch) - allowed)]

    def verify(self, pairs: list[tuple[Task, str]], hybrid: bool = False) -> list[Verdict]:
        if not pairs:
            return []
        t0 = time.monotonic()
        verifier = self.judge.hybrid if hybrid else self.judge.strict
        verdicts = verifier.verify_many(pairs)
        self.result.verify_s += time.monotonic() - t0
        return verdicts

    def record(
        self, kind: str, task: Task, messages: Messages | None, text: str, verdict: Verdict, **extra
    ) -> Attempt:
        attempt = Attempt(
            kind=kind,
            task_id=task.id,
            prompt_hash=prompt_hash(messages) if messages else None,
            text=text,
            verdict=verdict,
            cost=self.cost.candidate(verdict),
            **extra,
        )
        self.result.attempts.append(attempt)
        return attempt

    def whole_program(self, n: int, kind: str = "whole") -> list[Attempt]:
        """n samples for the whole task, verified strictly; a program our own generator says it assembled
        with PyTorch parts (the teacher's hybrids: `is_hybrid`) is verified as an assembly is."""
        messages = prompts.task_messages(self.task)
        texts = self.generate([messages], n)[0]
        declared = getattr(self.generator, "is_hybrid", None)
        hybrid = [bool(declared and declared(t)) for t in texts]
        verdicts: dict[int, Verdict] = {}
        for flag in (False, True):
            picked = [i for i, h in enumerate(hybrid) if h == flag]
            verdicts.update(zip(picked, self.verify([(self.task, texts[i]) for i in picked], hybrid=flag)))
        return [
            self.record(
                kind, self.task, messages, t, verdicts[i], assembly=HYBRID_WHOLE if hybrid[i] else None
            )
            for i, t in enumerate(texts)
        ]

    def finish(self, candidates: list[Attempt]) -> SearchResult:
        """Pick the cheapest accepted attempt among `candidates` (ties: the earliest; accepted attempts whose
        timing failed come last)."""
        accepted = [a for a in candidates if a.verdict.accepted]
        if accepted:
            best = min(accepted, key=lambda a: (a.cost is None, a.cost or 0.0))
            if self.judge.wants_compile:
                hybrid = (
                    best.kind == "assembly" and "torch" in (best.assembly or "")
                ) or best.assembly == HYBRID_WHOLE
                best.verdict = self.judge.rescore(self.task, best.text, hybrid)
                best.cost = self.cost.candidate(best.verdict)
                self.result.notes.append("best program re-verified with the torch.compile baseline")
            self.result.best = best
        self.result.wall_s = time.monotonic() - self.start
        self.result.samples = self.samples
        return self.result
