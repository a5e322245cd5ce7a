"""The bad-input sweep over the core loaders: transforms, intrinsics, rigs, frames, configs.

Each case (see ``tests/sweep_cases.py``) must end in the named graspseg error with a message naming the
field, the value, the unit and the fix.
"""

from __future__ import annotations

import pytest

from tests.sweep_cases import (
    CONFIG_CASES,
    FRAME_CASES,
    INTRINSICS_CASES,
    RIG_CASES,
    TRANSFORM_CASES,
    Context,
    assert_refused,
)

CASES = TRANSFORM_CASES + INTRINSICS_CASES + RIG_CASES + FRAME_CASES + CONFIG_CASES


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("sweep_core"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_reason(case, ctx):
    assert_refused(case, ctx)
