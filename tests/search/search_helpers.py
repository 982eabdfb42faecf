"""Helpers for the search tests: fragment round-trip checks and synthetic programs."""

from __future__ import annotations

import torch

from search.fragments import Fragment
from search.frontend import Program, load_task_module
from verify.inputs import seed_everything


class _Recorder(torch.fx.Interpreter):
    def __init__(self, gm):
        super().__init__(gm)
        self.values = {}

    def run_node(self, n):
        out = super().run_node(n)
        self.values[n.name] = out
        return out


def original_values(program: Program, seed: int = 0):
    """(model, {IR node id: value}) from running the task's exported graph on its own inputs."""
    module = load_task_module(program.task, "_roundtrip")
    seed_everything(seed)
    model = module.Model(*module.get_init_inputs())
    seed_everything(seed + 1)
    inputs = module.get_inputs()
    ep = torch.export.export(model, tuple(inputs))
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    args, user = [], iter(inputs)
    for spec in ep.graph_signature.input_specs:
        if spec.kind.name in ("PARAMETER", "BUFFER"):
            args.append(state[spec.target].detach().clone())
        elif spec.kind.name == "CONSTANT_TENSOR":
            args.append(ep.constants[spec.target].clone())
        else:
            args.append(next(user))
    rec = _Recorder(ep.graph_module)
    with torch.no_grad():
        rec.run(*args)
    values = {n: rec.values[name] for n, name in program.fx_names.items()}
    values.update({n: x for n, x in zip(program.inputs, inputs)})
    for i, n in enumerate(program.ops):
        if n not in values:  # an intermediate of a rule that maps one ATen call onto several operators
            (values[n],) = _run_fragment(program.fragment(i, i + 1), model, values)
    return model, values


def _run_fragment(fragment: Fragment, model, values) -> tuple:
    """The fragment task's outputs, given the original's weights and the live-in values."""
    module = load_task_module(fragment.task, "_fragment")
    seed_everything(0)
    frag_model = module.Model(*module.get_init_inputs())
    fragment.load_weights(frag_model, model)
    frag_model.train(model.training)
    with torch.no_grad():
        out = frag_model(*[values[t] for t in fragment.live_ins])
    return out if isinstance(out, tuple) else (out,)


def check_fragment(program: Program, fragment: Fragment, model, values) -> None:
    """The fragment task, given the original's weights and live-in values, returns the live-out values."""
    outs = _run_fragment(fragment, model, values)
    assert len(outs) == len(fragment.live_outs), fragment.task.id
    for got, t in zip(outs, fragment.live_outs):
        want = values[t]
        assert got.shape == want.shape and got.dtype == want.dtype, (fragment.task.id, got.shape, want.shape)
        # equal_nan: synthetic programs may take log or sqrt of negative values, in both programs alike
        torch.testing.assert_close(
            got, want, rtol=1e-4, atol=1e-5, equal_nan=True, msg=lambda m: f"{fragment.task.id}: {m}"
        )


def synthetic_tasks(count: int, seed: int = 0):
    """`count` small synthetic programs from synth's sampler (k = 1, 2 or 5 operators)."""
    import random

    from synth.sampler import Sampler
    from synth.solvers.propagation import PropagationSolver

    sampler = Sampler(PropagationSolver(), max_dim=64, max_elements=2**16, max_flops=2**22)
    rng = random.Random(seed)
    tasks = []
    for i in range(count):
        graph, _ = sampler.sample(rng, (1, 2, 5)[i % 3])
        tasks.append(graph.to_task(id=f"synth/{i}", level=len(graph.compute_nodes())))
    return tasks
