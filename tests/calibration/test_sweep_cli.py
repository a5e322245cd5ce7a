"""The bad-input sweep over every ``graspseg-calibrate`` sub-command, through ``calibration.cli.main``.

Every case must return 2 with exactly one line on stderr that matches the case's message.
"""

from __future__ import annotations

import pytest

from tests.sweep_cases import CLI_CASES, Context, assert_refused


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("sweep_cli"))


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_calibrate_refuses_bad_input_in_one_line(case, ctx):
    assert_refused(case, ctx)
