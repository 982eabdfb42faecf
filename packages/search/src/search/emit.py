"""Writing an assembly as one Candidate program (`class ModelNew`) that the verifier checks end to end.

The program is made of:
- the original task's module-level code (imports, constants, helpers), minus `Model` and the input makers;
- each chosen fragment candidate, its top-level names suffixed `_f<k>` (its `ModelNew` becomes
  `_Fragment<k>`) so that kernels of different fragments cannot collide;
- `ModelNew`, whose `__init__` is the original `Model.__init__` (same signature, same construction
  order, so the verifier gives it the reference's weights), then builds each fragment module and points
  its weights at the model's own (`_share`); its `forward` calls the fragment modules and runs the
  uncovered operators in PyTorch, in topological order.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from search.assembly import Segment
from search.fragments import Fragment
from verify.candidate import extract_program
from verify.pyparse import PARSE_LOCK

_DROP_FUNCS = {"get_inputs", "get_init_inputs"}

SHARE_HELPER = '''
def _share(module, tensors):
    """Point `module`'s parameters and buffers (dotted names) at tensors the model already owns."""
    for name, tensor in tensors.items():
        owner, _, leaf = name.rpartition(".")
        sub = module.get_submodule(owner) if owner else module
        if isinstance(tensor, nn.Parameter):
            setattr(sub, leaf, tensor)
        else:  # a buffer of the model (a mask) that the fragment's printed Model holds as a parameter leaf
            sub._parameters.pop(leaf, None)
            sub.register_buffer(leaf, tensor)
