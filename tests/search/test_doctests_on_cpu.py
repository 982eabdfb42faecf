"""The examples in the search modules' docstrings run."""

import doctest

import pytest

import search.assembly
import search.emit
import search.generators.base
import search.generators.transformers_lm
import search.prompts


@pytest.mark.parametrize(
    "module",
    [search.assembly, search.emit, search.generators.base, search.generators.transformers_lm, search.prompts],
    ids=lambda m: m.__name__,
)
def test_doctests(module):
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0
