"""Which torch compute does a candidate's forward run outside its kernels? And poison its fresh buffers.

Two views of the same forward, because either alone can be dodged:
- a TorchDispatchMode on the calling thread sees every aten op as dispatched (after decomposition) and
  poisons allocations: every uninitialised one (`torch.empty` and friends) is filled with NaN before the
  candidate sees it, so a kernel that leaves part of its output unwritten, or accumulates into memory it
  assumes is zero, fails the correctness check. Every contiguous allocation (filled ones too: `zeros_like`,
  `full`, `clone`) also gets a poisoned guard band behind it (the candidate sees only the requested
  elements): `overruns()` counts the guards a kernel wrote into, so an off-by-one mask (`offs <= n`) that
  stores one element past the end of an output is caught even where that memory would go unnoticed.
- the profiler, recording every thread of the process (`profile_all_threads`), sees the ops a dispatch
  mode cannot: those run in another thread, under a guard that switches the modes off, inside a custom
  op (whose body runs below the mode), or in code torch.compile generated (an annotated region without
  aten ops). A sentinel op recorded at the end proves the recording was on. And no thread of the
  candidate's may run beside its forward: one started during it, or one alive at its start or end running
  code from outside the trusted places, is reported (it could compute with numpy, or finish the output
  after the audit has ended).

Nothing is exempt as "inside a kernel": Triton's own work during a launch (the interpreter's copies) is
free data movement, so a grid callable or a raised counter hides nothing. An op is free only in the `aten`
namespace (a `torch.library` op named `mylib::clone` is compute), and the dispatch tables of the free and
allowed ops are compared with those of a clean process: a kernel swapped in through `torch.library`
(computing behind the name `aten::clone`) is reported too. A forward that reads tensor data out to the
host (`.numpy()`, `.tolist()`, `__array__`, `__dlpack__`, or more than SCALAR_READS_MAX `.item()`s)
computes outside Triton as well.
"""
from __future__ import annotations

import functools
import os
import secrets
import sys
import sysconfig
import threading
from collections import Counter

import torch
from torch._C._profiler import _ExperimentalConfig
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from verify.config import FREE_TORCH_OPS, VerifyConfig
from verify.launches import poison

# allocations whose contents are undefined: poisoned, with a guard band
ALLOC_OPS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})
# allocations with defined contents: kept, with a guard band
FILLED_ALLOC_OPS = frozenset({"zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full",
                              "full_like", "new_full", "clone"})
# elements of poisoned guard band behind every contiguous allocation
GUARD = 4096
# Decompositions (see _decomposes) the profiler records but a dispatch mode never sees, which may record no
# child op at all (they returned their input or a view): free. Any other decomposition without children
# did its work unseen (a kernel swapped in through torch.library), so it computes. The dispatch tables of
# these are watched like the free ops' (a replaced kernel here would compute unseen).
PASS_THROUGH_OPS = frozenset({"to", "type_as", "resolve_conj", "resolve_neg", "conj", "movedim", "moveaxis",
                              "swapaxes", "swapdims", "broadcast_to", "broadcast_tensors", "ravel",
                              "tensor_split", "numpy_T", "mT", "reshape_as", "align_as"})
# Annotations of code torch.compile generated: it computes without recording a single aten op
COMPILED_REGIONS = ("Torch-Compiled Region", "## Call CompiledFxGraph", "CompiledFunction")
# Tensor methods that hand a tensor's data to code outside torch (numpy, Python lists, other frameworks)
HOST_EXPORTS = frozenset({"numpy", "tolist", "__array__", "__dlpack__"})
# Tensor methods that read one value out as a Python scalar: a few (a size, an epsilon) are honest glue,
# more than SCALAR_READS_MAX in one forward is the data being computed on in Python, element by element
SCALAR_READS = frozenset({"item", "__float__", "__int__", "__index__", "__bool__", "__complex__"})
SCALAR_READS_MAX = 64


# guard bands of floating-point buffers hold a NaN with a payload of their own, compared bit for bit: a
# kernel that stores a NaN past the end (computed, or read from an input's NaN tail) still changes them
_GUARD_BITS = {torch.float32: (torch.int32, 0x7FC0D1E5), torch.float64: (torch.int64, 0x7FF80000D1E5D1E5),
               torch.float16: (torch.int16, 0x7E5A), torch.bfloat16: (torch.int16, 0x7FDA)}


def _poison_guard(guard: torch.Tensor) -> None:
    if guard.dtype in _GUARD_BITS:
        int_dtype, bits = _GUARD_BITS[guard.dtype]
        guard.view(int_dtype).fill_(bits)
    else:
        poison(guard)


