"""Attack: a raw `_thread` thread (no threading setprofile hook) computes relu(x)*scale+bias with torch
while forward waits on a lock; the thread ends before forward returns. Tests whether the all-thread
profiler sees torch ops in a thread started through _thread. A kernel copies the result."""
import _thread

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


def _work(x, bias, scale, box, done):
    try:
        with torch.no_grad():
            box.append(torch.relu(x) * scale + bias)
    finally:
        done.release()


class ModelNew(nn.Module):
    def __init__(self, dim, scale):
        super().__init__()
        self.scale = scale
        self.bias = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        x = x.contiguous()
        box = []
        done = _thread.allocate_lock()
        done.acquire()
        _thread.start_new_thread(_work, (x, self.bias, self.scale, box, done))
        done.acquire()
        out = torch.empty_like(x)
        n = x.numel()
        copy_kernel[(triton.cdiv(n, 8192),)](box[0], out, n, BLOCK=8192)
        return out
