"""Every teacher lowering compiles for a GPU, not only in the interpreter: each supported operator's
level-1 program and a set of level-2 programs go through Triton's front end for sm_90 with their real
launch arguments (verify.gpu_frontend; no GPU needed). On the H100 the 2-d and 3-d pooling kernels were
once rejected (a name reused inside the window loop with another shape) while the interpreter ran them."""
from synth.generate import graph_at
from synth.sampler import Sampler
from synth.solvers.propagation import PropagationSolver
from synth.teacher import Unsupported, lower, supported_ops
from synth.validate import Validator
from verify import extract_program
from verify.gpu_frontend import front_end_reports

CAPS = dict(max_dim=64, max_elements=32768, max_flops=2**21)
SEED = 20260321


def _programs():
    validator, pairs = Validator(), {}
    for op in sorted(supported_ops()):
        sampler = Sampler(PropagationSolver(), ops=[op], **CAPS)
        graph = next(g for g in (graph_at(sampler, validator, SEED, 1, i) for i in range(20)) if g is not None)
        pairs[f"level 1 {op}"] = (graph.to_task(id=op, level=1).code, extract_program(lower(graph)))
    sampler = Sampler(PropagationSolver(), **CAPS)
    for index in range(40):
        graph = graph_at(sampler, validator, SEED, 2, index)
        if graph is None:
            continue
        try:
            program = extract_program(lower(graph))
        except Unsupported:
            continue
        ops = "+".join(graph.op(n).name for n in graph.compute_nodes())
        pairs[f"level 2 #{index} {ops}"] = (graph.to_task(id=f"l2_{index}", level=2).code, program)
    return pairs


def test_every_teacher_program_compiles_for_sm90():
    pairs = _programs()
    assert len(pairs) >= len(supported_ops()) + 30
    reports = dict(zip(pairs, front_end_reports(list(pairs.values()))))
    failed = {name: r["errors"] for name, r in reports.items() if r["errors"]}
    assert not failed, failed
    silent = [name for name, r in reports.items() if not r["kernels"] or r["forward_error"]]
    assert not silent, {name: reports[name] for name in silent}
