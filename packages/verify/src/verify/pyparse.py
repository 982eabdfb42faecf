"""Safe `ast.parse` for untrusted text.

Thread-safe: CPython 3.11's AST constructor is not safe to call from several threads at once (it fails with
"SystemError: AST constructor recursion depth mismatch"), and the verifier parses candidates and tasks from
its pool threads. Total: text the parser cannot hold (a long line of prose joined by " - " nests thousands
of binary operations; `not not not ...`) raises RecursionError or MemoryError inside CPython's parser, and
a NUL byte ValueError; each becomes the SyntaxError every caller already turns into a verdict or a message.

`PARSE_LOCK` is the workspace's one parse lock: code that builds ASTs indirectly (search's torch.export
tracing, fragment printing and assembly) holds it too, so that none of it runs beside a parse here.
"""
from __future__ import annotations

import ast
import threading

# reentrant: a holder (search's tracing) may load a task, which parses through `parse`
PARSE_LOCK = threading.RLock()


def parse(source: str) -> ast.Module:
    """`ast.parse(source)`, raising only SyntaxError on unusable text.

    >>> parse("x = 1").body[0].targets[0].id
    'x'
    >>> parse(" - ".join(["word"] * 200_000))  # deeper than any recursion limit torch sets
    Traceback (most recent call last):
    ...
    SyntaxError: the text is nested too deeply to be a program (RecursionError)
    """
    with PARSE_LOCK:
        try:
            return ast.parse(source)
        except (RecursionError, MemoryError) as e:
            error = SyntaxError(f"the text is nested too deeply to be a program ({type(e).__name__})")
        except ValueError as e:
            error = SyntaxError(f"the text is not a program: {e}")
    error.lineno = 1
    raise error