def _untouched(guard: torch.Tensor) -> bool:
    if guard.dtype in _GUARD_BITS:
        int_dtype, bits = _GUARD_BITS[guard.dtype]
        return bool((guard.view(int_dtype) == bits).all())
    if guard.is_floating_point() or guard.is_complex():
        return bool(torch.isnan(guard).all())
    if guard.dtype == torch.bool:
        return bool(guard.all())
    return bool((guard == torch.iinfo(guard.dtype).min).all())


def _op_name(namespace: str, name: str) -> str:
    """How an op is reported: aten ops by their bare name, any other namespace spelled out."""
    return name if namespace == "aten" else f"{namespace}::{name}"


def _listed(op: str, names) -> bool:
    """An aten op (bare name) on `names`, in place (`relu_`) or not."""
    return "::" not in op and (op in names or op.rstrip("_") in names)


# Dispatch keys whose kernels run for ordinary dense tensors; the others (sparse, quantized, Meta, ...) are
# registered lazily by torch itself and never reached by a candidate's forward.
_DENSE_KEYS = ("CPU", "CUDA", "Autograd", "AutogradCPU", "AutogradCUDA", "AutogradOther", "ADInplaceOrView",
               "BackendSelect", "CompositeImplicitAutograd", "CompositeExplicitAutograd",
               "CompositeExplicitAutogradNonFunctional", "Python", "PythonTLSSnapshot", "AutocastCPU",
               "AutocastCUDA", "Undefined")


def _watched_overloads(names) -> list[str]:
    bare = set(names)
    return sorted(n for n in torch._C._dispatch_get_all_op_names()
                  if n.startswith("aten::") and n[6:].split(".")[0] in bare)


def _dispatch_tables(overloads: list[str]) -> dict[str, tuple[str, ...]]:
    """The kernels registered for dense tensors, per overload (file and line of each registration)."""
    tables = {}
    for name in overloads:
        lines = torch._C._dispatch_dump(name).splitlines()
        tables[name] = tuple(line for line in lines if line.split(":")[0].split("[")[0] in _DENSE_KEYS)
    return tables


# Recorded when a worker imports this module, before any candidate code runs in the process.
_WATCHED = _watched_overloads({*FREE_TORCH_OPS, *PASS_THROUGH_OPS, *VerifyConfig().allowed_torch_ops})
_CLEAN_TABLES = _dispatch_tables(_WATCHED)


def replaced_kernels(ops=None) -> list[str]:
    """Free or allowed aten ops (of `ops`, bare names, when given: those a forward ran) whose dispatch table
    changed since this process started (a kernel registered through torch.library runs behind the name)."""
    watched = [n for n in _WATCHED if ops is None or n[6:].split(".")[0] in ops]
    now = _dispatch_tables(watched)
    return sorted({name.split(".")[0][6:] for name in watched if now[name] != _CLEAN_TABLES[name]})


@functools.cache
def _decomposes(op: str) -> bool:
    """Whether every overload of aten `op` (out= variants aside) is a CompositeImplicitAutograd
    decomposition: no kernel of its own, its work recorded as the ops it calls (`linear` as `t` + `addmm`,
    `conv2d` as `convolution`).

    >>> _decomposes("linear"), _decomposes("relu"), _decomposes("mul")
    (True, False, False)
    """
    try:
        overloads = getattr(torch.ops.aten, op).overloads()
    except (AttributeError, RuntimeError):
        return False
    found = []
    for overload in overloads:
        if overload == "out" or overload.endswith("_out"):  # out= variants are kernels of their own
            continue
        name = f"aten::{op}" if overload == "default" else f"aten::{op}.{overload}"
        try:
            found.append(torch._C._dispatch_has_kernel_for_dispatch_key(name, "CompositeImplicitAutograd"))
        except RuntimeError:  # an overload listed but not registered in this build
            continue
    return bool(found) and all(found)


class _HostExports(TorchFunctionMode):
    """Notes every Tensor method call that hands data to code outside torch."""

    def __init__(self, found: Counter):
        super().__init__()
        self.found = found
        self.scalar_reads = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in HOST_EXPORTS:
            self.found[f"Tensor.{name}"] += 1
        elif name in SCALAR_READS:
            self.scalar_reads += 1
            if self.scalar_reads > SCALAR_READS_MAX:
                self.found[f"Tensor.{name} (over {SCALAR_READS_MAX} scalars read out)"] += 1
        return func(*args, **(kwargs or {}))


