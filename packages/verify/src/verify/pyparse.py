"""Thread-safe `ast.parse`: CPython 3.11's AST constructor is not safe to call from several threads at
once (it fails with "SystemError: AST constructor recursion depth mismatch"), and the verifier parses
candidates and tasks from its pool threads."""
from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str) -> ast.Module:
    with _LOCK:
        return ast.parse(source)
