"""float32 outputs of long reductions may differ from the reference by a multiple of the reference's own
rounding error (measured against a float64 twin), and no more: a lower precision stays rejected."""
import torch

from verify.compare import compare, error_floors, unstable_truths

TIGHT = {"float32": 1e-7}, {"float32": 0.0}  # atol, rtol: tight enough that the floor decides


def _sums():
    x = torch.randn(256, 16384, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref64 = x.sum(1)
    ref32 = x.float().sum(1)
    other_order = x.float().flip(1).reshape(256, 128, 128).sum(2).sum(1)  # another blocking, float32
    half_inputs = x.half().float().sum(1)  # what fp16 (or TF32-like) tiles would give
    return ref32, ref64, other_order, half_inputs


def test_another_summation_order_is_accepted_by_the_floor_alone():
    ref32, ref64, other_order, _ = _sums()
    floors = error_floors(ref32, ref64)
    absolute, relative = floors[0]
    assert 0 < absolute < 1e-3 and relative >= 0
    assert not compare(other_order, ref32, *TIGHT).ok, "the case must need the floor"
    assert compare(other_order, ref32, *TIGHT, floors=floors, floor_factor=8.0).ok


def test_lower_precision_inputs_stay_rejected():
    ref32, ref64, _, half_inputs = _sums()
    cmp = compare(half_inputs, ref32, *TIGHT, floors=error_floors(ref32, ref64), floor_factor=8.0)
    assert not cmp.ok and cmp.error_class == "wrong_values" and "rounding error" in cmp.message


def test_no_floor_where_float32_and_float64_disagree_beyond_rounding():
    a = torch.randn(1000)
    assert error_floors(a, torch.randn(1000, dtype=torch.float64)) == [(0.0, 0.0)]  # random: not comparable
    assert error_floors(a.half(), a.double()) == [(0.0, 0.0)]  # not a float32 output


def _ill_conditioned():
    """Group norm over groups of one element: (x - mean) is float32 rounding noise times 1/sqrt(eps), so the
    float32 reference is itself off from the float64 truth by far more than the tolerance."""
    x = torch.randn(64, 8, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3 + 1
    x = torch.log_softmax(x, dim=1)
    norm = torch.nn.GroupNorm(8, 8)
    with torch.no_grad():  # the output is (rounding noise) * weight, the truth 0
        norm.weight.fill_(3.0)
    ref32 = norm(x.float()).detach()
    truth = norm.double()(x).detach()
    return ref32, truth


def test_a_candidate_as_accurate_as_an_ill_conditioned_reference_is_accepted():
    ref32, truth = _ill_conditioned()
    assert error_floors(ref32, truth) == [(0.0, 0.0)], "the case must be past the floor's reach"
    truths = unstable_truths(ref32, truth)
    candidate = truth.float()  # exact to float32: disagrees with the float32 reference, not with the truth
    assert not compare(candidate, ref32, {"float32": 1e-4}, {"float32": 1e-4}).ok, (
        "the case must need the truth")
    assert compare(candidate, ref32, {"float32": 1e-4}, {"float32": 1e-4}, truths=truths).ok


def test_a_wrong_candidate_stays_rejected_with_the_truth():
    ref32, truth = _ill_conditioned()
    truths = unstable_truths(ref32, truth)
    for wrong in (ref32 + 0.05, ref32 * 30.0, torch.ones_like(ref32)):
        assert not compare(wrong, ref32, {"float32": 1e-4}, {"float32": 1e-4}, truths=truths).ok
