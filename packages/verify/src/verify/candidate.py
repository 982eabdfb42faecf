"""The Candidate contract and the format stage: extract the program, then check it statically.

A candidate arrives as text (an LLM completion or a plain .py file). The program is the last fenced
Python block (fences as Markdown reads them: a line of three or more backticks or tildes, any info string
after the language, closed by a line of the same fence alone, so a ``` inside a docstring does not end the
block); a text with no fence that parses as a program is taken whole. Line endings are normalised first.
Static checks reject what no honest kernel needs (timer patching, side streams, interpreter escapes);
the dynamic checks in the worker back each of them up.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from verify.pyparse import parse

# an opening fence: up to 3 spaces, 3+ backticks or tildes, then the info string (language first)
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$")
# the languages a block may be tagged with to count as the program (untagged blocks count too)
PYTHON_TAGS = ("", "python", "python3", "py", "py3")

# Modules and names that give a candidate a way around the checks; a kernel never needs them.
FORBIDDEN_MODULES = (
    "ctypes", "gc", "inspect", "subprocess", "signal", "importlib", "multiprocessing", "builtins",
    "torch._C", "torch.utils._python_dispatch", "torch._dynamo", "pickle", "marshal", "socket",
    "torch.library", "torch._library", "torch.compile", "torch._inductor", "verify",
)
FORBIDDEN_NAMES = ("__import__", "exec", "eval", "globals", "__builtins__", "_getframe", "__subclasses__")
# Roots whose attributes a candidate must not assign to (timers, sync, the reference's ops, Triton).
PROTECTED_ROOTS = ("torch", "triton", "tl", "time", "np", "numpy", "math", "F", "nn", "sys", "os", "verify")
STREAM_ATTRS = ("Stream", "stream", "ExternalStream", "set_stream", "StreamContext")
# Ways to ask where the program runs (a GPU, Triton's interpreter): a kernel never needs them, and a program
# that asks can compute honestly where it is verified and differently elsewhere. A static net for the plain
# spellings; the launches themselves are compared across interpreter and compiler (verify/launch_spec.py).
PROBE_ATTRS = ("is_cuda", "is_available", "get_device", "knobs", "InterpretedFunction", "interpreter",
               "device.type", "device.index")
PROBE_STRINGS = ("TRITON_INTERPRET",)


class FormatError(ValueError):
    """The candidate text is unusable; `error_class` names the format failure."""

    def __init__(self, error_class: str, message: str):
        super().__init__(message)
        self.error_class = error_class


@dataclass(frozen=True)
class Candidate:
    """A candidate implementation: the raw text and the program extracted from it."""

    text: str
    program: str

    @classmethod
    def from_text(cls, text: str) -> "Candidate":
        return cls(text=text, program=extract_program(text))


def extract_program(text: str) -> str:
    """Return the last fenced Python block of `text` (or `text` itself if it is a bare program).

    >>> extract_program("Here:\\n```python\\nx = 1\\n```\\nbetter:\\n```py title=k.py\\nx = 2\\n```")
    'x = 2\\n'
    >>> extract_program("```python\\ns = 'a ``` in a string'\\n```")
    "s = 'a ``` in a string'\\n"
    >>> extract_program("class ModelNew: pass")
    'class ModelNew: pass'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = _python_blocks(text)
    if blocks:
        return blocks[-1]
    try:
        parse(text)
    except SyntaxError:
        raise FormatError("no_code_block",
                          "no ```python code block found; put the program in one fenced block") from None
    if text.strip():
        return text  # a bare program (a .py file); the static checks judge it
    raise FormatError("no_code_block", "empty candidate; put the program in one ```python block")


def _python_blocks(text: str) -> list[str]:
    """The contents of the fenced blocks tagged as Python or untagged, in order; a block left open runs to
    the end of the text (a completion cut off by its token limit)."""
    blocks, fence, tag, body = [], None, "", []
    for line in text.split("\n"):
        if fence is None:
            m = _FENCE_OPEN.match(line)
            if m:
                fence, tag, body = m.group(1), m.group(2).lower(), []
        elif line.strip() and set(line.strip()) == {fence[0]} and len(line.strip()) >= len(fence) \
                and len(line) - len(line.lstrip(" ")) <= 3:
            if tag in PYTHON_TAGS:
                blocks.append("".join(f"{b}\n" for b in body))
            fence = None
        else:
            body.append(line)
    if fence is not None and tag in PYTHON_TAGS and any(b.strip() for b in body):
        blocks.append("".join(f"{b}\n" for b in body))
    return blocks


def check_program(program: str) -> None:
    """Run every static check; raise FormatError on the first failure."""
    try:
        tree = parse(program)
    except SyntaxError as e:
        raise FormatError("syntax_error", f"syntax error at line {e.lineno}: {e.msg}") from None
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if "ModelNew" not in classes:
        raise FormatError("missing_modelnew",
                          "the program must define `class ModelNew(nn.Module)` at top level")
    if not _triton_kernels(tree):
        raise FormatError("no_triton_kernel",
                          "no @triton.jit kernel defined; write the compute as Triton kernels")
    try:
        for base in classes["ModelNew"].bases:
            if _dotted(base).split(".")[-1] == "Model":
                raise FormatError("subclasses_model", "ModelNew must not subclass the reference Model; "
                                  "subclass nn.Module and implement forward with Triton kernels")
        _check_forbidden(tree)
        _check_assignments(tree)
        _check_streams(tree)
        _check_probes(tree)
    except RecursionError:  # _dotted on a chain of thousands of attributes
        raise FormatError("syntax_error", "the program nests expressions too deeply to be checked") from None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _triton_kernels(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                name = _dotted(dec)
                if name.endswith("jit") and ("triton" in name or name == "jit"):
                    found.append(node.name)
    return found


def _check_forbidden(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        mods = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for mod in mods:
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN_MODULES):
                raise FormatError("forbidden_construct", f"import of {mod} is not allowed in a candidate")
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            raise FormatError("forbidden_construct", f"use of {node.id} is not allowed in a candidate")
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if node.attr in FORBIDDEN_NAMES or any(dotted == f or dotted.startswith(f + ".")
                                                   for f in FORBIDDEN_MODULES if "." in f):
                raise FormatError("forbidden_construct", f"use of {dotted} is not allowed in a candidate")


def _check_probes(tree: ast.Module) -> None:
    """No question about where the program runs (PROBE_ATTRS, PROBE_STRINGS).

    >>> _check_probes(ast.parse("out = torch.empty_like(x, device=x.device)"))
    >>> _check_probes(ast.parse("if x.is_cuda: pass"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    verify.candidate.FormatError: the program asks where it runs (x.is_cuda); ...
    """
    for node in ast.walk(tree):
        what = None
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if node.attr in PROBE_ATTRS or any(dotted.endswith("." + p) for p in PROBE_ATTRS if "." in p):
                what = dotted or node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            what = next((p for p in PROBE_STRINGS if p in node.value), None)
        if what is not None:
            raise FormatError("environment_probe", f"the program asks where it runs ({what}); a candidate "
                              "must compute the same way on every device and under Triton's interpreter")


def _check_assignments(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for t in targets:
            if isinstance(t, ast.Attribute) and _dotted(t).split(".")[0] in PROTECTED_ROOTS:
                raise FormatError("monkey_patch", f"assigning {_dotted(t)} patches a library the verifier "
                                  "relies on; candidates must not modify torch, triton or timers")


def _check_streams(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in STREAM_ATTRS and "cuda" in _dotted(node):
            raise FormatError("side_stream", f"{_dotted(node)}: launch kernels on the current stream; "
                              "work on side streams is not allowed")
