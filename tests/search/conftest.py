"""Search test fixtures: the fixture replay files (whole programs, fragments, both)."""

import pytest


@pytest.fixture(scope="session")
def replay_all(tmp_path_factory):
    from search.fixtures import write_fixture_replay

    path = tmp_path_factory.mktemp("replay") / "all.jsonl"
    write_fixture_replay(path)
    return path


@pytest.fixture(scope="session")
def judge():
    from search.judge import Judge

    # one verification at a time: verify's format stage calls ast.parse from its pool threads, and
    # CPython 3.11's AST constructor is not thread-safe (SystemError: AST constructor recursion depth
    # mismatch); reported to the verify owner
    with Judge({"trials": 5, "shape_variants": 1}, workers=1) as j:
        yield j
