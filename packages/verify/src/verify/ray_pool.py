"""A verifier pool across GPUs and nodes on Ray: one actor per GPU, each owning a local Verifier.

    pool = RayVerifierPool(VerifyConfig(), workers_per_actor=4)    # joins or starts a Ray cluster
    verdict = await pool.verify_async(task, completion)           # from an async reward function
    verdicts = pool.verify_many(pairs)

Each actor reserves one GPU (or one CPU where the cluster has none: interpreter mode) and runs up to
`workers_per_actor` candidates at once in its own worker processes. Work goes to the actor with the
fewest candidates in flight.
"""
from __future__ import annotations

import asyncio
import threading

from verify.config import VerifyConfig
from verify.task import Task
from verify.verdict import Verdict
from verify.verifier import Verifier


class _VerifierActor:
    def __init__(self, config: dict, workers: int):
        self.verifier = Verifier(VerifyConfig(**config), workers=workers, workers_per_gpu=workers)

    def verify(self, task: dict, text: str) -> dict:
        return self.verifier.verify(Task.from_dict(task), text).to_dict()

    def backend(self) -> str:
        return self.verifier.backend


class RayVerifierPool:
    def __init__(self, config: VerifyConfig | None = None, num_actors: int | None = None,
                 workers_per_actor: int = 4, address: str | None = None):
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.config = config or VerifyConfig()
        n_gpu = int(ray.cluster_resources().get("GPU", 0))
        if num_actors is None:
            num_actors = n_gpu or 1
        resources = {"num_gpus": 1} if n_gpu else {"num_cpus": 1}
        actor_cls = ray.remote(_VerifierActor).options(max_concurrency=workers_per_actor, **resources)
        self.actors = [actor_cls.remote(self.config.to_dict(), workers_per_actor) for _ in range(num_actors)]
        self._load = [0] * num_actors
        self._lock = threading.Lock()

    def _pick(self) -> int:
        with self._lock:
            i = min(range(len(self.actors)), key=self._load.__getitem__)
            self._load[i] += 1
            return i

    def _done(self, i: int) -> None:
        with self._lock:
            self._load[i] -= 1

    async def verify_async(self, task: Task, text: str) -> Verdict:
        i = self._pick()
        try:
            return Verdict.from_dict(await self.actors[i].verify.remote(task.to_dict(), text))
        finally:
            self._done(i)

    def verify(self, task: Task, text: str) -> Verdict:
        import ray

        i = self._pick()
        try:
            return Verdict.from_dict(ray.get(self.actors[i].verify.remote(task.to_dict(), text)))
        finally:
            self._done(i)

    def verify_many(self, pairs) -> list[Verdict]:
        async def _all():
            return await asyncio.gather(*(self.verify_async(t, c) for t, c in pairs))

        return asyncio.run(_all())

    def backends(self) -> list[str]:
        import ray

        return ray.get([a.backend.remote() for a in self.actors])

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []
