"""Nothing one candidate does reaches the next: after a crash, an exit or a patching hack, the pool
carries on and a correct candidate for the same task is still accepted, with fresh forked workers
(the default) and with kept workers (persistent_workers=always), which must retire after such a candidate.
The attacks on the trust boundary itself are in test_boundary_attacks_on_cpu.py."""
import pytest

from verify import Verifier, VerifyConfig
from verify.fixtures import adversarial_cases, fixture_candidate, fixture_task

BREAKERS = ("crash_segfault", "exit", "patch_reference", "patch_timer_dynamic")


def _breakers_then_good(v):
    cases = {c["name"]: c for c in adversarial_cases()}
    for name in BREAKERS:
        case = cases[name]
        bad = v.verify(case["task"], case["text"])
        assert (bad.stage, bad.error_class) == (case["stage"], case["error_class"])
        task_name = case["task"].id.split("/")[-1]
        good = v.verify(fixture_task(task_name), fixture_candidate(task_name))
        assert good.accepted, f"after {name}: {good.stage}/{good.error_class} {good.message}"


def test_fresh_workers(verifier):
    _breakers_then_good(verifier)


@pytest.mark.slow
def test_kept_worker_retires_after_breakers():
    with Verifier(VerifyConfig(persistent_workers="always", timeout_s=60), workers=1, cache=False) as v:
        task, text = fixture_task("gelu_scale"), fixture_candidate("gelu_scale")
        for i in range(3):  # accepted candidates leave the process clean: it is kept
            assert v.verify(task, f"{text}\n# {i}\n").accepted
        assert v.worker_starts() == 1, "a kept worker retired after an accepted candidate"
        _breakers_then_good(v)
        assert v.worker_starts() > 2, "breaker candidates must retire the kept worker"


KILLS_ITS_PROCESS = '''
import os
import time

import torch
import torch.nn as nn

time.sleep(4)
os._exit(3)  # a broken task: its reference takes the whole (kept) reference server down


class Model(nn.Module):
    def forward(self, x):
        return x


def get_inputs():
    return [torch.randn(8)]


def get_init_inputs():
    return []
'''


def test_a_task_that_kills_the_reference_server_harms_only_itself():
    """References run in one kept server, in turn. A task that kills it is reported as not running; a task
    whose reference job was queued behind it goes to a fresh server and its candidate is judged normally.
    Kept workers so that the reference server is one long-lived process, as on a GPU."""
    import threading
    import time

    from verify import Task, TaskError

    killer = Task.from_code(KILLS_ITS_PROCESS, id="kills_reference_server")
    results = {}
    with Verifier(VerifyConfig(timeout_s=60, persistent_workers="always"), workers=2, cache=False) as v:
        def run(name, task, text):
            try:
                results[name] = v.verify(task, text)
            except TaskError as e:
                results[name] = e

        a = threading.Thread(target=run, args=("killer", killer, fixture_candidate("gelu_scale")))
        a.start()
        time.sleep(1.5)  # the good task's reference job is queued while the killer's sleeps
        run("good", fixture_task("gelu_scale"), fixture_candidate("gelu_scale"))
        a.join()
    assert isinstance(results["killer"], TaskError) and "does not run (crash)" in str(results["killer"])
    good = results["good"]
    assert not isinstance(good, Exception) and good.accepted, good


def test_each_candidate_takes_a_fresh_prepared_spare():
    """Fork mode keeps one prepared worker per slot ahead of the jobs (zygote._Spares): each candidate
    runs in a spare forked before it, used once, and a new spare replaces it."""
    import time

    from verify import confine

    with Verifier(VerifyConfig(timeout_s=60), workers=1, cache=False) as v:
        task, text = fixture_task("gelu_scale"), fixture_candidate("gelu_scale")
        assert v.verify(task, text).accepted
        server = v._sandboxes[0]._proc.pid  # started with the first job
        time.sleep(1.0)  # the reaper sweeps every 20 ms; the spare of the next job is forked by now
        first = set(confine.children(server))
        assert len(first) == 1, f"expected one spare after a candidate, the server has children {first}"
        assert v.verify(task, f"{text}\n# again\n").accepted
        time.sleep(1.0)
        second = set(confine.children(server))
        assert len(second) == 1 and not (first & second), "the spare was not used (or used twice)"
