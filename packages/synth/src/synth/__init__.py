"""CSP-DAG synthesis of random PyTorch programs, and the operator IR other packages share.

Public API (everything else is internal):

* `synth.ops`: the operator registry. `get_op(name)` (raises `UnknownOpError` listing close names),
  `compute_ops()`, `creation_ops()`, `REGISTRY`. Each `Op` has a stable `name`, `arity` (tensor
  inputs), `category`, `module` (prints as an `nn.Module` built in `__init__`), `infer(in_shapes, params)`
  (concrete shape rule, raises `ShapeError`), `flops(...)`, `init_expr(...)`/`forward_expr(...)` (printing),
  and the synthesis hooks (`rank_options`, `side_ranks`, `sample_params`, `size_params`, `constrain`).
  The parameter keys of every operator are listed in its family module: `synth.ops.elementwise`
  (activations, pointwise, broadcasting binary ops), `reduce`, `norm`, `linalg`, `conv` (conv, transposed
  conv, pooling), `layout` (flatten, unflatten, transpose, permute, unsqueeze, cat, stack), `creation`.

* `synth.ir.Graph`: operators as networkx nodes, tensors as edges (one output per operator, so a tensor
  is named by its producer's node id). Build without sampling:

      g = Graph()
      x = g.input((16, 32))                                  # forward argument (get_inputs)
      h = g.add("linear", [x], in_features=32, out_features=64)
      y = g.add("add", [g.add("gelu", [h]), g.parameter((64,))])
      g.outputs = [y]
      task = g.to_task(id="demo", level=3)                   # verify.task.Task, KernelBench form

  Read it back with `nodes()` (topological), `op_name(n)`, `op(n)`, `params(n)`, `shape(n)`,
  `inputs_of(n)` (slot order), `consumers(n)`, `compute_nodes()`, `data_inputs()`, `outputs`;
  `structural_hash()`, `to_code()`, `to_dict()`/`Graph.from_dict()`.

* `synth.prompts.PromptTemplate`: the system + user messages asking for a Triton `ModelNew`.

* `synth.teacher.lower(graph) -> str`: the reference Triton lowering of a graph (a candidate program,
  no model needed); raises `synth.teacher.Unsupported(op, reason)` for operators it does not cover,
  with the reasons in `synth.teacher.UNSUPPORTED`.

* `synth.sampler.Sampler`, `synth.generate.make_program(sampler, validator, seed, level, index)`,
  `synth.validate.Validator`, the CSP language `synth.csp`, and the solvers in `synth.solvers`
  (config group `solver`: fast, cpsat, pulp).

CLI: `python -m synth n=... level=... out=...` (conf/synth.yaml), `python -m synth.merge OUT`.
"""
