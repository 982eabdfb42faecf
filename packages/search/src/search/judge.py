"""The verifiers a search uses: strict for whole programs, hybrid for assemblies with PyTorch parts,
and a final one that adds the torch.compile baseline to the chosen program only. They share one
timing lock per GPU, so concurrent searches (bench's `tasks_in_flight`) never time two things at once.

An assembled program may leave operators in PyTorch on purpose, which the strict verifier rejects as a
`torch_fallback`; the hybrid verifier (same config with `allow_torch_compute=True`) accepts that compute
and still requires real kernel launches that do the work (launch counting and the no-op test).
Compiling the baseline for every fragment would dominate a search, so candidates are verified without
it and, when `compile_baseline` is asked for, the best program is re-verified with it (`rescore`).
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import replace

from verify import Verifier, VerifyConfig
from verify.task import Task
from verify.verdict import Verdict


class Judge:
    def __init__(self, config: VerifyConfig | dict | None = None, workers: int | None = None) -> None:
        if config is None:
            config = VerifyConfig()
        elif not isinstance(config, VerifyConfig):
            config = VerifyConfig.from_mapping(config)
        self.config, self.workers = config, workers
        self._lock_dir = tempfile.mkdtemp(prefix="drt_judge_locks_")
        self._verifiers: dict[tuple[bool, bool], Verifier] = {}
        self.strict = self._get(hybrid=False, compiled=False)

    def _get(self, hybrid: bool, compiled: bool) -> Verifier:
        key = (hybrid, compiled)
        if key not in self._verifiers:
            cfg = replace(
                self.config,
                allow_torch_compute=hybrid or self.config.allow_torch_compute,
                compile_baseline=compiled,
            )
            # one lock directory for all of this judge's verifiers: a strict and a hybrid verification
            # never time at the same moment
            self._verifiers[key] = Verifier(cfg, workers=self.workers, lock_dir=self._lock_dir)
        return self._verifiers[key]

    @property
    def hybrid(self) -> Verifier:
        return self._get(hybrid=True, compiled=False)

    @property
    def timing(self) -> bool:
        """Whether verdicts carry measured times (a GPU and verify.timing on)."""
        return not self.strict.interpret and self.config.timing

    @property
    def device(self) -> str:
        return "cpu" if self.strict.interpret else "cuda"

    @property
    def wants_compile(self) -> bool:
        return self.timing and self.config.compile_baseline

    @contextmanager
    def timing_lock(self, device: str = "cuda:0"):
        """Hold `device`'s timing lock (the one the verifier workers take), to time something here."""
        if self.strict.interpret:
            yield
            return
        with self.strict.device_lock(device).exclusive():
            yield

    def rescore(self, task: Task, text: str, hybrid: bool) -> Verdict:
        """Verify the chosen program again, timing torch.compile(Model) too."""
        return self._get(hybrid=hybrid, compiled=True).verify(task, text)

    def close(self) -> None:
        for v in self._verifiers.values():
            v.close()
        shutil.rmtree(self._lock_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
