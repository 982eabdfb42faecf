"""refine: sample, verify, and feed the verdict (its error, or its speed) back for up to k rounds.

Each round continues the conversation of the best attempt so far (or of the last one when none is
accepted yet): the model sees its program and the verifier's message. Without timing (CPU) there is no
speed to improve, so the search stops at the first accepted program.
"""

from __future__ import annotations

from search import prompts
from search.strategies.base import Budget, Run, Strategy


class Refine(Strategy):
    name = "refine"

    def __init__(self, rounds: int = 4, n: int = 1, budget: Budget | dict | None = None) -> None:
        super().__init__(budget)
        if rounds < 1 or n < 1:
            raise ValueError(f"strategy.rounds and strategy.n must be >= 1, got {rounds} and {n}")
        self.rounds, self.n = rounds, n

    def search(self, task, generator, judge):
        run = Run(self, task, generator, judge)
        messages = prompts.task_messages(task)
        everything, anchor = [], None
        for r in range(self.rounds):
            if run.time_left() <= 0 or run.samples_left() <= 0:
                run.result.notes.append(f"budget reached after {r} rounds")
                break
            texts = run.generate([messages], min(self.n, run.samples_left()))[0]
            if not texts:
                run.result.notes.append(f"round {r}: the generator returned no completion")
                break
            verdicts = run.verify([(task, t) for t in texts])
            attempts = [run.record("refine", task, messages, t, v, round=r) for t, v in zip(texts, verdicts)]
            everything += attempts
            scored = [a for a in everything if a.cost is not None]
            anchor = min(scored, key=lambda a: a.cost) if scored else attempts[0]
            if anchor.verdict.accepted and not run.cost.measured:
                break
            messages = prompts.feedback_messages(
                task, prompts.task_messages(task), anchor.text, anchor.verdict
            )
        return run.finish(everything)
