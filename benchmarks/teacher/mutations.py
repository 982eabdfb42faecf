"""Mutation kill rate of the verifier on teacher programs (CPU, Triton interpreter).

    TRITON_INTERPRET=1 .venv/bin/python benchmarks/teacher/mutations.py --per-op 2 --level2 40 --per-kind 2

Programs: `--per-op` level-1 programs for every operator the teacher lowers (sampled with only that operator
enabled) and `--level2` level-2 programs over those operators, at interpreter-friendly sizes. Each is
lowered by `synth.teacher.lower` and verified by the real `verify.Verifier`; only accepted programs are
mutated. Mutations, made on the `@triton.jit` kernels' syntax tree (at most `--per-kind` of each kind per
program, picked with a fixed seed):

    mask_minus_one      a bound check `a < b` becomes `a < b - 1` (the last element is dropped)
    mask_le             `a < b` becomes `a <= b` (one element past the end is read or written)
    wrong_constant      a numeric literal of the computation becomes literal + 1
    dropped_term        a value expression `a op b` loses its right operand (becomes `a`)
    store_intermediate  a store writes an earlier intermediate value instead of the final one

Every mutant is verified like a model's completion; a mutant the verifier accepts *survives*. Survivors
are listed with their change and counted as `survived_unchanged` (the same max abs error against the
reference as the unmutated program: the outputs almost surely did not change) or `survived_changed` (the
outputs changed but stayed inside the verifier's tolerance). Some are equivalent mutants
(`<=` on a size that is a multiple of the block, so the extra lane never exists; a constant in a branch no
test input reaches), others show what the verifier cannot see (a write one element past an output; a
module buffer updated wrongly). Writes `mutations_cpu.json` beside this script (or `--out`) and prints
the kill-rate table.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")

from synth.generate import graph_at
from synth.sampler import Sampler
from synth.solvers.propagation import PropagationSolver
from synth.teacher import Unsupported, lower, supported_ops
from synth.validate import Validator
from verify import Verifier, VerifyConfig

KINDS = ("mask_minus_one", "mask_le", "wrong_constant", "dropped_term", "store_intermediate")
# tl calls whose result is data (not an index): a name assigned from one of them holds values
_VALUE_CALLS = {"load", "dot"}


def _is_jit(fn: ast.FunctionDef) -> bool:
    return any(ast.unparse(d).split("(")[0] in ("triton.jit", "jit") for d in fn.decorator_list)


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _calls(node: ast.AST) -> set[str]:
    return {n.func.attr for n in ast.walk(node)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}


def _targets(stmt: ast.stmt) -> set[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def value_names(kernel: ast.FunctionDef) -> set[str]:
    """Names that hold data values in `kernel`: assigned from tl.load / tl.dot or from other value names
    (index arithmetic, pointers and masks are not values)."""
    assigns = [s for s in ast.walk(kernel) if isinstance(s, (ast.Assign, ast.AugAssign))]
    values: set[str] = set()
    changed = True
    while changed:
        changed = False
        for s in assigns:
            if (_calls(s.value) & _VALUE_CALLS or _names(s.value) & values) and not _targets(s) <= values:
                values |= _targets(s)
                changed = True
    return values


def _parents(tree: ast.AST) -> dict:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _is_pointer(node: ast.AST) -> bool:
    return any(n.endswith(("_ptr", "_ptrs")) for n in _names(node))


def sites(program: str) -> dict[str, list[tuple[ast.AST, str]]]:
    """Per mutation kind, [(node, replacement source)] over every @triton.jit function of `program`."""
    tree = ast.parse(program)
    parents = _parents(tree)
    found = {k: [] for k in KINDS}
    for kernel in (n for n in tree.body if isinstance(n, ast.FunctionDef) and _is_jit(n)):
        values = value_names(kernel)
        for node in ast.walk(kernel):
            if (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Lt)
                    and not _names(node) & values):  # bound checks on indices, not thresholds on values
                left, right = ast.unparse(node.left), ast.unparse(node.comparators[0])
                found["mask_minus_one"].append((node, f"{left} < {right} - 1"))
                found["mask_le"].append((node, f"{left} <= {right}"))
            elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
                parent = parents.get(node)
                # literals of the arithmetic only: not call arguments (tl.arange(0, B), axis=1), subscripts
                # or keywords
                if isinstance(parent, (ast.BinOp, ast.Compare, ast.UnaryOp)):
                    found["wrong_constant"].append((node, repr(node.value + 1)))
            elif isinstance(node, ast.BinOp) and not _is_pointer(node) and (
                    _names(node) & values or _calls(node) & _VALUE_CALLS):
                found["dropped_term"].append((node, f"({ast.unparse(node.left)})"))
        found["store_intermediate"] += _store_sites(kernel, values)
    return found


def _store_sites(kernel: ast.FunctionDef, values: set[str]) -> list[tuple[ast.AST, str]]:
    """tl.store calls whose value is `name` or `name.to(...)`: swap `name` for the value assigned before
    it."""
    order: list[tuple[int, str]] = []
    for s in ast.walk(kernel):
        if isinstance(s, (ast.Assign, ast.AugAssign)):
            order += [(s.lineno, t) for t in sorted(_targets(s) & values)]
    order.sort()
    out = []
    for call in ast.walk(kernel):
        if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "tl.store" and len(call.args) >= 2):
            continue
        value = call.args[1]
        stored = value.func.value if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                                      and value.func.attr == "to") else value
        if not isinstance(stored, ast.Name) or stored.id not in values:
            continue
        last = max((line for line, name in order if name == stored.id and line < call.lineno), default=None)
        earlier = [name for line, name in order if last is not None and line < last and name != stored.id]
        if earlier:
            out.append((stored, earlier[-1]))
    return out


def apply(program: str, node: ast.AST, replacement: str) -> str:
    """`program` with the source span of `node` replaced by `replacement`."""
    lines = program.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: node.lineno - 1]) + _byte_col(lines[node.lineno - 1],
                                                                           node.col_offset)
    end = sum(len(line) for line in lines[: node.end_lineno - 1]) + _byte_col(lines[node.end_lineno - 1],
                                                                           node.end_col_offset)
    return program[:start] + replacement + program[end:]


def _byte_col(line: str, col: int) -> int:
    """ast column offsets count UTF-8 bytes; the string index of that column."""
    return len(line.encode()[:col].decode())


def mutants(program: str, rng: random.Random, per_kind: int) -> list[dict]:
    """Up to `per_kind` mutants of each kind: [{kind, change, text}]."""
    out = []
    for kind, found in sites(program).items():
        for node, replacement in rng.sample(found, min(per_kind, len(found))):
            text = apply(program, node, replacement)
            if text == program:
                continue
            out.append({"kind": kind, "line": node.lineno,
                        "change": f"`{ast.get_source_segment(program, node)}` -> `{replacement}`",
                        "text": text})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-op", type=int, default=1, help="level-1 programs per supported operator")
    ap.add_argument("--level2", type=int, default=20, help="level-2 programs over the supported operators")
    ap.add_argument("--per-kind", type=int, default=2, help="mutants of each kind per program")
    ap.add_argument("--ops", nargs="*", default=None,
                    help="only these operators (default: every supported one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-dim", type=int, default=64)
    ap.add_argument("--max-elements", type=int, default=2**15)
    ap.add_argument("--max-flops", type=int, default=2**21)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).with_name("mutations_cpu.json")))
    args = ap.parse_args()
    caps = {"max_dim": args.max_dim, "max_elements": args.max_elements, "max_flops": args.max_flops}
    validator = Validator(run_max_elements=args.max_elements, run_max_flops=args.max_flops)
    supported = sorted(supported_ops())
    unknown = sorted(set(args.ops or ()) - set(supported))
    if unknown:
        ap.error(f"--ops {unknown}: not lowered by the teacher (supported: {', '.join(supported)})")
    supported = sorted(args.ops) if args.ops else supported
    rng = random.Random(args.seed)
    start = time.time()

    programs = []
    jobs = [([op], 1, i, f"l1_{op}_{i}") for op in supported for i in range(args.per_op)]
    jobs += [(supported, 2, i, f"l2_{i}") for i in range(args.level2)]
    for ops, level, i, name in jobs:
        graph = graph_at(Sampler(PropagationSolver(), ops=ops, **caps), validator, args.seed, level, i)
        if graph is None:
            print(f"[mutations] no program for {name} under the caps", file=sys.stderr)
            continue
        try:
            program = lower(graph)
        except Unsupported as e:
            print(f"[mutations] {name}: {e}", file=sys.stderr)
            continue
        task = graph.to_task(id=f"mutation_{name}", level=level, source="synth")
        programs.append((name, task, program))

    config = VerifyConfig(trials=5, shape_variants=1, timing=False, compile_baseline=False, timeout_s=120)
    with Verifier(config, workers=args.workers) as verifier:
        baseline = verifier.verify_many([(t, p) for _, t, p in programs], progress=True, desc="teacher",
                                        return_exceptions=True)
        accepted = [x for x, v in zip(programs, baseline) if not isinstance(v, Exception) and v.accepted]
        base_err = {x[0]: v.max_abs_err for x, v in zip(programs, baseline) if not isinstance(v, Exception)}
        rejected = [(x[0], v if isinstance(v, Exception) else f"{v.error_class}: {v.message[:120]}")
                    for x, v in zip(programs, baseline) if isinstance(v, Exception) or not v.accepted]
        todo = [(name, task, m) for name, task, program in accepted
                for m in mutants(program, rng, args.per_kind)]
        verdicts = verifier.verify_many([(task, m["text"]) for _, task, m in todo], progress=True,
                                        desc="mutants", return_exceptions=True)

    per_kind = {k: {"mutants": 0, "killed": 0, "killed_at": {}, "survived_unchanged": 0,
                    "survived_changed": 0}
                for k in KINDS}
    survivors = []
    for (name, task, m), v in zip(todo, verdicts):
        row = per_kind[m["kind"]]
        row["mutants"] += 1
        if isinstance(v, Exception) or not v.accepted:
            row["killed"] += 1
            stage = "task" if isinstance(v, Exception) else f"{v.stage}/{v.error_class}"
            row["killed_at"][stage] = row["killed_at"].get(stage, 0) + 1
        else:
            unchanged = v.max_abs_err == base_err[name]
            row["survived_unchanged" if unchanged else "survived_changed"] += 1
            survivors.append({"program": name, "ops": list(task.ops), "kind": m["kind"], "line": m["line"],
                              "change": m["change"], "max_abs_err": v.max_abs_err,
                              "original_max_abs_err": base_err[name]})
    for row in per_kind.values():
        row["kill_rate"] = round(row["killed"] / row["mutants"], 4) if row["mutants"] else None
        row["killed_at"] = dict(sorted(row["killed_at"].items(), key=lambda kv: -kv[1]))
    total = sum(r["mutants"] for r in per_kind.values())
    killed = sum(r["killed"] for r in per_kind.values())
    report = {
        "command": " ".join(["benchmarks/teacher/mutations.py"] + sys.argv[1:]),
        "caps": caps,
        "verify": {"trials": config.trials, "shape_variants": config.shape_variants,
                   "backend": verifier.backend},
        "programs": {"lowered": len(programs), "accepted": len(accepted), "rejected": rejected,
                     "supported_operators": len(supported)},
        "overall": {"mutants": total, "killed": killed,
                    "kill_rate": round(killed / total, 4) if total else None},
        "per_kind": per_kind,
        "survivors": survivors,
        "wall_s": round(time.time() - start, 1),
    }
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")

    print(f"{'kind':20s} {'mutants':>7s} {'killed':>6s} {'rate':>6s} {'same':>5s} {'chg':>4s}  killed at")
    for kind, r in per_kind.items():
        rate = "-" if r["kill_rate"] is None else f"{r['kill_rate']:.3f}"
        stages = ", ".join(f"{s} {c}" for s, c in list(r["killed_at"].items())[:3])
        print(f"{kind:20s} {r['mutants']:7d} {r['killed']:6d} {rate:>6s} {r['survived_unchanged']:5d} "
              f"{r['survived_changed']:4d}  {stages}")
    o = report["overall"]
    print(f"{'overall':20s} {o['mutants']:7d} {o['killed']:6d} {o['kill_rate'] or 0:6.3f}")
    print(f"programs: {len(programs)} lowered, {len(accepted)} accepted by the verifier; "
          f"{len(survivors)} surviving mutants:")
    for s in survivors:
        print(f"  {s['program']:28s} {s['kind']:18s} line {s['line']:3d}: {s['change'][:110]}")
    print(f"wrote {args.out} ({report['wall_s']} s)")


if __name__ == "__main__":
    main()
