"""Replay a recorded forward (verify/record.py) in a clean process: the `replayed` check's worker side.

The replay job runs in a fresh worker, confined like a candidate's, that never imports the candidate's
module. It rebuilds the @triton.jit kernels from the program's text alone (`kernel_source`: imports of
triton / triton.language / math, module-level constants and the jit functions, each body vetted with `ast`
before anything is executed), draws new inputs from a seed only the verifier knows, rebuilds every other
storage from the recording's snapshots, and runs the recorded ATen ops and launches in order, each tensor a
view (`set_`) over the replayed storages. Its outputs go to a payload the judge compares with the reference
for the same inputs: host compute frozen into the recording is wrong for inputs the candidate never saw.
"""
from __future__ import annotations

import ast
import os
import types
from contextlib import nullcontext

import torch

from verify.audit import ALLOC_OPS, _listed, allowed_for
from verify.config import FREE_TORCH_OPS, VerifyConfig
from verify.inputs import load_module, make_inputs
from verify.launch_spec import launch_spec
from verify.launches import poison
from verify.pyparse import parse

# builtins a kernel body may call (Triton's front end supports these)
KERNEL_BUILTINS = frozenset({"range", "min", "max", "len", "int", "float", "bool", "abs", "zip", "enumerate",
                             "tuple", "list", "isinstance", "print"})
# constructs no kernel needs, each a way out of the kernel's own data
_BANNED_NODES = (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal, ast.ClassDef, ast.FunctionDef,
                 ast.AsyncFunctionDef, ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom, ast.Delete)
# attributes of the interpreter's tensors that lead to their host data
_BANNED_ATTRS = frozenset({"handle", "data"})


class ReplayError(Exception):
    pass


# ---- the kernels, from the program's text ---------------------------------------------------------------
def _allowed_import(module: str) -> bool:
    return module in ("triton", "math", "triton.language") or module.startswith("triton.language.")


def _allowed_module(obj) -> bool:
    return isinstance(obj, types.ModuleType) and _allowed_import(obj.__name__) and obj.__name__ != "triton"


def _imports(tree: ast.Module) -> list[ast.stmt]:
    """The program's imports of triton, triton.language (and below) and math, other names dropped."""
    kept = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a for a in node.names if _allowed_import(a.name)]
            if names:
                kept.append(ast.Import(names=names))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "__future__":
            kept.append(node)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _allowed_import(node.module or ""):
            kept.append(node)
    return kept


def _is_jit(decorator: ast.expr, ns: dict) -> bool:
    import triton

    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    chain = _chain(target)
    return chain is not None and chain[0] in ns and _resolve(ns[chain[0]], chain[1:]) is triton.jit


def _chain(node: ast.expr) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"] (None for anything else)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _resolve(obj, attrs: list[str]):
    """getattr along `attrs`, refusing any step into a module other than triton.language's and math."""
    for attr in attrs:
        if attr.startswith("_"):
            raise ReplayError(f"attribute {attr!r}")
        obj = getattr(obj, attr, None)
        if isinstance(obj, types.ModuleType) and not _allowed_module(obj):
            raise ReplayError(f"module {obj.__name__}")
    return obj


def vet(node: ast.AST, names: set[str], ns: dict, where: str) -> None:
    """Raise ReplayError unless `node` uses only `names`, the kernel builtins and attributes of the imported
    triton.language / math modules (no imports, no private attribute, no assignment to one, and a module
    only as the start of an attribute chain that ends outside modules: no local can hold one).

    >>> import triton.language as tl
    >>> vet(ast.parse("y = tl.exp(x)"), {"tl", "x"}, {"tl": tl}, "k")
    >>> vet(ast.parse("y = tl.core"), {"tl"}, {"tl": tl}, "k")
    Traceback (most recent call last):
    ...
    verify.replay.ReplayError: k: tl.core is a module
    """
    roots = {k for k, v in ns.items() if isinstance(v, types.ModuleType)}
    parents = {child: parent for parent in ast.walk(node) for child in ast.iter_child_nodes(parent)}
    for sub in ast.walk(node):
        if isinstance(sub, _BANNED_NODES):
            raise ReplayError(f"{where}: a {type(sub).__name__} statement")
        outermost = not isinstance(parents.get(sub), ast.Attribute)
        if isinstance(sub, ast.Attribute):
            if sub.attr.startswith("_") or sub.attr in _BANNED_ATTRS:
                raise ReplayError(f"{where}: attribute {sub.attr!r}")
            if not isinstance(sub.ctx, ast.Load):
                raise ReplayError(f"{where}: assigns to an attribute")
            chain = _chain(sub)
            if outermost and chain is not None and chain[0] in roots:
                try:
                    value = _resolve(ns[chain[0]], chain[1:])
                except ReplayError as e:
                    raise ReplayError(f"{where}: {'.'.join(chain)} reaches {e}") from None
                if isinstance(value, types.ModuleType):
                    raise ReplayError(f"{where}: {'.'.join(chain)} is a module")
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            if sub.id not in names and sub.id not in KERNEL_BUILTINS:
                raise ReplayError(f"{where}: uses {sub.id!r}")
            if sub.id in roots and outermost:
                raise ReplayError(f"{where}: module {sub.id!r} used as a value")


