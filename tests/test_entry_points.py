"""Third-party backends found through entry points, as an installed package publishes them.

A fake distribution (a ``*.dist-info`` folder with ``entry_points.txt`` and its module) is put on the path, the
way ``pip install`` leaves one in site-packages; ``importlib.metadata`` finds it like any installed package.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graspseg.core import BackendNotFoundError, ConfigError
from graspseg.grasp import available_grippers, load_gripper
from graspseg.grasp.gripper import GRIPPERS
from graspseg.plugin import GraspPerception, discover_plugins, load_plugin
from graspseg.segment import SEGMENTERS, create_segmenter

REPO = Path(__file__).resolve().parents[1]

MODULE = '''
from graspseg.grasp import GripperModel, load_gripper
from graspseg.segment.backends.rgbd import RGBDSegmenter

SET_FRAME_CALLS = []


class LabSegmenter(RGBDSegmenter):
    """A lab's segmenter: the embedded one under another name, counting its encodings."""

    name = "labseg"

    def set_frame(self, frame):
        SET_FRAME_CALLS.append(frame.frame_id)
        return super().set_frame(frame)


class NotASegmenter:
    def __init__(self, **options):
        self.options = options


def lab_hand():
    fields = {k: v for k, v in load_gripper("generic").to_dict().items() if k not in ("name", "units")}
    return GripperModel(name="lab_hand", **{**fields, "max_opening_m": 0.12})


def not_a_gripper():
    return {"name": "lab_hand"}


class LabPerception:
    pass
'''

ENTRY_POINTS = """\
[graspseg.segmenters]
labseg = graspseg_fakelab:LabSegmenter
notseg = graspseg_fakelab:NotASegmenter
brokenseg = graspseg_fakelab_missing.backend:Segmenter
rgbd = graspseg_fakelab:LabSegmenter

[graspseg.grippers]
lab_hand = graspseg_fakelab:lab_hand
dict_hand = graspseg_fakelab:not_a_gripper

[graspseg.plugins]
lab = graspseg_fakelab:LabPerception
broken = graspseg_fakelab:DoesNotExist
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder laid out like site-packages holding one installed distribution, ``graspseg-fakelab``."""
    root = tmp_path_factory.mktemp("site")
    info = root / "graspseg_fakelab-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: graspseg-fakelab\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (root / "graspseg_fakelab.py").write_text(MODULE)
    return root


@pytest.fixture
def installed(site, monkeypatch):
    """The fake distribution on sys.path, with the registries reading entry points afresh (restored after)."""
    monkeypatch.syspath_prepend(str(site))
    for registry in (SEGMENTERS, GRIPPERS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        monkeypatch.setattr(registry, "_entry_points_loaded", False)
    yield site
    sys.modules.pop("graspseg_fakelab", None)


def test_a_third_party_segmenter_and_gripper_drive_the_plugin(installed, sample_frame_dir, caplog):
    import graspseg_fakelab  # the fake package's module, importable like any installed one

    from graspseg.capture import load_frame_folder
    from graspseg.segment import Prompt

    with caplog.at_level("WARNING"):
        assert "labseg" in SEGMENTERS.names()
    # a package cannot replace a built-in backend by publishing its name: it is ignored, and said so
    assert any("'rgbd = graspseg_fakelab:LabSegmenter (graspseg-fakelab 0.1)' ignored" in r.getMessage()
               for r in caplog.records)
    assert SEGMENTERS.get("rgbd").__module__ == "graspseg.segment.backends.rgbd"
    assert "lab_hand" in available_grippers() and load_gripper("lab_hand").max_opening_m == 0.12

    perception = GraspPerception.from_config({"segment": {"backend": "labseg"}}, gripper="lab_hand")
    frame = load_frame_folder(sample_frame_dir)
    results = perception.perceive_many(frame, [Prompt.from_point(352, 280), Prompt.from_point(340, 300)])
    assert graspseg_fakelab.SET_FRAME_CALLS == [frame.frame_id]  # two prompts, one encoding by the lab's backend
    assert all(r.backend == "labseg" and r.gripper.name == "lab_hand" for r in results)


def test_broken_third_party_backends_are_refused_with_the_reason(installed):
    with pytest.raises(ConfigError, match=r"segmenter 'brokenseg' comes from the entry point brokenseg = "
                                          r"graspseg_fakelab_missing.backend:Segmenter \(graspseg-fakelab 0.1\).*"
                                          r"cannot be loaded \(ModuleNotFoundError"):
        create_segmenter("brokenseg")
    with pytest.raises(ConfigError, match=r"segmenter 'notseg' built a NotASegmenter without name, accepts_text, "
                                          r"set_frame, predict, segment_all"):
        create_segmenter("notseg")
    with pytest.raises(ConfigError, match="gripper plugin 'dict_hand' gave a dict, not a GripperModel"):
        load_gripper("dict_hand")
    with pytest.raises(BackendNotFoundError, match="no segmenter named 'nope'; available: .*labseg"):
        create_segmenter("nope")


def test_perception_plugins_are_discovered_and_a_broken_one_is_named(installed):
    import graspseg_fakelab

    found = discover_plugins()
    assert found["graspseg"] is GraspPerception and found["lab"] is graspseg_fakelab.LabPerception
    assert "broken" not in found
    assert load_plugin("lab") is graspseg_fakelab.LabPerception
    with pytest.raises(BackendNotFoundError, match=r"perception plugin broken = graspseg_fakelab:DoesNotExist "
                                                   r"cannot be loaded \(AttributeError"):
        load_plugin("broken")


def test_the_command_line_uses_an_installed_backend_and_gripper(site, sample_frame_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, "-m", "graspseg.cli", "perceive", "--frame", str(sample_frame_dir),
                           "--point", "352,280", "--backend", "labseg", "--gripper", "lab_hand", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode in (0, 3), proc.stderr
    summary = json.loads(proc.stdout)
    doc = json.loads((out / "result.json").read_text())
    assert doc["backend"] == "labseg" and doc["gripper"]["name"] == "lab_hand"
    assert doc["gripper"]["max_opening_m"] == 0.12 and summary["candidates"] == doc["grasps"]["n_candidates"]
    proc = subprocess.run([sys.executable, "-m", "graspseg.cli", "segment", "--frame", str(sample_frame_dir),
                           "--point", "352,280", "--backend", "brokenseg", "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    *warnings, error = proc.stderr.strip().splitlines()  # the shadowing warning, then the one-line error
    assert error.startswith("graspseg segment: error: segmenter 'brokenseg' comes from the entry point"), error
    assert "cannot be loaded (ModuleNotFoundError" in error and all("ignored" in w for w in warnings), warnings
