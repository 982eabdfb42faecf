"""Validation of a solved graph by running its printed program.

Every program runs forward on the meta device (shapes only, no memory, any size); programs under
`run_max_elements` elements and `run_max_flops` FLOPs also run for real on the CPU, and their outputs
must be finite. Both runs check the output shapes against the graph's.
"""
from __future__ import annotations

import torch

from synth.ir import Graph


def load(code: str) -> dict:
    """Execute a KernelBench-form program and return its namespace."""
    namespace: dict = {"__name__": "synth_program"}
    exec(compile(code, "<synth program>", "exec"), namespace)
    return namespace


def run(namespace: dict, device: str) -> tuple:
    """Build the model and run forward on `device` ("meta" or "cpu"); returns the outputs as a tuple."""
    with torch.device(device), torch.no_grad():
        model = namespace["Model"](*namespace["get_init_inputs"]())
        out = model(*namespace["get_inputs"]())
    return out if isinstance(out, tuple) else (out,)


class Validator:
    """`check(graph)` returns None when the program runs, else a short reason."""

    def __init__(self, run_max_elements: int = 2**21, run_max_flops: int = 2**27) -> None:
        self.run_max_elements, self.run_max_flops = run_max_elements, run_max_flops

    def small(self, graph: Graph) -> bool:
        return graph.elements() <= self.run_max_elements and graph.flops() <= self.run_max_flops

    def check(self, graph: Graph, real: bool | None = None) -> str | None:
        """Run on meta, and for real on CPU when `real` (default: when the program is small)."""
        code = graph.to_code()
        expected = [graph.shape(n) for n in graph.outputs]
        devices = ["meta"] + (["cpu"] if (self.small(graph) if real is None else real) else [])
        for device in devices:
            try:
                outs = run(load(code), device)
            except Exception as e:  # any failure of the program is a verdict on it
                return f"{device} forward failed: {type(e).__name__}: {str(e)[:200]}"
            shapes = [tuple(o.shape) for o in outs]
            if shapes != expected:
                return f"{device} output shapes {shapes} != graph shapes {expected}"
            if device == "cpu" and not all(torch.isfinite(o).all() for o in outs):
                return "cpu forward produced NaN or Inf"
        return None