def _locals(fn: ast.FunctionDef) -> set[str]:
    a = fn.args
    params = {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    params |= {p.arg for p in (a.vararg, a.kwarg) if p is not None}
    stores = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    return params | stores


def kernel_source(program: str) -> tuple[str, list[str]]:
    """(the program's kernels alone as source, the jit function names). Kept: imports of triton /
    triton.language / math, module-level constants whose values use only those, and @triton.jit functions
    (other decorators, such as autotune and heuristics, dropped: the recording froze their choices).
    Raises ReplayError when a kernel uses anything else.

    >>> src, names = kernel_source("import os\\nimport triton\\nimport triton.language as tl\\nB = 4\\n"
    ...                            "@triton.autotune(configs=[], key=[])\\n@triton.jit\\n"
    ...                            "def k(x, BLOCK: tl.constexpr = B):\\n    tl.store(x, 1)\\n")
    >>> names, "os" in src, "autotune" in src
    (['k'], False, False)
    >>> kernel_source("import triton\\n@triton.jit\\ndef k(x):\\n    import os\\n")
    Traceback (most recent call last):
    ...
    verify.replay.ReplayError: kernel k: a Import statement
    """
    tree = parse(program)
    imports = _imports(tree)
    ns: dict = {}
    exec(compile(ast.fix_missing_locations(ast.Module(body=imports, type_ignores=[])), "<kernel imports>",
                 "exec"), ns)
    ns.pop("__builtins__", None)
    # a module outside triton.language and math (`from triton import runtime`) is no name a kernel may use
    ns = {k: v for k, v in ns.items()
          if not isinstance(v, types.ModuleType) or _allowed_module(v) or v.__name__ == "triton"}
    jits = [n for n in tree.body
            if isinstance(n, ast.FunctionDef) and any(_is_jit(d, ns) for d in n.decorator_list)]
    jit_names = {n.name for n in jits}
    body, consts = list(imports), set()
    for node in tree.body:
        target = _const_target(node)
        if target is None or target in jit_names:
            continue
        try:
            vet(node, set(ns) | consts, ns, f"constant {target}")
        except ReplayError:
            consts.discard(target)
            continue
        consts.add(target)
        body.append(node)
    module_names = set(ns) | consts | jit_names
    for fn in jits:
        fn.decorator_list = [d for d in fn.decorator_list if _is_jit(d, ns)][:1]
        outer = [*fn.decorator_list, *fn.args.defaults, *(d for d in fn.args.kw_defaults if d is not None),
                 *(p.annotation for p in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)
                   if p.annotation is not None), *([fn.returns] if fn.returns is not None else [])]
        for node in outer:
            vet(node, module_names, ns, f"kernel {fn.name}")
        vet(ast.Module(body=fn.body, type_ignores=[]), module_names | _locals(fn), ns, f"kernel {fn.name}")
        body.append(fn)
    return ast.unparse(ast.Module(body=body, type_ignores=[])) + "\n", sorted(jit_names)


