"""The rerun view of live results: saved to an .rrd, ok and lost results alike."""

from __future__ import annotations

import pytest

pytest.importorskip("rerun")

from graspseg.core.errors import ConfigError  # noqa: E402
from graspseg.loop import LiveResult  # noqa: E402
from graspseg.pipeline import Pipeline  # noqa: E402
from graspseg.segment import Prompt  # noqa: E402
from graspseg.viz.rerun_view import RerunViewer  # noqa: E402


def test_results_and_losses_are_saved_to_an_rrd(tmp_path, flat_frame):
    result = Pipeline().perceive(flat_frame, Prompt.from_point(320, 240))
    ok = LiveResult(0, flat_frame, "ok", result, "keyframe", "flat", 0.9, 0.05, 0.0, 0.0)
    lost = LiveResult(1, flat_frame, "lost", None, "propagated", "flat", 0.0, 0.04, 0.0, 0.0, "occluded")
    viewer = RerunViewer(str(tmp_path / "run.rrd"))
    viewer.log(ok)
    viewer.log(lost)
    viewer.close()
    data = (tmp_path / "run.rrd").read_bytes()
    assert data[:4] == b"RRF2" and len(data) > 50_000  # the image, mask, band, cloud and grasps are in it
    assert viewer.logged == 2


def test_a_viewer_target_that_is_neither_rerun_nor_an_rrd_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="give 'rerun' .* or a FILE.rrd"):
        RerunViewer(str(tmp_path / "run.mp4"))
