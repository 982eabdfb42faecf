"""Kernel lines that compute a fused pointwise region on a tile of output elements.

Shared by the pointwise kernels (a 1-D block of elements), the matmul epilogue (the [BLOCK_M, BLOCK_N]
accumulator tile) and the conv epilogue. The tile is named by `offsets`, the flat (row-major) positions
of its elements in the contiguous output, and `mask`. The region reads its outside inputs `in0, in1...`:
a dense one (contiguous, exactly the output's shape) at `offsets` itself, any other (a broadcast operand,
a strided view) through per-dim indices recovered from `offsets` and its strides in
`input.expand(shape)`, where a broadcast dim has stride 0.
"""
from __future__ import annotations


def signature(name: str, args: list[str], constexprs: list[str], width: int = 100) -> list[str]:
    """`def name(args..., CONST: tl.constexpr...):` wrapped under the opening parenthesis past `width`."""
    params = args + [f"{c}: tl.constexpr" for c in constexprs]
    lines, line = [], f"def {name}("
    indent = " " * len(line)
    for i, p in enumerate(params):
        piece = p + ("):" if i == len(params) - 1 else ", ")
        if len(line) + len(piece.rstrip()) > width and line.strip() != f"def {name}(":
            lines.append(line.rstrip())
            line = indent
        line += piece
    return lines + [line]


def index_args(strided: list[int], rank: int) -> list[str]:
    """Kernel arguments for the strided inputs: the output's sizes, then each strided input's strides."""
    if not strided:
        return []
    return [f"size{d}" for d in range(rank)] + [f"in{i}_stride{d}" for i in strided for d in range(rank)]


def index_call(names: list[str], strided: list[int]) -> list[str]:
    """Launch arguments matching `index_args`, from the glue variable `shape` (the output's shape)."""
    if not strided:
        return []
    return ["*shape"] + [f"*{names[i]}.expand(shape).stride()" for i in strided]


def region_body(n_inputs: int, strided: list[int], rank: int, lines: list[str], outputs: list[str],
                offsets: str = "offsets", mask: str = "mask",
                loaded: frozenset[int] = frozenset()) -> list[str]:
    """Load inputs in0..in{n_inputs - 1} at the tile (except those in `loaded`: the caller's lines define
    them), run `lines`, store value `outputs[j]` to `out{j}_ptr`."""
    src = []
    if strided:
        src.append(f"rest = {offsets}")
        for d in range(rank - 1, 0, -1):
            src += [f"idx{d} = rest % size{d}", f"rest = rest // size{d}"]
        src.append("idx0 = rest")
    for i in range(n_inputs):
        if i in loaded:
            continue
        where = offsets
        if i in strided:
            where = " + ".join(f"idx{d} * in{i}_stride{d}" for d in range(rank))
        src.append(f"in{i} = tl.load(in{i}_ptr + {where}, mask={mask}).to(tl.float32)")
    src += lines
    for j, value in enumerate(outputs):
        src.append(f"tl.store(out{j}_ptr + {offsets}, {value}.to(out{j}_ptr.dtype.element_ty), mask={mask})")
    return src
