"""What a search returns and logs: every attempt with its verdict, and the best program."""

from __future__ import annotations

from dataclasses import dataclass, field

from verify.verdict import Verdict


@dataclass
class Attempt:
    """One verified candidate: a whole program, a fragment kernel, an assembly, or a refinement."""

    # "whole", "fragment", "assembly" or "refine"
    kind: str
    # the task it was verified against (a fragment's own task for kind "fragment")
    task_id: str
    prompt_hash: str | None
    text: str
    verdict: Verdict
    # cost under the search's cost model (None when not accepted or not timed)
    cost: float | None = None
    # operators [start, stop) for fragments and assemblies
    span: tuple[int, int] | None = None
    # refinement round
    round: int | None = None
    # the assembly's segments, e.g. "[0:2] kernel | [2:3] torch", and its predicted cost
    assembly: str | None = None
    predicted_cost: float | None = None

    def to_dict(self, with_text: bool = True) -> dict:
        d = {
            "kind": self.kind,
            "task_id": self.task_id,
            "prompt_hash": self.prompt_hash,
            "cost": self.cost,
            "span": list(self.span) if self.span else None,
            "round": self.round,
            "assembly": self.assembly,
            "predicted_cost": self.predicted_cost,
            "accepted": self.verdict.accepted,
            "verdict": self.verdict.to_dict(),
        }
        if with_text:
            d["text"] = self.text
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Attempt:
        return cls(
            kind=d["kind"],
            task_id=d["task_id"],
            prompt_hash=d.get("prompt_hash"),
            text=d.get("text", ""),
            verdict=Verdict.from_dict(d["verdict"]),
            cost=d.get("cost"),
            span=tuple(d["span"]) if d.get("span") else None,
            round=d.get("round"),
            assembly=d.get("assembly"),
            predicted_cost=d.get("predicted_cost"),
        )


@dataclass
class SearchResult:
    task_id: str
    strategy: str
    generator: str
    # how costs were computed (measured time on GPU, launch counts on CPU) and their unit
    cost_model: str = ""
    cost_unit: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    best: Attempt | None = None
    # things worth knowing: frontend fallbacks, budget cuts, assembly failures
    notes: list[str] = field(default_factory=list)
    samples: int = 0
    generate_s: float = 0.0
    verify_s: float = 0.0
    wall_s: float = 0.0

    @property
    def best_text(self) -> str | None:
        return self.best.text if self.best else None

    @property
    def verdict(self) -> Verdict | None:
        return self.best.verdict if self.best else None

    def to_dict(self) -> dict:
        return {
            "task_id": self.task_id,
            "strategy": self.strategy,
            "generator": self.generator,
            "cost_model": self.cost_model,
            "cost_unit": self.cost_unit,
            "best": self.best.to_dict() if self.best else None,
            "attempts": [a.to_dict() for a in self.attempts],
            "notes": list(self.notes),
            "samples": self.samples,
            "generate_s": self.generate_s,
            "verify_s": self.verify_s,
            "wall_s": self.wall_s,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SearchResult:
        r = cls(
            task_id=d["task_id"],
            strategy=d["strategy"],
            generator=d["generator"],
            cost_model=d.get("cost_model", ""),
            cost_unit=d.get("cost_unit", ""),
            attempts=[Attempt.from_dict(a) for a in d.get("attempts", [])],
            notes=list(d.get("notes", [])),
            samples=d.get("samples", 0),
            generate_s=d.get("generate_s", 0.0),
            verify_s=d.get("verify_s", 0.0),
            wall_s=d.get("wall_s", 0.0),
        )
        r.best = Attempt.from_dict(d["best"]) if d.get("best") else None
        return r

    def summary(self) -> str:
        accepted = sum(a.verdict.accepted for a in self.attempts)
        head = (
            f"{self.task_id}: {self.strategy} with {self.generator}, {len(self.attempts)} attempts, "
            f"{accepted} accepted"
        )
        if self.best is None:
            return head + "; no accepted program"
        v = self.best.verdict
        line = f"{head}; best: {self.best.kind}"
        if self.best.assembly:
            line += f" ({self.best.assembly})"
        line += f", cost {self.best.cost:.4g} {self.cost_unit}"
        if v.speedup_eager is not None:
            line += f", {v.speedup_eager:.2f}x vs eager"
        if v.speedup_compile is not None:
            line += f", {v.speedup_compile:.2f}x vs torch.compile"
        return line
