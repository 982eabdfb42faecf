"""One program from (seed, level, index), and many of them across worker processes.

`make_program` is a pure function of its arguments and the sampler/validator settings: the random
stream is seeded from the string "seed:level:index", so a program can be regenerated alone, on any
machine, with any number of workers. `Workers.map` runs it over index ranges in a process pool and yields
records in index order, which makes first-occurrence deduplication deterministic too.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import random
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

from synth.sampler import Sampler
from synth.validate import Validator

# shard s draws indices from s * SHARD_STRIDE on, so shards never share an index
SHARD_STRIDE = 10**9


@dataclass
class Record:
    """A generated program: its code, identity and the facts statistics need."""

    seed: int
    level: int
    index: int
    code: str
    hash: str
    ops: list[str]
    # (producer, consumer) operator pairs, one per compute-to-compute tensor use
    edges: list[tuple[str, str]]
    outputs: int
    elements: int
    flops: int
    # ran for real on the CPU (else meta only)
    ran_cpu: bool
    attempts: int
    mode: str
    graph: dict = field(repr=False, default_factory=dict)

    @property
    def id(self) -> str:
        return f"synth_l{self.level}_s{self.seed}_{self.index:010d}"

    def to_dict(self) -> dict:
        return asdict(self)


def program_rng(seed: int, level: int, index: int) -> random.Random:
    return random.Random(f"{seed}:{level}:{index}")


def graph_at(sampler: Sampler, validator: Validator, seed: int, level: int, index: int):
    """The graph at (seed, level, index), or None when synthesis finds none there."""
    try:
        graph, _ = sampler.sample(program_rng(seed, level, index), level, check=validator.check)
    except RuntimeError:
        return None
    return graph


def make_program(sampler: Sampler, validator: Validator, seed: int, level: int, index: int) -> Record:
    """The program at (seed, level, index): sampled, solved, and run (meta always, CPU when small)."""
    rng = program_rng(seed, level, index)
    graph, info = sampler.sample(rng, level, check=validator.check)
    return Record(seed=seed, level=level, index=index, code=graph.to_code(), hash=graph.structural_hash(),
                  ops=graph.op_names(), edges=graph.op_edges(), outputs=len(graph.outputs),
                  elements=graph.elements(), flops=graph.flops(), ran_cpu=validator.small(graph),
                  attempts=info.attempts, mode=info.mode, graph=graph.to_dict())


_WORKER: tuple[Sampler, Validator] | None = None


def _init_worker(build, threads: int) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(threads)
    _WORKER = build()


def _work(job: tuple[int, int, int]) -> Record | str:
    sampler, validator = _WORKER
    try:
        return make_program(sampler, validator, *job)
    except RuntimeError as e:  # no valid wiring found: reported by the caller, never silently dropped
        return f"{job}: {e}"


class Workers:
    """A pool of `workers` processes (in-process when <= 1) that turn (seed, level, index) jobs into
    records, in order. `build()` returns (sampler, validator) and runs once per process."""

    def __init__(self, build, workers: int = 1) -> None:
        self.build, self.workers, self.pool = build, workers, None

    def __enter__(self) -> "Workers":
        if self.workers > 1:
            if mp.get_start_method(allow_none=True) not in (None, "fork", "spawn", "forkserver"):
                # a job of Hydra's joblib launcher runs in a loky worker, whose start method "loky" our
                # workers would inherit and cannot rebuild (ValueError: cannot find context for 'loky')
                mp.set_start_method(None, force=True)
            ctx = mp.get_context("forkserver" if os.name == "posix" else "spawn")
            self.pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(self.build, 1))
        else:
            _init_worker(self.build, threads=1)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def map(self, jobs: Iterable[tuple[int, int, int]]) -> Iterator[Record | str]:
        """Records (or error strings for programs that could not be made) for `jobs`, in order.

        A worker killed by a native crash raises RuntimeError rather than hanging the run."""
        if self.pool is None:
            yield from map(_work, jobs)
            return
        try:
            yield from self.pool.map(_work, jobs, chunksize=8)
        except BrokenProcessPool as e:
            raise RuntimeError("a synth worker process died (a native crash while running a program); "
                               "rerun the same command with workers=1 to see which (seed, level, index) "
                               "it was") from e
