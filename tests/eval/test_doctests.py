"""The worked examples in the metric, click and RLE docstrings are right."""

import doctest

import numpy as np
import pytest

from graspseg.eval import clicks, metrics, rle


@pytest.mark.parametrize("module", [metrics, clicks, rle], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
