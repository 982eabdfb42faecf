"""Matmul-class operators (linear, matmul, mm, bmm) as one tiled `tl.dot` kernel with a fused epilogue.

Every form is brought to a batch of products `a[batch] @ b[batch]` with `a` of shape (B, M, K) and `b` of
shape (B, K, N), read through their strides (no copies for transposed views): `mm` is one batch,
`linear` multiplies the flattened rows of `x` by `weight.t()` (bias added in the kernel), `matmul` over
rank >= 3 flattens (and broadcasts) the leading dims. Program (pid_m, pid_n, batch) accumulates its
[BLOCK_M, BLOCK_N] tile in fp32 with `tl.dot(..., input_precision="ieee")` (exact fp32 products, no TF32,
so it matches PyTorch's fp32 reference; tilings with `dot_precision="tf32x3"` use tensor cores), then
runs the pointwise region that consumes the product on the tile before storing, so
`linear -> add bias -> relu` is one kernel.
"""
from __future__ import annotations

from synth.teacher import tiling
from synth.teacher.epilogue import index_args, index_call, region_body, signature

MATMUL_OPS = frozenset({"linear", "matmul", "mm", "bmm"})
_PRECISION = {"ieee": "exact fp32 products (no TF32), as in the fp32 reference",
              "tf32x3": "fp32 products as three TF32 tensor-core products (split into high and low parts): "
                        "fp32-level error"}


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
                  lines: list[str], outputs: list[str]) -> str:
    """Source of the tiled matmul kernel `name`; the product is `acc`, which the epilogue `lines` (reading
    the region's outside inputs in0..) may use, and `outputs` are the values stored to out0, out1..."""
    args = ["a_ptr", "b_ptr"] + (["bias_ptr"] if bias else []) + [f"in{i}_ptr" for i in range(n_inputs)]
    args += [f"out{j}_ptr" for j in range(len(outputs))]
    args += ["M", "N", "K", "stride_ab", "stride_am", "stride_ak", "stride_bb", "stride_bk", "stride_bn"]
    args += index_args(strided, rank)
    src = ["@triton.jit", *signature(name, args, ["BLOCK_M", "BLOCK_N", "BLOCK_K"]),
           f"    # {comment}",
           "    pid_m, pid_n, batch = tl.program_id(0), tl.program_id(1), tl.program_id(2)",
           "    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)",
           "    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)",
           "    ks = tl.arange(0, BLOCK_K)",
           "    a_ptrs = a_ptr + batch * stride_ab + rows[:, None] * stride_am + ks[None, :] * stride_ak",
           "    b_ptrs = b_ptr + batch * stride_bb + ks[:, None] * stride_bk + cols[None, :] * stride_bn",
           "    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)",
           "    for k0 in range(0, K, BLOCK_K):",
           "        a = tl.load(a_ptrs, mask=(rows[:, None] < M) & (ks[None, :] + k0 < K), other=0.0)",
           "        b = tl.load(b_ptrs, mask=(ks[:, None] + k0 < K) & (cols[None, :] < N), other=0.0)",
           f"        # {_PRECISION[tiling.current().dot_precision]}",
           f'        acc += tl.dot(a, b, input_precision="{tiling.current().dot_precision}")',
           "        a_ptrs += BLOCK_K * stride_ak",
           "        b_ptrs += BLOCK_K * stride_bk"]
    if bias:
        src.append("    acc += tl.load(bias_ptr + cols, mask=cols < N, other=0.0)[None, :]")
    src += ["    # epilogue on the tile: flat offsets of its elements in the contiguous output",
            "    mask = (rows[:, None] < M) & (cols[None, :] < N)",
            "    offsets = (batch * M + rows[:, None]) * N + cols[None, :]"]
    src += [f"    {line}" for line in region_body(n_inputs, strided, rank, lines, outputs)]
    return "\n".join(src)


def launch_glue(name: str, bias: str | None, inputs: list[str], outputs: list[str], strided: list[int]) -> list[str]:
    """Glue after `operand_glue`: allocate `outputs`, pick block sizes from the shapes, launch `name`."""
    lines = [f"{out} = torch.empty(shape, device=a.device, dtype=a.dtype)" for out in outputs]
    lines += ["M, K, N = a.shape[1], a.shape[2], b.shape[2]",
              "# tl.dot needs blocks of at least 16; 64 x 64 tiles keep few programs on small shapes",
              f"BLOCK_M = min({tiling.current().matmul_mn}, max(16, triton.next_power_of_2(M)))",
              f"BLOCK_N = min({tiling.current().matmul_mn}, max(16, triton.next_power_of_2(N)))",
              f"BLOCK_K = min({tiling.current().matmul_k}, max(16, triton.next_power_of_2(K)))",
              "grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N), a.shape[0])"]
    call = ["a", "b"] + ([bias] if bias else []) + inputs + outputs + ["M", "N", "K", "*a.stride()", "*b.stride()"]
    call += index_call(inputs, strided)
    lines.append(f"{name}[grid]({', '.join(call)}, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K)")
    return lines
