"""Matmul-class operators (linear, matmul, mm, bmm) as one tiled `tl.dot` kernel with a fused epilogue.

Every form is brought to a batch of products `a[batch] @ b[batch]` with `a` of shape (B, M, K) and `b` of
shape (B, K, N), read through their strides (no copies for transposed views): `mm` is one batch,
`linear` multiplies the flattened rows of `x` by `weight.t()` (bias added in the kernel), `matmul` over
rank >= 3 flattens (and broadcasts) the leading dims. Program (tile, batch) accumulates its
[BLOCK_M, BLOCK_N] tile in fp32, tiles taken in grouped order (GROUP_M row blocks walk the same column
blocks, so their B tiles are reused from L2), then runs the pointwise region that consumes the product on
the tile before storing, so `linear -> add bias -> relu` is one kernel.

The tiling (block caps, num_warps, num_stages, GROUP_M, tl.dot's precision) is the current `Tiling`'s for
the product's kind and shape bucket (`gemm_dims`; by default the tuning table's, `tuning.py`). The
default precision is "tf32x3": each fp32 product as three TF32 tensor-core products (operands split into a
TF32 high part and the remainder; the small * small term dropped), accumulated in fp32, which keeps fp32's
accuracy (within the verifier's fp32 tolerance) at tensor-core speed; "ieee" is exact fp32 on CUDA cores.
"""
from __future__ import annotations

import math

from synth.teacher import tiling
from synth.teacher.epilogue import index_args, index_call, region_body, signature

MATMUL_OPS = frozenset({"linear", "matmul", "mm", "bmm"})
_PRECISION = {"ieee": "exact fp32 products (no TF32), as in the fp32 reference",
              "tf32x3": "fp32 products as three TF32 tensor-core products (split into high and low parts): "
                        "fp32-level error"}


