"""Repeated candidates are answered from the cache, whatever prose surrounds the program."""
from verify import Verifier, VerifyConfig
from verify.fixtures import fixture_candidate, fixture_task


def test_repeat_is_cached_and_prose_does_not_matter(tmp_path):
    task, program = fixture_task("relu_scale_bias"), fixture_candidate("relu_scale_bias")
    path = tmp_path / "cache.jsonl"
    with Verifier(VerifyConfig(), workers=1, cache_path=str(path)) as v:
        first = v.verify(task, program)
        again = v.verify(task, f"Sure! Here it is:\n```python\n{program}```\nDone.")
    assert first.accepted and not first.cached
    assert again.cached and again.accepted and again.wall_s < 0.5
    with Verifier(VerifyConfig(), workers=1, cache_path=str(path)) as v:  # a new process reads the file
        assert v.verify(task, program).cached
    with Verifier(VerifyConfig(trials=6), workers=1, cache_path=str(path)) as v:  # config is part of the key
        assert not v.verify(task, program).cached
