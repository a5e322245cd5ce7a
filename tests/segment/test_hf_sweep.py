"""The bad-input sweep over the segmenter factory and transformers checkpoints (truncated, corrupt, partial)."""

from __future__ import annotations

import pytest

from tests.sweep_cases import SEGMENT_CASES, Context, assert_refused

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("sweep_segment"))


@pytest.mark.parametrize("case", SEGMENT_CASES, ids=[c.id for c in SEGMENT_CASES])
def test_bad_segmenter_input_is_refused(case, ctx):
    assert_refused(case, ctx)