def _const_target(node: ast.stmt) -> str | None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def build_kernels(program: str, folder: str) -> dict:
    """The program's jit functions by name, from `kernel_source` (written to `folder` and imported: Triton
    reads a kernel's source from its file)."""
    source, names = kernel_source(program)
    path = os.path.join(folder, "replay_kernels.py")
    with open(path, "w") as f:
        f.write(source)
    module = load_module(path, f"_drt_replay_kernels_{os.getpid()}")
    return {name: getattr(module, name) for name in names}


# ---- the recorded forward ---------------------------------------------------------------------------------
class _Replay:
    def __init__(self, rec: dict, kernels: dict, inputs: list, device: torch.device, allowed: set | None):
        self.rec, self.kernels, self.device, self.allowed = rec, kernels, device, allowed
        # what was launched, as verify/launch_spec.py writes it (compared with the GPU front-end check's)
        self.specs: set = set()
        self.storages: dict[str, torch.UntypedStorage] = {}
        for i, x in enumerate(inputs):
            if isinstance(x, torch.Tensor):
                self.storages[f"input:{i}"] = x.untyped_storage()
        for ref, snap in (rec.get("snapshots") or {}).items():
            if not (isinstance(ref, str) and ref.split(":")[0] in ("param", "buffer", "const")
                    and isinstance(snap, torch.Tensor) and snap.dtype == torch.uint8):
                raise ReplayError(f"a malformed snapshot {str(ref)[:60]!r}")
            self.storages[ref] = snap.to(device).untyped_storage()

    def run(self):
        for k, step in enumerate(self.rec.get("steps") or []):
            if not isinstance(step, dict):
                raise ReplayError(f"step {k} is not a mapping")
            try:
                if step.get("kind") == "launch":
                    self._launch(step)
                elif step.get("kind") == "op":
                    self._op(k, step)
                else:
                    raise ReplayError("neither an op nor a launch")
            except ReplayError as e:
                raise ReplayError(f"step {k} ({_what(step)}): {e}") from None
            except Exception as e:
                raise ReplayError(f"step {k} ({_what(step)}) raised {type(e).__name__}: {e}") from None
        return self._out(self.rec.get("out"))

    def _launch(self, step: dict) -> None:
        import triton.language as tl

        kernel = self.kernels.get(step.get("kernel"))
        if kernel is None:
            raise ReplayError("no such @triton.jit function at the program's top level")
        grid = tuple(int(g) for g in step["grid"])

        def arg(v):
            if isinstance(v, dict) and "tl_dtype" in v:
                dtype = getattr(tl, str(v["tl_dtype"]), None)
                if not isinstance(dtype, tl.dtype):
                    raise ReplayError(f"unknown Triton dtype {v['tl_dtype']!r}")
                return dtype
            return self._decode(v)

        args = [arg(a) for a in step["args"]]
        kwargs = {str(k): arg(v) for k, v in step["kwargs"].items()}
        self.specs.add(launch_spec(kernel, args, kwargs, grid))
        kernel[grid](*args, **kwargs)

    def _op(self, k: int, step: dict) -> None:
        namespace, _, full = str(step.get("name")).partition("::")
        op, _, overload = full.partition(".")
        if namespace != "aten":
            raise ReplayError("not an ATen op")
        if self.allowed is not None and not _listed(op, self.allowed):
            raise ReplayError("computes with torch outside the kernels")
        packet = getattr(torch.ops.aten, op, None)
        fn = getattr(packet, overload or "default", None) if packet is not None else None
        if not isinstance(fn, torch._ops.OpOverload):
            raise ReplayError("unknown op")
        out = fn(*self._decode(step["args"]), **{str(k): self._decode(v) for k, v in step["kwargs"].items()})
        results = list(out) if isinstance(out, (list, tuple)) else [out]
        for j, ref in enumerate(step.get("outs") or []):
            if ref == f"op:{k}:{j}":
                if j >= len(results) or not isinstance(results[j], torch.Tensor):
                    raise ReplayError(f"output {j} is not a tensor")
                self.storages[ref] = results[j].untyped_storage()
                if op in ALLOC_OPS:
                    poison(results[j])

    def _view(self, d: dict) -> torch.Tensor:
        dtype = _enum(torch.dtype, d["dtype"])
        if d["ref"] == "empty":
            return torch.empty_strided(d["size"], d["stride"], dtype=dtype, device=self.device)
        storage = self.storages.get(d["ref"])
        if storage is None:
            raise ReplayError(f"unknown storage {str(d['ref'])[:60]!r}")
        t = torch.empty(0, dtype=dtype, device=storage.device)
        return t.set_(storage, int(d["offset"]), [int(s) for s in d["size"]], [int(s) for s in d["stride"]])

    def _decode(self, v):
        if isinstance(v, list):
            return [self._decode(x) for x in v]
        if not isinstance(v, dict):
            if v is None or isinstance(v, (bool, int, float, str)):
                return v
            raise ReplayError(f"a value of type {type(v).__name__}")
        if "tensor" in v:
            return self._view(v["tensor"])
        if "dtype" in v:
            return _enum(torch.dtype, v["dtype"])
        if "device" in v:
            return torch.device("cpu") if v["device"] == "cpu" else self.device
        if "layout" in v:
            return _enum(torch.layout, v["layout"])
        if "memory_format" in v:
            return _enum(torch.memory_format, v["memory_format"])
        raise ReplayError("a malformed argument")

    def _out(self, v):
        if isinstance(v, dict) and "seq" in v:
            items = [self._out(o) for o in v["seq"]]
            return tuple(items) if v.get("tuple") else items
        out = self._decode(v)
        return out.detach().cpu().clone() if isinstance(out, torch.Tensor) else out


