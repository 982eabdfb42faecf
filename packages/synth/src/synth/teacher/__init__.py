"""The teacher: a rule-based lowering of a synth IR `Graph` to one Triton candidate program.

    from synth.teacher import lower, Unsupported
    program = lower(graph)          # imports, @triton.jit kernels, class ModelNew(nn.Module)

Pointwise chains and DAG regions fuse into one kernel each (broadcasting through strides); row operators
(sum, mean, amax, amin, logsumexp, std, norm, softmax, log_softmax, normalize, cumsum, layer_norm,
rms_norm) over any dims become one row kernel after moving the dims last; layout operators stay views or
copies in the glue. Every other operator raises `Unsupported(op, reason)`; `UNSUPPORTED` documents why.
"""
from synth.teacher.lower import lower, supported_ops
from synth.teacher.support import UNSUPPORTED, Unsupported

__all__ = ["lower", "supported_ops", "Unsupported", "UNSUPPORTED"]