# where trusted Python code lives: the standard library, installed packages (torch, triton) and this package
_TRUSTED_CODE = tuple({*(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")),
                       os.path.dirname(os.path.abspath(__file__))})


def foreign_threads(skip: int | None = None) -> list[str]:
    """Threads other than `skip` (a thread ident) whose stack runs code from outside the trusted places: a
    candidate's own thread, parked or busy, can compute where no dispatch mode looks (with numpy, say) or
    finish an output after the audit has ended."""
    found = []
    for ident, frame in sys._current_frames().items():
        while ident != skip and frame is not None:
            where = frame.f_code.co_filename
            if not (where.startswith(_TRUSTED_CODE) or where.startswith("<frozen")):
                found.append(f"a thread running {os.path.basename(where)}:{frame.f_lineno}")
                break
            frame = frame.f_back
    return found


class TorchAudit(TorchDispatchMode):
    """`with TorchAudit(): forward(...)` records the forward's torch compute in every thread; see the
    module docstring. `compute_ops` judges what was recorded, `overruns` the guard bands."""

    def __init__(self, poison_alloc: bool = True):
        super().__init__()
        self.poison_alloc = poison_alloc
        self.ops: Counter = Counter()
        self.guards: list[torch.Tensor] = []
        # top-level events the all-thread profiler recorded during the forward
        self._events: list = []
        # what went wrong with the recording itself (it was switched off, or never saw the sentinel)
        self.tampered: list[str] = []
        self._exports = _HostExports(self.ops)
        self._thread_hook = None
        self._profiler = None
        self._sentinel = f"drt_audit_sentinel_{secrets.token_hex(8)}"
        # a verify.record.Recorder writing down every op of the forward being recorded, or None
        self.recorder = None

    def __enter__(self):
        # the autograd profiler itself: torch.profiler.profile's first start imports Inductor (seconds)
        self._profiler = torch.autograd.profiler.profile(
            use_cpu=True, experimental_config=_ExperimentalConfig(profile_all_threads=True))
        self._profiler.__enter__()
        self._exports.__enter__()
        self._thread_hook = threading.getprofile()
        threading.setprofile(self._thread_started)
        self.tampered += foreign_threads(skip=threading.get_ident())
        return super().__enter__()

    def __exit__(self, *exc):
        try:
            super().__exit__(*exc)
        finally:
            threading.setprofile(self._thread_hook)
            self._exports.__exit__(*exc)
            self._stop_profiler()
            self.tampered += foreign_threads(skip=threading.get_ident())
        return False

    def _thread_started(self, frame, event, arg) -> None:
        """Runs first thing in every thread started through `threading` while the forward runs."""
        self.tampered.append("a thread started during forward")
        sys.setprofile(None)

    def _stop_profiler(self) -> None:
        try:
            with torch.autograd.profiler.record_function(self._sentinel):
                torch.zeros(1).add_(1)
            self._profiler.__exit__(None, None, None)
            self._events = [e for e in self._profiler.function_events if e.cpu_parent is None]
        except Exception as e:  # the candidate stopped or replaced the recording
            self.tampered.append(f"the op recording was interrupted ({type(e).__name__})")
            return
        if not any(e.name == self._sentinel for e in self._events):
            self.tampered.append("the op recording was switched off")

    def _profiled(self, free, allowed) -> Counter:
        """The outermost computing op of every subtree of recorded events that computes. An op outside the
        aten namespace computes; an aten op computes unless it is free, allowed or a pass-through (their
        internals are the library's own: a replaced kernel shows in the dispatch tables), or a pure
        decomposition (see _decomposes) whose recorded children do not compute. Children are not enough to
        clear a real kernel: a CUDA add records its output allocation as a (free) child."""
        memo: dict[int, bool] = {}

        def name_of(event) -> str | None:  # None: a user annotation (record_function), not an op
            if event.name.startswith(COMPILED_REGIONS):
                return "torch.compile"
            namespace, sep, op = event.name.partition("::")
            return _op_name(namespace, op) if sep else None

        def computes(event) -> bool:
            if id(event) not in memo:
                name = name_of(event)
                if event.name == self._sentinel:
                    memo[id(event)] = False
                elif name is None:
                    memo[id(event)] = any([computes(child) for child in event.cpu_children])
                elif name == "torch.compile" or "::" in name:
                    memo[id(event)] = True
                elif _listed(name, allowed) or _listed(name, free) or name in PASS_THROUGH_OPS:
                    memo[id(event)] = False
                elif _decomposes(name) and event.cpu_children:
                    memo[id(event)] = any([computes(child) for child in event.cpu_children])
                else:
                    memo[id(event)] = True
            return memo[id(event)]

        found: Counter = Counter()

        def report(event) -> None:
            if not computes(event):
                return
            if name_of(event) is not None:
                found[name_of(event)] += 1
            else:
                for child in event.cpu_children:
                    report(child)

        for event in self._events:
            report(event)
        return found

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.recorder is not None:
            self.recorder.before(args, kwargs)
        out = func(*args, **(kwargs or {}))
        name = _op_name(func.namespace, func.overloadpacket.__name__)
        self.ops[name] += 1
        if self.poison_alloc and name in ALLOC_OPS:
            out = self._guarded(out)
            poison(out)
        elif self.poison_alloc and name in FILLED_ALLOC_OPS:
            out = self._guarded(out, keep=True)
        if self.recorder is not None:
            self.recorder.op(func, args, kwargs, out)
        return out

    def _guarded(self, out: torch.Tensor, keep: bool = False) -> torch.Tensor:
        """`out`'s shape and dtype (and values, with `keep`), as the front of a longer buffer whose poisoned
        tail is watched."""
        if not isinstance(out, torch.Tensor) or out.numel() == 0 or not out.is_contiguous():
            return out
        buf = torch.empty(out.numel() + GUARD, dtype=out.dtype, device=out.device)
        _poison_guard(buf[out.numel():])
        self.guards.append(buf[out.numel():])
        front = buf[: out.numel()].view(out.shape)
        if keep:
            front.copy_(out)
        return front

    def overruns(self) -> int:
        """How many allocations had elements written past their end."""
        return sum(not _untouched(g) for g in self.guards)

    def compute_ops(self, free: set[str], allowed: set[str]) -> tuple[list[str], list[str]]:
        """(every non-free op seen, those of them not allowed). Ops outside the aten namespace, data read
        out to the host, kernels replaced through torch.library and a tampered recording are never free."""
        seen = {op for op in self.ops if not _listed(op, free)} | set(self._profiled(free, allowed))
        banned = {op for op in seen if not _listed(op, allowed)}
        ran = {op.rstrip("_") for op in self.op_names()} | set(self.op_names())
        banned |= {f"{op} (its kernel replaced through torch.library)" for op in replaced_kernels(ran)}
        banned |= set(self.tampered)
        return sorted(seen), sorted(banned)

    def op_names(self) -> set[str]:
        """Every op the forward ran, free or not, at any depth (what a reference uses, see allowed_for)."""
        names = set(self.ops)
        stack = list(self._events)
        while stack:
            event = stack.pop()
            namespace, sep, op = event.name.partition("::")
            if sep:
                names.add(_op_name(namespace, op))
            stack.extend(event.cpu_children)
        return names


def allowed_for(allowed, reference_ops) -> set[str]:
    """The allowed torch ops a candidate may use for one task: those its reference uses itself (a 1x1
    convolution must not stand in for a matmul).

    >>> sorted(allowed_for(["convolution", "_convolution"], {"convolution", "relu"}))
    ['convolution']
    >>> allowed_for(["convolution"], {"addmm"})
    set()
    """
    return {op for op in allowed if op in reference_ops}


_PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter, getattr(torch.nn, "Buffer", torch.Tensor))


