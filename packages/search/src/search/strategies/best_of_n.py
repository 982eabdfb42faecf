"""best_of_n: n samples of the whole program, keep the fastest verified one."""

from __future__ import annotations

from search.strategies.base import Budget, Run, Strategy


class BestOfN(Strategy):
    name = "best_of_n"

    def __init__(self, n: int = 8, budget: Budget | dict | None = None) -> None:
        super().__init__(budget)
        if n < 1:
            raise ValueError(f"strategy.n must be >= 1, got {n}")
        self.n = n

    def search(self, task, generator, judge):
        run = Run(self, task, generator, judge)
        attempts = run.whole_program(min(self.n, run.samples_left()))
        return run.finish(attempts)
