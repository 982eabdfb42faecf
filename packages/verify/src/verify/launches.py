"""Counting, auditing and switching off real Triton kernel launches.

`install()` wraps the `run` method of Triton's JIT and interpreter kernel classes once per worker,
before any candidate code is loaded. The tracker then records every launch (kernel name, stream, and
any exception it raised, even if the candidate swallowed it). Two extra modes back the faithfulness
test: `detect` notes which tensor arguments each launch wrote, and `noop` skips every launch and fills
those arguments with NaN instead, so a forward whose output survives that did not need its kernels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Launch:
    kernel: str
    stream: int


@dataclass
class LaunchTracker:
    # "off" (pass through), "count", "detect" (record written args) or "noop" (skip + poison)
    mode: str = "off"
    launches: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    # launch index -> positions of tensor args the launch wrote (filled in detect mode)
    written: dict = field(default_factory=dict)
    # a verify.record.Recorder writing down every launch of the forward being recorded, or None
    recorder: object = None

    def reset(self, mode: str) -> None:
        """Start a new forward in `mode`; `written` survives into a following noop run."""
        self.mode, self.launches, self.errors = mode, [], []
        if mode == "detect":
            self.written = {}

    def launch(self, orig, fn, args, grid, kwargs):
        name = getattr(getattr(fn, "fn", None), "__name__", None) or getattr(fn, "__name__", "kernel")
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        idx = len(self.launches)
        if self.mode == "noop":
            for pos in self.written.get(idx, ()):
                if pos < len(tensors):
                    poison(tensors[pos])
            self.launches.append(Launch(name, current_stream()))
            return None
        before = [t.clone() for t in tensors] if self.mode == "detect" else None
        recorder = self.recorder
        if recorder is not None:
            grid = recorder.launch(fn, args, grid, kwargs)
            recorder.depth += 1
        try:
            result = orig(fn, *args, grid=grid, warmup=False, **kwargs)
        except BaseException as e:
            self.errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            raise
        finally:
            if recorder is not None:
                recorder.depth -= 1
        self.launches.append(Launch(name, current_stream()))
        if before is not None:
            self.written[idx] = [i for i, (b, t) in enumerate(zip(before, tensors)) if not same(b, t)]
        return result


TRACKER = LaunchTracker()
_INSTALLED = False


def current_stream() -> int:
    return torch.cuda.current_stream().cuda_stream if torch.cuda.is_available() else 0


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise-equal contents (NaN equals NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point() or a.is_complex():
        return bool(torch.equal(a.nan_to_num(0.123), b.nan_to_num(0.123))
                    and torch.equal(a.isnan(), b.isnan()))
    return bool(torch.equal(a, b))


def poison(t: torch.Tensor) -> None:
    """Fill a tensor with values no correct program produces by accident."""
    if t.is_floating_point() or t.is_complex():
        t.fill_(float("nan"))
    elif t.dtype == torch.bool:
        t.fill_(True)
    else:
        t.fill_(torch.iinfo(t.dtype).min)


def install() -> None:
    """Wrap Triton's kernel `run` methods (idempotent). Must run before candidate code is imported."""
    global _INSTALLED
    if _INSTALLED:
        return
    import triton.runtime.jit as jit

    classes = [jit.JITFunction]
    try:
        from triton.runtime.interpreter import InterpretedFunction
        classes.append(InterpretedFunction)
    except ImportError:  # pragma: no cover - every supported Triton has the interpreter
        pass
    for cls in classes:
        orig = cls.run

        def run(self, *args, grid, warmup, _orig=orig, **kwargs):
            if warmup or TRACKER.mode == "off":
                return _orig(self, *args, grid=grid, warmup=warmup, **kwargs)
            return TRACKER.launch(_orig, self, args, grid, kwargs)

        run.__wrapped__ = orig
        cls.run = run
    _INSTALLED = True