def _enum(kind: type, name) -> object:
    value = getattr(torch, str(name), None)
    if not isinstance(value, kind):
        raise ReplayError(f"unknown {kind.__name__} {str(name)[:40]!r}")
    return value


def _what(step: dict) -> str:
    return str(step.get("kernel") if step.get("kind") == "launch" else step.get("name"))[:80]


def replay(rec: dict, kernels: dict, inputs: list, device, allowed: set | None = None):
    """The outputs of the recorded forward on `inputs` (host copies). `allowed`: the bare ATen op names the
    recording may run (None: any). Raises ReplayError when it cannot be replayed."""
    return replay_with_specs(rec, kernels, inputs, device, allowed)[0]


def replay_with_specs(rec: dict, kernels: dict, inputs: list, device, allowed: set | None = None):
    """`replay`, and the set of launch_specs it launched (verify/launch_spec.py)."""
    if not isinstance(rec, dict):
        raise ReplayError("the recording is not a mapping")
    if rec.get("error"):
        raise ReplayError(f"the forward could not be recorded: {rec['error']}")
    steps = rec.get("steps") or []
    if not any(isinstance(s, dict) and s.get("kind") == "launch" for s in steps):
        raise ReplayError("the recording holds no Triton launch")
    run = _Replay(rec, kernels, inputs, torch.device(device), allowed)
    return run.run(), run.specs


def replay_job(job: dict, gpu_lock=None, channel=None) -> dict:
    """The replay worker: the recording (copied into this job's private folder by the verifier) run on the
    inputs of job["replay_seed"]; the outputs, or why it failed, go to the payload `replayed`."""
    from verify.worker import fp32_truth, save_payload, settle, write_source

    cfg = VerifyConfig(**job["config"])
    device = torch.device(job["device"])
    fp32_truth()
    private = os.environ.get("TMPDIR") or "."
    try:
        rec = torch.load(os.path.join(private, "recording.pt"), map_location="cpu", weights_only=True)
        kernels = build_kernels(job["program"], private)
        task = load_module(write_source(job["code"], private, "task"), f"_drt_task_{os.getpid()}")
        allowed = None if cfg.allow_torch_compute else (
            set(FREE_TORCH_OPS) | allowed_for(cfg.allowed_torch_ops, job["ref_ops"]))
        with gpu_lock.shared() if gpu_lock is not None else nullcontext():
            inputs = make_inputs(task, job["replay_seed"], device)
            with torch.no_grad():
                out, specs = replay_with_specs(rec, kernels, inputs, device, allowed)
            settle(device.type == "cuda")
        payload = {"out": out, "error": None, "launches": sorted(specs, key=repr)}
    except ReplayError as e:
        payload = {"out": None, "error": str(e)[:600], "launches": None}
    except Exception as e:
        payload = {"out": None, "error": f"{type(e).__name__}: {e}"[:600], "launches": None}
    save_payload(payload, private, "replayed")
    if channel is not None:
        channel.event("replayed")
    return {}

