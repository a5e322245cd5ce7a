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


@pytest.mark.parametrize("argv, match", [
    (["board", "--out", "b.png", "--dpi", "0"], r"argument --dpi: 0 dpi is out of range"),
    (["bench", "--trials", "0"], r"argument --trials: 0 is out of range"),
    (["import", "--static", "0 32.5 45 0 0 0 1 tool0 cam", "--rig-out", "r.yaml"], r"no intrinsics given"),
])
def test_the_installed_entry_point_prints_one_line_and_exits_2(tmp_path, argv, match):
    import os
    import re
    import subprocess
    import sys

    from tests.sweep_cases import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "calibration.cli", *argv], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and re.search(match, lines[0]), p.stderr
    assert "Traceback" not in p.stderr and not list(tmp_path.iterdir())
