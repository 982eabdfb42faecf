"""The format stage alone: extraction of the last fenced block and the static checks."""
import pytest

from verify.candidate import FormatError, check_program, extract_program

KERNEL = "import triton\n@triton.jit\ndef k(x):\n    pass\n"


def test_last_block_wins_and_bare_programs_pass():
    text = "first\n```python\na = 1\n```\nthen\n```py\nb = 2\n```\n"
    assert extract_program(text) == "b = 2\n"
    assert extract_program("x = 1\n") == "x = 1\n"


@pytest.mark.parametrize("text,error", [
    ("just prose, no code at all.", "no_code_block"),
    ("```python\ndef f(:\n```", "syntax_error"),
    ("```python\n" + KERNEL + "class Other: pass\n```", "missing_modelnew"),
    ("```python\nclass ModelNew: pass\n```", "no_triton_kernel"),
    ("```python\n" + KERNEL + "class ModelNew(Model): pass\n```", "subclasses_model"),
    ("```python\nimport ctypes\n" + KERNEL + "class ModelNew: pass\n```", "forbidden_construct"),
    ("```python\n" + KERNEL + "class ModelNew: pass\nx = eval('1')\n```", "forbidden_construct"),
    ("```python\nimport torch\n" + KERNEL + "class ModelNew: pass\ntorch.cuda.synchronize = print\n```",
     "monkey_patch"),
    ("```python\nimport time\n" + KERNEL + "class ModelNew: pass\ntime.perf_counter = lambda: 0\n```",
     "monkey_patch"),
    ("```python\nimport torch\n" + KERNEL + "class ModelNew:\n    s = torch.cuda.Stream()\n```", "side_stream"),
])
def test_static_rejections(text, error):
    with pytest.raises(FormatError) as info:
        check_program(extract_program(text))
    assert info.value.error_class == error
    assert str(info.value)


def test_valid_program_passes():
    check_program("import torch.nn as nn\n" + KERNEL + "class ModelNew(nn.Module):\n    pass\n")
