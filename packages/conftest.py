"""`python -m pytest` runs the docstring examples of every module under packages/*/src (testpaths holds
packages/). They are collected here rather than by `--doctest-modules`, which would also import every
non-test file under tests/ (attack programs, fixtures). Collecting imports each module on a CPU machine:
what must not be imported is listed below with the reason."""

from _pytest.doctest import DoctestModule  # pytest's own collector: the flag has no per-folder form

collect_ignore_glob = [
    # tasks, candidates and attacks are programs the verifier loads as data, not modules; some attack the
    # process that imports them
    "*/src/verify/fixtures/*/*.py",
    "*/src/search/fixtures/*/*.py",
]


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".py" or file_path.name in ("__main__.py", "conftest.py"):
        return None
    if parent.config.option.doctestmodules:  # pytest's doctest plugin collects it already
        return None
    return DoctestModule.from_parent(parent, path=file_path)
