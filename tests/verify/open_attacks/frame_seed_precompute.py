"""Attack: the secret input seed sits in the worker's own stack. ModelNew.__init__ raises and catches an
exception, walks the traceback's frames (tb_frame / f_back / f_locals: no forbidden name) up to
compile_stage, takes its `job` (input_seed, variants_ok), `modules` (the task and its shape variants) and
the reference `model`, regenerates every trial's inputs and runs the reference on them (no audit runs in
__init__). forward looks the answer up by the input's shape and two values and a Triton kernel copies it."""
import random

import numpy as np
import torch
import torch.nn as nn
import triton
import triton.language as tl

_ANSWERS = {}


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


def _frames():
    try:
        raise RuntimeError("walk")
    except RuntimeError as e:
        f = e.__traceback__.tb_frame
    while f is not None:
        yield f
        f = f.f_back


def _key(x):
    flat = x.reshape(-1)
    return (tuple(x.shape), float(flat[0]), float(flat[-1]))


def _precompute():
    for f in _frames():
        loc = f.f_locals
        if "job" in loc and "modules" in loc and "model" in loc:
            job, modules, model = loc["job"], loc["modules"], loc["model"]
            s = job["input_seed"]
            plan = [(0, s + t) for t in range(job["config"]["trials"])]
            plan += [(i + 1, s + 1000 + vi) for i, vi in enumerate(job["variants_ok"])]
            dev = next(model.parameters()).device
            with torch.no_grad():
                for m, seed in plan:
                    torch.manual_seed(seed)
                    np.random.seed(seed % 2**32)
                    random.seed(seed)
                    inputs = [t.to(dev) for t in modules[m].get_inputs()]
                    _ANSWERS[_key(inputs[0])] = model(*inputs).detach().clone()
            return


class ModelNew(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.randn(dim))
        self.bias = nn.Parameter(torch.randn(dim))
        if not _ANSWERS:
            _precompute()

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        src = _ANSWERS.get(_key(x), x)
        n = x.numel()
        copy_kernel[(triton.cdiv(n, 4096),)](src, out, n, BLOCK=4096)
        return out
