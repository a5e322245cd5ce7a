"""Pipeline composition, its config file and the planner plugin on the bundled frame."""

from pathlib import Path

import numpy as np
import pytest

from graspseg.capture import load_frame_folder, load_ground_truth
from graspseg.core import BASE, CAMERA, TCP, CameraRig, ConfigError, NoGraspError, Transform
from graspseg.pipeline import Pipeline, PipelineConfig
from graspseg.plugin import GraspPlanningPlugin, grasp_from_tcp
from graspseg.segment import Prompt

REPO = Path(__file__).resolve().parents[1]


def test_default_yaml_matches_dataclass_defaults():
    assert PipelineConfig.from_yaml(REPO / "configs" / "default.yaml") == PipelineConfig()


def test_config_rejects_unknown_and_bad_values(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("segment:\n  granularity: medium\n")
    with pytest.raises(ConfigError, match="granularity must be one of"):
        PipelineConfig.from_yaml(p)
    with pytest.raises(ConfigError, match="unknown option"):
        PipelineConfig().with_overrides({"cloud.no_such_field": 1})


@pytest.fixture(scope="module")
def frame(sample_frame_dir):
    return load_frame_folder(sample_frame_dir)


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline()


def test_perceive_is_consistent_and_frozen(pipeline, frame, sample_frame_dir):
    result = pipeline.perceive(frame, Prompt.from_point(352, 280))
    assert result.mask[280, 352]
    assert np.array_equal(result.mask, result.mask_set.masks[result.selected_index])
    assert len(result.cloud) > 1000
    with pytest.raises(AttributeError):
        result.mask = None  # frozen
    # the object frame sits on the mug, near the clicked pixel's ray
    centre = result.shape.camera_from_object.translation
    uv = frame.intrinsics.project(centre[None])[0]
    assert np.hypot(*(uv - [352, 280])) < 60
    # every grasp is in front of the camera and above the table
    g = result.grasps
    if len(g):
        assert (g.camera_from_grasp[:, 2, 3] > 0.2).all()
        tips = g.contacts_in_camera.reshape(-1, 3)
        assert (result.cloud.plane.signed_distance(tips) > -0.005).all()
    assert result.to_dict()["segmentation"]["selected_index"] == result.selected_index


def test_embedding_reused_across_prompts(frame):
    calls = []
    p = Pipeline()
    original = p.segmenter.set_frame
    p.segmenter.set_frame = lambda f: (calls.append(f), original(f))
    p.perceive(frame, Prompt.from_point(352, 280))
    p.perceive(frame, Prompt.from_point(340, 300))
    assert len(calls) == 1


def test_mask_override_and_boundary_error(pipeline, frame, sample_frame_dir):
    gt = load_ground_truth(sample_frame_dir, (frame.height, frame.width))[0].mask
    result = pipeline.perceive(frame, Prompt.from_point(352, 280), mask_override=gt, boundary_error_px=3.0)
    assert result.selected_index == -1 and np.array_equal(result.mask, gt)
    assert result.boundary_error_px == 3.0 and result.boundary_error_source == "argument"
    assert result.grasps.boundary_error_px == 3.0


def test_plugin_poses_in_base_frame_chain_through_the_rig(frame):
    tcp_from_camera = Transform.from_rt(np.eye(3), [0.0, 0.06, 0.02], TCP, CAMERA)
    base_from_tcp = Transform.from_xyz_quat_xyzw([0.5, 0.0, 0.6], [1.0, 0.0, 0.0, 0.0], BASE, TCP)
    rig = CameraRig(frame.intrinsics, tcp_from_camera, depth_scale=1e-4)
    plugin = GraspPlanningPlugin(rig=rig, gripper="robotiq_2f85")
    response = plugin.plan(frame.with_pose(base_from_tcp), Prompt.from_point(352, 280))
    assert response.status in ("ok", "no_grasp")
    if response.status == "no_grasp":
        assert response.suggestion
        with pytest.raises(NoGraspError):
            response.raise_for_status()
        return
    assert response.frame == BASE
    g = response.grasps[0]
    res = response.result
    i = int(np.flatnonzero(res.grasps.accepted)[0])
    expected = (base_from_tcp @ tcp_from_camera).matrix @ res.grasps.camera_from_grasp[i]
    np.testing.assert_allclose(g.grasp_pose.matrix, expected, atol=1e-9)
    # the TCP target is behind the fingertips by the gripper's TCP offset, along the approach
    offset = g.grasp_pose.translation - g.tcp_target.translation
    np.testing.assert_allclose(offset, g.grasp_pose.rotation[:, 2] * plugin.pipeline.gripper.tcp_offset_m, atol=1e-9)
    back = g.tcp_target.translation - g.pregrasp_tcp.translation
    assert np.linalg.norm(back) == pytest.approx(plugin.pipeline.config.grasp.approach_distance_m)  # the swept distance


def test_grasp_from_tcp_turns_y_closing_grippers():
    class Y:
        tcp_offset_m = 0.1
        tcp_closing_axis = "y"

    t = grasp_from_tcp(Y())
    np.testing.assert_allclose(t.rotation[:, 1], [1, 0, 0])  # TCP y = grasp closing x
    np.testing.assert_allclose(t.translation, [0, 0, -0.1])


class _DropWhole:
    """Wraps a segmenter and removes its whole-object candidates (a segmenter that offers part and group only)."""

    def __init__(self, inner):
        self.inner = inner

    def set_frame(self, frame):
        self.inner.set_frame(frame)

    def predict(self, prompt):
        ms = self.inner.predict(prompt)
        keep = [i for i in range(len(ms)) if ms.granularity[i] != "whole"]
        return ms[np.array(keep)]


def test_perceive_defaults_to_the_whole_object_and_says_when_it_falls_back(sample_frame_dir):
    from graspseg.capture import load_frame_folder
    from graspseg.pipeline import Pipeline, PipelineConfig
    from graspseg.segment import Prompt, create_segmenter

    assert PipelineConfig().segment.granularity == "whole"
    frame = load_frame_folder(sample_frame_dir)
    prompt = Prompt.from_point(352, 280)
    res = Pipeline().perceive(frame, prompt)
    assert res.mask_set.granularity[res.selected_index] == "whole"
    assert not any("candidate" in n for n in res.notes)
    res = Pipeline(segmenter=_DropWhole(create_segmenter("rgbd"))).perceive(frame, prompt)
    assert res.mask_set.granularity[res.selected_index] == "group"  # group only when no whole exists ...
    assert any("no 'whole' candidate: used the 'group' mask" in n for n in res.notes)  # ... and it says so
    part = Pipeline().perceive(frame, prompt, granularity="part")
    assert part.mask_set.granularity[part.selected_index] == "part"
