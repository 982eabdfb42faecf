"""Teacher coverage on CPU: lower synthetic programs with `synth.teacher` and verify them for real.

    TRITON_INTERPRET=1 .venv/bin/python benchmarks/teacher/coverage.py --per-op 5 --level2 100 --level5 50

Level 1: `--per-op` programs for every compute operator in the synth registry (sampled with only that
operator enabled). Levels 2 and 5: programs over all operators (how many the teacher can lower at all),
and, while some operator is unsupported, programs over the teacher's supported operators only (how many
of those it gets right). Sizes are kept small for the Triton interpreter (`--max-dim`, `--max-elements`,
`--max-flops`). Every lowering goes through the real `verify.Verifier` (interpreter mode, no timing).
Writes `coverage_cpu.json` beside this script (or `--out`) and prints a per-operator table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")

from synth.generate import graph_at  # noqa: E402
from synth.ops import compute_ops  # noqa: E402
from synth.sampler import Sampler  # noqa: E402
from synth.solvers.propagation import PropagationSolver  # noqa: E402
from synth.teacher import Unsupported, lower, supported_ops  # noqa: E402
from synth.teacher.support import reason  # noqa: E402
from synth.validate import Validator  # noqa: E402
from verify import Verifier, VerifyConfig  # noqa: E402


def attempt(graph, name):
    """(task, program) for `graph`, or (task, Unsupported) when the teacher does not cover it."""
    task = graph.to_task(id=name, level=len(graph.compute_nodes()), source="synth")
    try:
        return task, lower(graph)
    except Unsupported as e:
        return task, e


def outcome(verdict_or_error) -> tuple[bool, str | None]:
    if isinstance(verdict_or_error, Unsupported):
        return False, "unsupported"
    if isinstance(verdict_or_error, Exception):
        return False, f"task_error: {str(verdict_or_error)[:160]}"
    v = verdict_or_error
    return v.accepted, None if v.accepted else f"{v.error_class}: {v.message[:160]}"


def run_batch(verifier, items):
    """items: [(key, task, program or Unsupported)] -> [(key, accepted, error)]."""
    todo = [(i, task, prog) for i, (_, task, prog) in enumerate(items) if isinstance(prog, str)]
    verdicts = verifier.verify_many([(t, p) for _, t, p in todo], progress=True, return_exceptions=True)
    result = [prog for _, _, prog in items]
    for (i, _, _), v in zip(todo, verdicts):
        result[i] = v
    return [(key, *outcome(r)) for (key, _, _), r in zip(items, result)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-op", type=int, default=2, help="level-1 programs per operator")
    ap.add_argument("--level2", type=int, default=20, help="level-2 programs per operator pool")
    ap.add_argument("--level5", type=int, default=10, help="level-5 programs per operator pool")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-dim", type=int, default=64)
    ap.add_argument("--max-elements", type=int, default=2**15)
    ap.add_argument("--max-flops", type=int, default=2**21)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).with_name("coverage_cpu.json")))
    args = ap.parse_args()
    caps = dict(max_dim=args.max_dim, max_elements=args.max_elements, max_flops=args.max_flops)
    validator = Validator(run_max_elements=args.max_elements, run_max_flops=args.max_flops)
    supported = sorted(supported_ops())
    registry = sorted(o.name for o in compute_ops())
    # the "supported" pool only differs from "all" while some registry operator has no lowering
    pools = [("all", None)] + ([("supported", supported)] if set(registry) - set(supported) else [])
    start = time.time()

    items = []
    for op in registry:
        for i in range(args.per_op):
            graph = graph_at(Sampler(PropagationSolver(), ops=[op], **caps), validator, args.seed, 1, i)
            if graph is None:
                print(f"[coverage] no level-1 program for {op} (index {i}) under the caps", file=sys.stderr)
                continue
            items.append(((1, op), *attempt(graph, f"teacher_l1_{op}_{i}")))
    for level, count in ((2, args.level2), (5, args.level5)):
        for pool_name, ops in pools:
            for i in range(count):
                graph = graph_at(Sampler(PropagationSolver(), ops=ops, **caps), validator, args.seed,
                                 level, i)
                if graph is not None:
                    items.append(((level, pool_name), *attempt(graph, f"teacher_l{level}_{pool_name}_{i}")))

    config = VerifyConfig(trials=5, timing=False, compile_baseline=False, timeout_s=120)
    with Verifier(config, workers=args.workers) as verifier:
        results = run_batch(verifier, items)

    per_op = {}
    for op in registry:
        rows = [(ok, err) for (lvl, key), ok, err in results if lvl == 1 and key == op]
        errors = [err for ok, err in rows if not ok]
        per_op[op] = {"supported": op in supported, "reason": None if op in supported else reason(op),
                      "tried": len(rows), "accepted": sum(ok for ok, _ in rows),
                      "first_error": errors[0] if errors else None}
    levels = {}
    for level in (2, 5):
        for pool_name, _ in pools:
            rows = [(ok, err) for (lvl, key), ok, err in results if lvl == level and key == pool_name]
            errors = [err for ok, err in rows if not ok and err != "unsupported"]
            levels[f"level{level}_{pool_name}_ops"] = {
                "tried": len(rows), "unsupported": sum(err == "unsupported" for _, err in rows),
                "accepted": sum(ok for ok, _ in rows), "errors": errors[:5]}
    sup = [v for v in per_op.values() if v["supported"] and v["tried"]]
    summary = {"supported_operators": len(supported_ops()),
               "registry_operators": len(per_op),
               "unsupported_operators": sorted(set(registry) - set(supported)),
               "level1_supported_ops_all_accepted": sum(v["accepted"] == v["tried"] for v in sup),
               "level1_programs_accepted": sum(v["accepted"] for v in sup),
               "level1_programs_tried": sum(v["tried"] for v in sup),
               "wall_s": round(time.time() - start, 1)}
    report = {"command": " ".join(["benchmarks/teacher/coverage.py"] + sys.argv[1:]), "caps": caps,
              "verify": {"trials": config.trials, "shape_variants": config.shape_variants,
                         "backend": "triton-interpreter"},
              "summary": summary, "per_op": per_op, "levels": levels}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")

    print(f"{'operator':24s} {'supported':9s} {'tried':>5s} {'ok':>3s}  first error")
    for op, v in per_op.items():
        first = v["first_error"] or ""
        mark = "yes" if v["supported"] else "no"
        print(f"{op:24s} {mark:9s} {v['tried']:5d} {v['accepted']:3d}  {first[:90]}")
    for key, v in levels.items():
        print(f"{key:24s} tried {v['tried']:3d}  unsupported {v['unsupported']:3d}  "
              f"accepted {v['accepted']:3d}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
