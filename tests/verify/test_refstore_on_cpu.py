"""Reference outputs are reused across a task's candidates but kept on disk only within
verify.ref_cache_gb."""
import glob
import os
import threading

import pytest

from verify import Verifier, VerifyConfig
from verify.fixtures import fixture_candidate, fixture_task
from verify.refstore import ReferenceStore


def _maker(tmp_path, name, size, calls):
    def make():
        calls.append(name)
        path = tmp_path / f"{name}.pt"
        path.write_bytes(b"x" * size)
        return {"path": str(path)}
    return make


def test_store_reuses_then_evicts_least_recently_used(tmp_path):
    store, calls = ReferenceStore(budget_bytes=250), []
    for name in ("a", "b", "a"):
        with store.use(name, _maker(tmp_path, name, 100, calls)):
            pass
    assert calls == ["a", "b"] and store.bytes == 200
    with store.use("c", _maker(tmp_path, "c", 100, calls)):  # over budget: b is the least recently used
        pass
    assert not (tmp_path / "b.pt").exists() and (tmp_path / "a.pt").exists() and (tmp_path / "c.pt").exists()
    assert store.bytes == 200 and store.evicted == 1
    with store.use("b", _maker(tmp_path, "b", 100, calls)):  # computed again when it comes back
        pass
    assert calls == ["a", "b", "c", "b"]


def test_store_never_deletes_a_file_in_use(tmp_path):
    store, calls = ReferenceStore(budget_bytes=0), []
    with store.use("a", _maker(tmp_path, "a", 100, calls)) as ref:
        with store.use("b", _maker(tmp_path, "b", 100, calls)):
            assert os.path.exists(ref["path"])  # a is being read: over budget, still kept
        assert not (tmp_path / "b.pt").exists()
        assert os.path.exists(ref["path"])
    assert not (tmp_path / "a.pt").exists() and store.bytes == 0 and len(store) == 0


def test_store_computes_each_key_once_under_concurrency(tmp_path):
    store, calls = ReferenceStore(budget_bytes=10**6), []
    barrier = threading.Barrier(6)

    def use():
        barrier.wait()
        with store.use("a", _maker(tmp_path, "a", 10, calls)):
            pass

    threads = [threading.Thread(target=use) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert calls == ["a"] and store.computed == 1


def test_a_failing_make_stores_nothing(tmp_path):
    store = ReferenceStore(budget_bytes=10**6)

    def broken():
        raise RuntimeError("task does not run")

    with pytest.raises(RuntimeError), store.use("a", broken):
        pass
    assert len(store) == 0 and store.bytes == 0


def test_verifier_keeps_reference_files_within_budget():
    names = ("relu_scale_bias", "gelu_scale")
    pairs = [(fixture_task(n), fixture_candidate(n)) for n in names]
    with Verifier(VerifyConfig(ref_cache_gb=1e-12, timing=False), workers=1, cache=False) as v:
        verdicts = [v.verify(t, c) for t, c in pairs] + [v.verify(*pairs[0])]
        left = glob.glob(os.path.join(v._tmp, "*.pt"))
        computed, evicted = v._refs.computed, v._refs.evicted
    assert all(x.accepted for x in verdicts), [x.message for x in verdicts]
    assert left == [] and computed == 3 and evicted == 3


def test_ref_cache_gb_is_not_part_of_the_cache_key():
    assert VerifyConfig(ref_cache_gb=1.0).digest() == VerifyConfig(ref_cache_gb=64.0).digest()
    with pytest.raises(ValueError, match="ref_cache_gb"):
        VerifyConfig(ref_cache_gb=0)