'''


class AssemblyError(ValueError):
    """The chosen pieces cannot be written as one program (the message says why)."""


@dataclass(frozen=True)
class Piece:
    """One segment of an assembly, with its fragment and candidate text when it is a kernel."""

    segment: Segment
    fragment: Fragment | None = None
    candidate: str | None = None


def attr_expr(key: str, root: str = "self") -> str:
    """Python expression reaching a state_dict key from the module.

    >>> attr_expr("layers.0.weight")
    'self.layers[0].weight'
    """
    out = root
    for part in key.split("."):
        if part.isidentifier():
            out += f".{part}"
        elif part.isdigit():
            out += f"[{part}]"
        else:
            raise AssemblyError(f"state key {key!r} has a part {part!r} that is neither a name nor an index")
    return out


def assemble_program(program, pieces: list[Piece]) -> str:
    """The assembled candidate program for `program` (a `search.frontend.Program`)."""
    with PARSE_LOCK:
        return _assemble(program, pieces)


def _assemble(program, pieces: list[Piece]) -> str:
    if not any(p.segment.kind == "kernel" for p in pieces):
        raise AssemblyError("an assembly needs at least one kernel fragment")
    original = ast.parse(program.task.code)
    imports: dict[str, str] = {}
    import_lines: list[str] = []
    body_lines: list[str] = []
    model_cls = None
    for stmt in original.body:
        if isinstance(stmt, ast.ClassDef) and stmt.name == "Model":
            model_cls = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            _add_import(stmt, imports, import_lines, "the task")
        elif _keep(stmt):
            body_lines.append(ast.unparse(stmt))
    if model_cls is None:
        raise AssemblyError(f"{program.task.id}: the task defines no class Model")
    for needed in ("import torch", "import torch.nn as nn"):
        _add_import(ast.parse(needed).body[0], imports, import_lines, "the assembly")

    init_extra, fragment_blocks = [], []
    for k, piece in enumerate(p for p in pieces if p.segment.kind == "kernel"):
        frag = piece.fragment
        code, cls = _rename_candidate(piece.candidate, k, imports, import_lines)
        fragment_blocks.append(
            f"# fragment {k}: operators [{frag.start}, {frag.stop}) ({', '.join(frag.task.ops)})\n{code}"
        )
        init_extra.append(f"self.fragment{k} = {cls}(*{list(frag.init_inputs)!r})")
        if frag.state_map:
            shared = ", ".join(f"{name!r}: {attr_expr(key)}" for name, key in frag.state_map.items())
            init_extra.append(f"_share(self.fragment{k}, {{{shared}}})")

    names = {n: name for n, name in zip(program.inputs, program.arg_names)}
    g = program.graph
    for node, entry in program.state.items():
        if node in program.constants:
            # a tensor the Model holds as a plain attribute does not follow .to(device): a buffer does
            names[node] = f"self._const{node}"
            init_extra.append(
                f"self.register_buffer('_const{node}', {attr_expr(entry[''])}, persistent=False)"
            )
        elif g.op_name(node) == "parameter":
            names[node] = attr_expr(entry[""])
    forward: list[str] = []
    k = 0
    for piece in pieces:
        seg = piece.segment
        if seg.kind == "kernel":
            frag = piece.fragment
            args = ", ".join(names[t] for t in frag.live_ins)
            outs = [f"t{t}" for t in frag.live_outs]
            forward.append(f"{', '.join(outs)} = self.fragment{k}({args})")
            for t in frag.live_outs:
                names[t] = f"t{t}"
            k += 1
            continue
        node = program.ops[seg.start]
        op = g.op(node)
        attr = None
        if op.module:
            attr = f"torch{node}"
            init_extra.append(f"self.{attr} = {op.init_expr(g.params(node), str)}")
            state = program.state.get(node, {})
            if state:
                shared = ", ".join(f"{s!r}: {attr_expr(key)}" for s, key in state.items())
                init_extra.append(f"_share(self.{attr}, {{{shared}}})")
        expr = op.forward_expr([names[t] for t in g.inputs_of(node)], g.params(node), attr)
        forward.append(f"t{node} = {expr}")
        names[node] = f"t{node}"
    outs = [names[t] for t in g.outputs]
    forward.append(f"return {outs[0]}" if len(outs) == 1 else f"return ({', '.join(outs)})")

    model_new = _model_new(model_cls, init_extra, program.signature, forward)
    header = f'"""Assembled by search for {program.task.id}: {_describe(pieces)}."""'
    parts = [header, "\n".join(import_lines), *body_lines, SHARE_HELPER.strip(), *fragment_blocks, model_new]
    text = "\n\n\n".join(p for p in parts if p.strip()) + "\n"
    ast.parse(text)
    return text


def _describe(pieces: list[Piece]) -> str:
    return " | ".join(f"[{p.segment.start}:{p.segment.stop}] {p.segment.kind}" for p in pieces)


def _keep(stmt: ast.stmt) -> bool:
    """Module-level statements of the task that the assembled program still needs."""
    if isinstance(stmt, ast.FunctionDef) and stmt.name in _DROP_FUNCS:
        return False
    if isinstance(stmt, ast.Expr):  # docstrings and bare calls
        return False
    if isinstance(stmt, ast.If) and "__name__" in ast.unparse(stmt.test):
        return False
    return True


def _add_import(stmt, imports: dict, lines: list, where: str) -> None:
    """Hoist an import, refusing two different modules under one name."""
    for alias in stmt.names:
        bound = alias.asname or alias.name.split(".")[0]
        source = (
            f"from {'.' * stmt.level}{stmt.module or ''} import {alias.name}"
            if isinstance(stmt, ast.ImportFrom)
            else f"import {alias.name}"
            if alias.asname is None
            else f"import {alias.name} as {alias.asname}"
        )
        if bound == "*":
            raise AssemblyError(f"{where} uses `{source}`; star imports cannot be merged")
        previous = imports.get(bound)
        if previous is None:
            imports[bound] = source
            lines.append(source)
        elif previous != source and not (
            previous.startswith("import ") and source.startswith("import ") and alias.asname is None
        ):
            raise AssemblyError(
                f"{where} binds `{bound}` with `{source}` but another piece uses `{previous}`"
            )
        elif previous != source:
            lines.append(source)  # `import a.b` next to `import a`: both bind `a` to the same package


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


class _Renamer(ast.NodeTransformer):
    """Rename module-level names, leaving function locals and class attributes alone."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        # enclosing scopes, innermost last: (is_class_body, names bound there)
        self.scopes: list[tuple[bool, set[str]]] = []

    def _shadowed(self, name: str) -> bool:
        """Bound in an enclosing function, or in the class body we are directly in (methods skip classes)."""
        for depth, (is_class, names) in enumerate(reversed(self.scopes)):
            if name in names and (not is_class or depth == 0):
                return True
        return False

    def _function(self, node):
        args = node.args
        params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        declared = {n for stmt in ast.walk(node) if isinstance(stmt, ast.Global) for n in stmt.names}
        stored = {
            n.id
            for stmt in node.body
            for n in ast.walk(stmt)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        for stmt in ast.walk(node):
            if isinstance(stmt, ast.Global):
                stmt.names = [self.mapping.get(n, n) if not self._shadowed(n) else n for n in stmt.names]
        for field in ("decorator_list", "returns"):
            value = getattr(node, field, None)
            if isinstance(value, list):
                setattr(node, field, [self.visit(v) for v in value])
            elif value is not None:
                setattr(node, field, self.visit(value))
        node.args = self.visit(node.args)
        self.scopes.append((False, (params | stored) - declared))
        node.body = [self.visit(s) for s in node.body]
        self.scopes.pop()
        return node

    def visit_FunctionDef(self, node):
        return self._function(node)

    def visit_AsyncFunctionDef(self, node):
        return self._function(node)

    def visit_Lambda(self, node):
        params = {a.arg for a in node.args.args}
        self.scopes.append((False, params))
        node.body = self.visit(node.body)
        self.scopes.pop()
        return node

    def visit_ClassDef(self, node):
        node.bases = [self.visit(b) for b in node.bases]
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        own = {
            n.id
            for stmt in node.body
            if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(stmt)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        self.scopes.append((True, own))
        node.body = [self.visit(s) for s in node.body]
        self.scopes.pop()
        return node

    def visit_Name(self, node):
        if node.id in self.mapping and not self._shadowed(node.id):
            node.id = self.mapping[node.id]
        return node


def _rename_candidate(text: str, k: int, imports: dict, import_lines: list) -> tuple[str, str]:
    """A fragment candidate's program with its top-level names made unique; returns (code, class name)."""
    tree = ast.parse(extract_program(text))
    body = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            _add_import(stmt, imports, import_lines, f"fragment {k}")
        elif isinstance(stmt, ast.ClassDef) and stmt.name == "Model":
            continue  # a copy of the reference some completions include
        elif _keep(stmt):
            body.append(stmt)
    tree.body = body
    defined = _top_level_names(tree)
    if "ModelNew" not in defined:
        raise AssemblyError(f"fragment {k}'s candidate defines no ModelNew")
    mapping = {name: f"_Fragment{k}" if name == "ModelNew" else f"{name}_f{k}" for name in defined}
    tree = _Renamer(mapping).visit(tree)
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name in mapping:
            stmt.name = mapping[stmt.name]
    return ast.unparse(tree), f"_Fragment{k}"


def _bare_super(stmt: ast.stmt) -> ast.stmt:
    """`super(Model, self).X(...)` as `super().X(...)`: the class is renamed, and KernelBench names it."""
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super":
            node.args = []
    return stmt


def _model_new(
    model_cls: ast.ClassDef, init_extra: list[str], arg_names: list[str], forward: list[str]
) -> str:
    """`class ModelNew` from the task's Model: its __init__ (plus `init_extra`) and a new forward."""
    cls = ast.parse(ast.unparse(model_cls)).body[0]
    cls.name = "ModelNew"
    cls.body = [s for s in cls.body if not (isinstance(s, ast.FunctionDef) and s.name == "forward")]
    cls.body = [
        s
        for s in cls.body
        if not (isinstance(s, ast.Expr) and isinstance(getattr(s, "value", None), ast.Constant))
    ]
    init = next((s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
    extra = [ast.parse(line).body[0] for line in init_extra]
    if init is None:
        init = ast.parse("def __init__(self):\n    super().__init__()").body[0]
        cls.body.insert(0, init)
    docs = [s for s in init.body if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)]
    init.body = [_bare_super(s) for s in init.body if s not in docs] + extra
    fwd = ast.parse(
        f"def forward(self{''.join(', ' + a for a in arg_names)}):\n"
        + "".join(f"    {line}\n" for line in forward)
    ).body[0]
    cls.body.append(fwd)
    if not cls.body:
        cls.body = [ast.Pass()]
    return re.sub(r"\n{3,}", "\n\n", ast.unparse(cls))
