"""Output sets survive SIGKILL: a reused --out always holds one complete, self-consistent set."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from graspseg.capture.images import read_mask
from graspseg.core.io import output_set

SET_FILES = {"mask.png", "overlay.png", "cloud.png", "result.json"}
#: Two requests with different masks (whole mug, a part of it), alternated so old and new sets differ.
POINTS = ("whole", "part")


def _check_complete(out: Path) -> str:
    """'absent' or 'complete'; fails the test on a partial or mixed set."""
    if not out.exists():
        return "absent"
    names = {p.name for p in out.iterdir()}
    assert names == SET_FILES, f"incomplete set: {sorted(names)}"
    doc = json.loads((out / "result.json").read_text())
    mask = read_mask(out / "mask.png")
    assert int(mask.sum()) == doc["segmentation"]["mask_area_px"], "mask.png and result.json from different runs"
    return "complete"


def _perceive(sample_frame_dir: Path, out: Path, granularity: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "graspseg.cli", "perceive", "--frame", str(sample_frame_dir),
                             "--point", "352,280", "--granularity", granularity, "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


@pytest.mark.slow
def test_sigkill_never_leaves_a_mixed_or_incomplete_set(sample_frame_dir, tmp_path):
    out = tmp_path / "out"
    assert _perceive(sample_frame_dir, out, POINTS[0]).wait(120) == 0  # cold start: imports cached after it
    t0 = time.perf_counter()
    assert _perceive(sample_frame_dir, out, POINTS[1]).wait(120) == 0
    full_s = time.perf_counter() - t0
    assert _check_complete(out) == "complete"
    rng = random.Random(0)
    states, kills = [], 0
    for i in range(50):
        p = _perceive(sample_frame_dir, out, POINTS[(i + 1) % 2])
        time.sleep(rng.uniform(0.3, 0.97) * full_s)  # most kills land in the compute and write phases
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait(60)
        states.append(_check_complete(out))
    assert kills >= 25, f"only {kills} of 50 runs were still running when killed; the timing is off"
    assert set(states) == {"complete"}
    # killed writers leave temporaries; the next successful run removes them
    assert _perceive(sample_frame_dir, out, POINTS[0]).wait(120) == 0
    assert _check_complete(out) == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_output_set_keeps_the_old_set_when_writing_fails(tmp_path):
    out = tmp_path / "set"
    with output_set(out) as d:
        (d / "a.txt").write_text("old")
    with pytest.raises(RuntimeError, match="half-way"), output_set(out) as d:
        (d / "a.txt").write_text("new")
        (d / "b.txt").write_text("new")
        raise RuntimeError("failed half-way")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    assert (out / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_output_set_replaces_the_whole_set(tmp_path):
    out = tmp_path / "set"
    with output_set(out) as d:
        (d / "a.txt").write_text("1")
        (d / "stale.txt").write_text("1")
    with output_set(out) as d:
        (d / "a.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]  # nothing of the old set stays beside the new
    assert (out / "a.txt").read_text() == "2"


def test_outputs_honour_the_umask(tmp_path):
    from graspseg.core.io import atomic_write_json

    old = os.umask(0o022)
    try:
        with output_set(tmp_path / "set") as d:
            atomic_write_json(d / "r.json", {"x": np.float32(1.0)})
    finally:
        os.umask(old)
    assert (tmp_path / "set").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "set" / "r.json").stat().st_mode & 0o777 == 0o644


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".set.graspseg-tmp-{dead.pid}-abc"
    stale.mkdir()
    (stale / "mask.png").write_bytes(b"partial")
    with output_set(tmp_path / "set") as d:
        (d / "a.txt").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
