"""One parse lock, owned by verify (issue 26): search's tracing waits while the verifier parses, and the lock
is reentrant, since a trace loads its task through verify."""
import threading

from search.frontend import trace
from verify.fixtures import fixture_task
from verify.pyparse import PARSE_LOCK


def test_tracing_holds_verify_parse_lock():
    task = fixture_task("swish_residual")
    trace(task)  # warm: torch.export's first call imports for seconds
    done = threading.Event()
    with PARSE_LOCK:
        worker = threading.Thread(target=lambda: (trace(task), done.set()))
        worker.start()
        worker.join(timeout=1.0)
        assert not done.is_set(), "a trace ran while verify's parse lock was held"
    worker.join(timeout=120)
    assert done.is_set()
