"""The teacher: a rule-based lowering of a synth IR `Graph` to one Triton candidate program.

    from synth.teacher import lower, Unsupported
    program = lower(graph)          # imports, @triton.jit kernels, class ModelNew(nn.Module)

Every operator of the synth registry is lowered:

* pointwise chains and DAG regions fuse into one kernel each (broadcasting through strides); a cat or
  stack read only by such a region is read from its two inputs by that kernel, never written;
* linear / matmul / mm / bmm become one tiled fp32 `tl.dot` kernel (batched over a grid dim) whose
  epilogue computes the pointwise region that consumes the product (bias add, activation, scale...);
  3xTF32 tensor-core products (fp32 accuracy) with the tuning table's tiling for the product's shape
  bucket by default (`tuning.py`, `tuning_h200.json`), exact fp32 (ieee) products in one tiling of the sweep;
* convolutions (1d/2d/3d, transposed) run in PyTorch without their bias (aten convolution is allowed by
  the verifier); the bias and the consuming pointwise region run as one Triton epilogue kernel; a
  returned convolution with nothing to fuse keeps its bias in PyTorch and is returned as it is while
  another output runs a kernel;
* row operators (sum, mean, amax, amin, logsumexp, std, norm, argmax, argmin, softmax, log_softmax,
  normalize, cumsum, cumprod, layer_norm, rms_norm, instance_norm) over any dims (all of them: a 0-d
  result) become one row kernel (a block of dims read in place, other dims moved last), with a producing
  pointwise region fused as a prologue and the consuming one as an epilogue when the output keeps its
  row-major order (not for argmax / argmin, whose int64 output is read by kernels of their own);
* triu / tril become one kernel over the matrix elements, with the consuming pointwise region fused;
* pooling (max, dilated or not, avg, adaptive avg; 1d/2d/3d) becomes a windowed-reduction kernel with a
  producing pointwise region as its prologue and the consuming one as its epilogue (a global average
  pool: a plane-mean kernel, after a partial-sum kernel that splits the planes when there are few); batch norm
  (training statistics and running-estimate updates, or the running estimates in eval mode) and group
  norm become looped reduction kernels with a producing pointwise region applied on load;
* layout operators (flatten, unflatten, transpose, permute, unsqueeze, squeeze, reshape, narrow, expand,
  cat, stack) stay views or copies in the glue.

`plan.py` holds the fusion plan (which operators share a kernel), `lower.py` one emitter per kernel family.

An operator registered later without a lowering raises `Unsupported(op, reason)`; `UNSUPPORTED` documents
the reason for any operator deliberately left out (none today).
"""
from synth.teacher.lower import lower, supported_ops
from synth.teacher.support import UNSUPPORTED, Unsupported

__all__ = ["UNSUPPORTED", "Unsupported", "lower", "supported_ops"]