def gemm_dims(op: str, in_shapes: list[tuple[int, ...]],
              out_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(B, M, N, K) of the batch of products `op` computes from inputs of `in_shapes` into `out_shape`."""
    if op == "linear":
        return 1, math.prod(out_shape[:-1]), out_shape[-1], in_shapes[0][-1]
    return math.prod(out_shape[:-2]), out_shape[-2], out_shape[-1], in_shapes[0][-1]


def config(op: str, dims: tuple[int, int, int, int] | None):
    """(GemmConfig, where it comes from) for `op` on a batch of products of `dims` (B, M, N, K); unknown
    dims count as a large product."""
    b, m, n, k = dims or (1, 4096, 4096, 4096)
    return tiling.current().gemm(op, b, m, n, k)


def operand_glue(op: str, args: list[str], module: str | None, ranks: tuple[int, ...],
                 same_batch: bool) -> list[str]:
    """Glue lines defining `a` (B, M, K), `b` (B, K, N) and `shape` (the product's shape) for `op`, whose
    inputs are the glue tensors `args` of ranks `ranks`; `same_batch`: both have the same leading dims."""
    if op == "linear":
        (x,) = args
        return [f"a = {x}.reshape(1, -1, {x}.shape[-1])",
                f"b = {module}.weight.t().unsqueeze(0)  # x @ weight.T, read through weight's strides",
                f"shape = (*{x}.shape[:-1], {module}.out_features)"]
    x, y = args
    if ranks == (2, 2):
        return [f"a, b = {x}.unsqueeze(0), {y}.unsqueeze(0)", f"shape = ({x}.shape[0], {y}.shape[1])"]
    if ranks == (3, 3) and same_batch:
        return [f"a, b = {x}, {y}", f"shape = ({x}.shape[0], {x}.shape[1], {y}.shape[2])"]
    if same_batch:
        lines = [f"batch = {x}.shape[:-2]  # leading dims flattened into one batch dim"]
    else:
        lines = [f"batch = torch.broadcast_shapes({x}.shape[:-2], {y}.shape[:-2])  # broadcast leading dims"]
    return lines + [f"a = {x}.expand(*batch, *{x}.shape[-2:]).reshape(-1, *{x}.shape[-2:])",
                    f"b = {y}.expand(*batch, *{y}.shape[-2:]).reshape(-1, *{y}.shape[-2:])",
                    f"shape = (*batch, {x}.shape[-2], {y}.shape[-1])"]


def matmul_kernel(name: str, comment: str, bias: bool, n_inputs: int, strided: list[int], rank: int,
                  lines: list[str], outputs: list[str], op: str = "matmul",
                  dims: tuple[int, int, int, int] | None = None) -> str:
    """Source of the tiled matmul kernel `name`; the product is `acc`, which the epilogue `lines` (reading
    the region's outside inputs in0..) may use, and `outputs` are the values stored to out0, out1...
    `op` and `dims` (B, M, N, K) pick the tiling (its tl.dot precision is written into the kernel)."""
    precision = config(op, dims)[0].precision
    args = ["a_ptr", "b_ptr"] + (["bias_ptr"] if bias else []) + [f"in{i}_ptr" for i in range(n_inputs)]
    args += [f"out{j}_ptr" for j in range(len(outputs))]
    args += ["M", "N", "K", "stride_ab", "stride_am", "stride_ak", "stride_bb", "stride_bk", "stride_bn"]
    args += index_args(strided, rank)
    src = ["@triton.jit", *signature(name, args, ["BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", "EVEN_K"]),
           f"    # {comment}",
           "    # grouped order: GROUP_M row blocks take the column blocks in turn (their B tiles stay in "
           "L2)",
           "    pid, batch = tl.program_id(0), tl.program_id(1)",
           "    grid_m, grid_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)",
           "    width = GROUP_M * grid_n",
           "    first_m = (pid // width) * GROUP_M",
           "    group_size = min(grid_m - first_m, GROUP_M)",
           "    pid_m = first_m + (pid % width) % group_size",
           "    pid_n = (pid % width) // group_size",
           "    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)",
           "    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)",
           "    ks = tl.arange(0, BLOCK_K)",
           "    # rows / cols past the edge read wrapped-around ones (never stored): no M / N mask on the "
           "loads",
           "    a_ptrs = a_ptr + batch * stride_ab + (rows % M)[:, None] * stride_am "
           "+ ks[None, :] * stride_ak",
           "    b_ptrs = b_ptr + batch * stride_bb + ks[:, None] * stride_bk "
           "+ (cols % N)[None, :] * stride_bn",
           "    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)",
           "    for k0 in range(0, K, BLOCK_K):",
           "        if EVEN_K:  # K is a multiple of BLOCK_K: no K mask either",
           "            a = tl.load(a_ptrs)",
           "            b = tl.load(b_ptrs)",
           "        else:",
           "            a = tl.load(a_ptrs, mask=ks[None, :] + k0 < K, other=0.0)",
           "            b = tl.load(b_ptrs, mask=ks[:, None] + k0 < K, other=0.0)",
           f"        # {_PRECISION[precision]}",
           f'        acc = tl.dot(a, b, acc, input_precision="{precision}")',
           "        a_ptrs += BLOCK_K * stride_ak",
           "        b_ptrs += BLOCK_K * stride_bk"]
    if bias:
        src.append("    acc += tl.load(bias_ptr + cols, mask=cols < N, other=0.0)[None, :]")
    src += ["    # epilogue on the tile: flat offsets of its elements in the contiguous output",
            "    mask = (rows[:, None] < M) & (cols[None, :] < N)",
            "    offsets = (batch * M + rows[:, None]) * N + cols[None, :]"]
    src += [f"    {line}" for line in region_body(n_inputs, strided, rank, lines, outputs)]
    return "\n".join(src)


def launch_glue(name: str, bias: str | None, inputs: list[str], outputs: list[str], strided: list[int],
                op: str = "matmul", dims: tuple[int, int, int, int] | None = None) -> list[str]:
    """Glue after `operand_glue`: allocate `outputs`, cap the block sizes by the shapes, launch `name` with
    the tiling of `op` on products of `dims` (B, M, N, K)."""
    cfg, where = config(op, dims)
    lines = [f"{out} = torch.empty(shape, device=a.device, dtype=a.dtype)" for out in outputs]
    lines += ["M, K, N = a.shape[1], a.shape[2], b.shape[2]",
              f"# tiling: {where}",
              "# (tl.dot needs blocks of at least 16; a block is lowered to a small operand's size)",
              f"BLOCK_M = min({cfg.block_m}, max(16, triton.next_power_of_2(M)))",
              f"BLOCK_N = min({cfg.block_n}, max(16, triton.next_power_of_2(N)))",
              f"BLOCK_K = min({cfg.block_k}, max(16, triton.next_power_of_2(K)))",
              "grid = (triton.cdiv(M, BLOCK_M) * triton.cdiv(N, BLOCK_N), a.shape[0])"]
    call = (["a", "b"] + ([bias] if bias else []) + inputs + outputs
            + ["M", "N", "K", "*a.stride()", "*b.stride()"])
    call += index_call(inputs, strided)
    lines.append(f"{name}[grid]({', '.join(call)}, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, "
                 f"GROUP_M={cfg.group_m}, EVEN_K=K % BLOCK_K == 0, num_warps={cfg.num_warps}, "
                 f"num_stages={cfg.num_stages})")
    return lines
