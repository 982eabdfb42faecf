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
    ("```python\nimport torch\n" + KERNEL + "class ModelNew:\n    s = torch.cuda.Stream()\n```",
     "side_stream"),
])
def test_static_rejections(text, error):
    with pytest.raises(FormatError) as info:
        check_program(extract_program(text))
    assert info.value.error_class == error
    assert str(info.value)


def test_valid_program_passes():
    check_program("import torch.nn as nn\n" + KERNEL + "class ModelNew(nn.Module):\n    pass\n")


PROGRAM = "import torch.nn as nn\n" + KERNEL + "class ModelNew(nn.Module):\n    pass\n"


@pytest.mark.parametrize("fence", ["```python", "```python3", "```py title=kernel.py",
                                   "```Python {.numberLines}", "~~~python", "````python"])
def test_fences_with_info_strings_are_read(fence):
    close = fence[0] * (4 if fence.startswith("````") else 3)
    assert extract_program(f"Here it is:\n{fence}\n{PROGRAM}{close}\nDone.") == PROGRAM


def test_a_fence_inside_a_docstring_does_not_end_the_block():
    docstring = '    """Use it like this:\n    ```\n    ModelNew()(x)\n    ```\n    """\n'
    program = PROGRAM.replace("    pass\n", docstring)
    text = f"```python\n{program}```\n"
    assert extract_program(text) == program
    check_program(extract_program(text))


def test_crlf_line_endings_are_normalised():
    text = f"Answer:\r\n```python\r\n{PROGRAM}```\r\n".replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    assert extract_program(text) == PROGRAM
    check_program(extract_program(text))


def test_other_languages_are_not_the_program():
    text = f"```bash\npip install triton\n```\n```python\n{PROGRAM}```\n```text\nsome output\n```\n"
    assert extract_program(text) == PROGRAM


@pytest.mark.parametrize("text", [
    " - ".join(["tile"] * 200_000),  # one long expression: RecursionError (deeper than any limit torch sets)
    "x = " + "not " * 50000 + "a",  # MemoryError inside CPython's parser
    "x = a" + ".b" * 20000,
    "```python\n" + "y = " + "+".join(["x"] * 30000) + "\n```"])
def test_text_the_parser_cannot_hold_is_a_format_verdict(text):
    with pytest.raises(FormatError) as info:
        check_program(extract_program(text))
    assert info.value.error_class in ("no_code_block", "syntax_error")


@pytest.mark.parametrize("line", ["import torch.library", "from torch.library import custom_op",
                                  "x = torch.library.Library('aten', 'IMPL')", "import verify.launches",
                                  "from verify.launches import TRACKER"])
def test_library_overrides_and_the_verifier_are_out_of_reach(line):
    with pytest.raises(FormatError) as info:
        check_program("import torch\n" + line + "\n" + PROGRAM)
    assert info.value.error_class == "forbidden_construct"
