"""The bad-input sweep over frame folders: camera.json fields, colour/depth PNGs, depth .npy, masks."""

from __future__ import annotations

import pytest

from tests.sweep_cases import CAPTURE_CASES, Context, assert_refused


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("sweep_capture"))


@pytest.mark.parametrize("case", CAPTURE_CASES, ids=[c.id for c in CAPTURE_CASES])
def test_bad_frame_input_is_refused_with_a_reason(case, ctx):
    assert_refused(case, ctx)
