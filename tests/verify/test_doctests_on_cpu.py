"""Docstring examples of the scored and parsed parts stay true."""
import doctest
import importlib

import pytest

MODULES = ["verify.candidate", "verify.rewards", "verify.inputs", "verify.timing", "verify.device_trace", "verify.task",
           "verify.fixtures"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
