"""Correctness checks that a reward-optimising candidate would probe: an error floor that acts as absolute
slack on small values, running statistics kept under other names, shape variants that only shrink or do not
exist for literal-size tasks, and tasks whose inputs are all integers."""
import torch

from verify.compare import compare, error_floors, state_mismatch
from verify.inputs import grown, literal_sizes, shape_variants, shrunk, size_constants, zero_float_inputs

TOL = {"float32": 1e-4}


def _wide_range():
    """exp(3x): values from 1e-5 to 1e5, float32 reference and its float64 twin."""
    x = torch.randn(64, 1024, generator=torch.Generator().manual_seed(0))
    return torch.exp(x * 3.0), torch.exp(x.double() * 3.0)


def test_zeroing_the_small_values_of_a_wide_range_output_fails():
    ref32, ref64 = _wide_range()
    floors = error_floors(ref32, ref64)
    hacked = torch.where(ref32 < 0.05, torch.zeros_like(ref32), ref32)
    assert (hacked != ref32).float().mean() > 0.1, "the case must zero a good share of the values"
    cmp = compare(hacked, ref32, TOL, TOL, floors=floors, floor_factor=8.0)
    assert not cmp.ok and cmp.error_class == "wrong_values"
    old_floor = 8.0 * float((ref32.double() - ref64).abs().max())  # one absolute slack for every element
    assert bool(((hacked - ref32).abs() <= 1e-4 + old_floor + 1e-4 * ref32.abs()).all()), \
        "an absolute floor would have accepted it"


def test_an_honest_wide_range_output_passes():
    ref32, ref64 = _wide_range()
    honest = ref64.float() * (1 + 2e-7 * torch.randn(ref32.shape, generator=torch.Generator().manual_seed(1)))
    assert compare(honest, ref32, TOL, TOL, floors=error_floors(ref32, ref64), floor_factor=8.0).ok


def test_a_reduction_keeps_its_absolute_floor():
    x = torch.randn(256, 16384, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref64, ref32 = x.sum(1), x.float().sum(1)
    absolute, _ = error_floors(ref32, ref64)[0]
    assert absolute > 0.5 * float((ref32.double() - ref64).abs().max())


def test_running_statistics_are_compared_by_role_not_name():
    before = {"bn.running_mean": torch.zeros(4), "bn.running_var": torch.ones(4),
              "bn.num_batches_tracked": torch.tensor(0)}
    after = {"bn.running_mean": torch.full((4,), 0.3), "bn.running_var": torch.full((4,), 0.9),
             "bn.num_batches_tracked": torch.tensor(6)}
    renamed_stale = {"mean_estimate": torch.zeros(4), "var_estimate": torch.ones(4), "steps": torch.tensor(0)}
    msg = state_mismatch(renamed_stale, before, after, TOL, TOL)
    assert msg and "bn.running_mean" in msg and "register_buffer" in msg
    renamed_right = {"v": torch.full((4,), 0.9), "m": torch.full((4,), 0.3), "n": torch.tensor(6)}
    assert state_mismatch(renamed_right, before, after, TOL, TOL) is None
    assert state_mismatch({}, before, before, TOL, TOL) is None  # nothing the reference changed


CONST_TASK = ("import torch\nB = 64\nD = 8\nclass Model(torch.nn.Module):\n    def forward(self, x):\n"
              "        return x\ndef get_inputs():\n    return [torch.randn(B, D)]\ndef get_init_inputs():\n"
              "    return []\n")
LITERAL_TASK = ("import torch\nclass Model(torch.nn.Module):\n    def __init__(self):\n"
                "        super().__init__()\n        self.lin = torch.nn.Linear(512, 10)\n"
                "    def forward(self, x, idx):\n        return x\n"
                "def get_inputs():\n    return [torch.randn(48, 512), torch.randint(0, 10, (48,))]\n"
                "def get_init_inputs():\n    return []\n")


def test_the_first_shape_variant_grows_every_size():
    first, second = shape_variants(CONST_TASK, 2)
    assert "B = 81" in first and "D = 11" in first
    assert "B = 33" in second and "D = 5" in second
    assert all(grown(v) > v and grown(v) % 2 for v in (3, 8, 64, 1000))
    assert all(shrunk(v) < v for v in (8, 64, 1000))


def test_literal_size_tasks_get_variants_without_touching_weight_shapes():
    assert size_constants(LITERAL_TASK) == {}
    assert literal_sizes(LITERAL_TASK) == [48, 48]  # 512 is the Linear's in_features; randint's 10 is a bound
    variant = shape_variants(LITERAL_TASK, 1)[0]
    assert "torch.randn(61, 512)" in variant and "torch.randint(0, 10, (61,))" in variant


def test_integer_only_inputs_are_not_refused_as_zero():
    assert not zero_float_inputs([torch.randint(0, 5, (8,)), 3])
    assert zero_float_inputs([torch.zeros(4), torch.randint(0, 5, (8,))])
    assert not zero_float_inputs([torch.zeros(4), torch.randn(4)])


def test_sizes_written_as_arithmetic_or_through_other_names_are_varied():
    """KernelBench writes `N = 2048 * 2` and `input_shape = (batch_size, 3, 224, 224)`."""
    code = ("import torch\nN = 2048 * 2\nbatch_size = 16\nchannels = 3\n"
            "input_shape = (batch_size, channels)\n"
            "def get_inputs():\n    return [torch.rand(N, N), torch.rand(input_shape)]\n"
            "def get_init_inputs():\n    return [channels]\n")
    assert size_constants(code) == {"N": 4096, "batch_size": 16}
    grown_code = shape_variants(code, 1)[0]
    assert "N = 5121" in grown_code and "batch_size = 21" in grown_code and "channels = 3" in grown_code
