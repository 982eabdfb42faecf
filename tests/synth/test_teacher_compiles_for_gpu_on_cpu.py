"""Every teacher lowering compiles for a GPU, not only in the interpreter: each supported operator's
level-1 program and a set of level-2 programs, with every tiling of the sweep, go through Triton's front
end for sm_90 with their real launch arguments (verify.gpu_frontend; no GPU needed). On the H100 the 2-d
and 3-d pooling kernels were once rejected (a name reused inside the window loop with another shape) while
the interpreter ran them."""
from synth.generate import graph_at
from synth.sampler import Sampler
from synth.solvers.propagation import PropagationSolver
from synth.teacher import Unsupported, lower, supported_ops
from synth.teacher.tiling import SWEEP
from synth.validate import Validator
from verify import extract_program
from verify.gpu_frontend import front_end_reports

CAPS = dict(max_dim=64, max_elements=32768, max_flops=2**21)
SEED = 20260321


def _programs():
    validator, graphs = Validator(), {}
    for op in sorted(supported_ops()):
        sampler = Sampler(PropagationSolver(), ops=[op], **CAPS)
        graphs[f"level 1 {op}"] = next(g for g in (graph_at(sampler, validator, SEED, 1, i)
                                                   for i in range(20))
                                       if g is not None)
    sampler = Sampler(PropagationSolver(), **CAPS)
    for index in range(40):
        graph = graph_at(sampler, validator, SEED, 2, index)
        if graph is not None:
            graphs[f"level 2 #{index} " + "+".join(graph.op(n).name for n in graph.compute_nodes())] = graph
    pairs = {}
    for name, graph in graphs.items():
        for i, tiling in enumerate(SWEEP):
            try:
                program = extract_program(lower(graph, tiling))
            except Unsupported:
                break
            pairs[f"{name} (tiling {i})"] = (graph.to_task(id="t", level=1).code, program)
    return pairs


def test_every_teacher_program_compiles_for_sm90():
    pairs = _programs()
    assert len(pairs) >= (len(supported_ops()) + 30) * len(SWEEP)
    reports = dict(zip(pairs, front_end_reports(list(pairs.values()))))
    failed = {name: r["errors"] for name, r in reports.items() if r["errors"]}
    assert not failed, failed
    silent = [name for name, r in reports.items() if not r["kernels"] or r["forward_error"]]
    assert not silent, {name: reports[name] for name in silent}