def foreign_tensors(out, module: torch.nn.Module | None = None) -> list[str]:
    """Tensors of a type other than exactly Tensor, Parameter or Buffer: among the outputs (nested lists and
    tuples), and among `module`'s parameters and buffers. A subclass can run code whenever it is read (after
    every check), so none is accepted, a Parameter subclass included.

    >>> class Lazy(torch.nn.Parameter):
    ...     pass
    >>> foreign_tensors([torch.zeros(1), Lazy(torch.zeros(1))])
    ['output 1: Lazy']
    >>> foreign_tensors(torch.zeros(1), torch.nn.Linear(2, 2))
    []
    """
    found = []
    outs = out if isinstance(out, (list, tuple)) else [out]
    stack = [(f"output {i}" if len(outs) > 1 else "output", o) for i, o in enumerate(outs)]
    while stack:
        where, obj = stack.pop(0)
        if isinstance(obj, (list, tuple)):
            stack.extend((f"{where}[{i}]", o) for i, o in enumerate(obj))
        elif isinstance(obj, torch.Tensor) and type(obj) not in _PLAIN_TENSOR_TYPES:
            found.append(f"{where}: {type(obj).__name__}")
    if module is not None:
        tensors = [*module.named_parameters(), *module.named_buffers()]
        found += [f"{name}: {type(t).__name__}" for name, t in tensors if type(t) not in _PLAIN_TENSOR_TYPES]
    return found
