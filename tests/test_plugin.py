"""The planner-facing plugin: construction, rig, perceive / perceive_many / plan, schemas, discovery."""

import json

import numpy as np
import pytest

import graspseg
from graspseg.capture import load_frame_folder
from graspseg.core import (
    BASE,
    CAMERA,
    TCP,
    BackendNotFoundError,
    CameraRig,
    ConfigError,
    InputError,
    Transform,
)
from graspseg.core.errors import NoGraspError
from graspseg.pipeline import PipelineConfig
from graspseg.plugin import GraspPerception, discover_plugins, load_plugin
from graspseg.schemas import load_schema, validate
from graspseg.segment import Prompt

MUG = Prompt.from_point(352, 280)
BASE_FROM_TCP = Transform.from_xyz_quat_xyzw([0.5, 0.0, 0.6], [1.0, 0.0, 0.0, 0.0], BASE, TCP)


@pytest.fixture(scope="module")
def frame(sample_frame_dir):
    return load_frame_folder(sample_frame_dir)


@pytest.fixture(scope="module")
def rig(frame):
    return CameraRig(frame.intrinsics, Transform.from_rt(np.eye(3), [0.0, 0.06, 0.02], TCP, CAMERA), depth_scale=1e-4)


@pytest.fixture(scope="module")
def perception():
    return GraspPerception.from_config()


class CountingSegmenter:
    """Wraps a segmenter and counts image encodings."""

    def __init__(self, inner):
        self.inner, self.encodings = inner, 0

    def set_frame(self, frame):
        self.encodings += 1
        return self.inner.set_frame(frame)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_the_package_exports_the_plugin_lazily():
    assert graspseg.GraspPerception is GraspPerception and graspseg.GraspPlanningPlugin is GraspPerception
    assert graspseg.Prompt is Prompt
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        graspseg.nope  # noqa: B018


def test_from_config_takes_objects_dicts_paths_and_overrides(tmp_path, rig):
    p = tmp_path / "c.yaml"
    p.write_text("grasp:\n  approach_distance_m: 0.06\n")
    rig.save_yaml(tmp_path / "rig.yaml")
    a = GraspPerception.from_config(p, rig=tmp_path / "rig.yaml")
    assert a.approach_distance_m == 0.06 and a.rig is not None and a.rig.tcp_from_camera.name == rig.tcp_from_camera.name
    b = GraspPerception.from_config({"gripper": "robotiq_2f85"}, overrides={"grasp.approach_distance_m": 0.05})
    assert b.gripper.name == "robotiq_2f85" and b.approach_distance_m == 0.05
    c = GraspPerception.from_config(PipelineConfig(), gripper="generic")
    assert c.gripper.name == "generic" and c.approach_distance_m == PipelineConfig().grasp.approach_distance_m
    with pytest.raises(ConfigError, match="config must be a PipelineConfig, a dict or a YAML path, got int"):
        GraspPerception.from_config(3)
    with pytest.raises(ConfigError, match=r"approach_distance_m must be a distance in metres .*millimetres\?"):
        GraspPerception(approach_distance_m=80)


def test_perceive_with_a_tcp_pose_reuses_the_encoding_and_answers_in_base(frame, rig):
    perception = GraspPerception(rig=rig)
    first = perception.perceive(frame, MUG)
    assert first.grasps.base_from_grasp is None  # the frame has no robot pose
    second = perception.perceive(frame, MUG, base_from_tcp=BASE_FROM_TCP)
    assert second.timings_ms["segment.set_frame"] == 0.0  # same images: not encoded again
    assert second.grasps.base_from_grasp is not None
    expected = (BASE_FROM_TCP @ rig.tcp_from_camera).matrix @ second.grasps.camera_from_grasp[0]
    np.testing.assert_allclose(second.grasps.base_from_grasp[0], expected, atol=1e-9)
    np.testing.assert_array_equal(first.mask, second.mask)


def test_perceive_many_encodes_once_and_equals_one_by_one(frame):
    counting = GraspPerception(segmenter=None)
    counting.pipeline.segmenter = CountingSegmenter(counting.pipeline.segmenter)
    prompts = [MUG, Prompt.from_point(300, 300), Prompt.from_box(300, 230, 400, 330)]
    many = counting.perceive_many(frame, prompts)
    assert counting.pipeline.segmenter.encodings == 1 and len(many) == 3
    single = GraspPerception()
    for p, r in zip(prompts, many, strict=True):
        one = single.perceive(frame, p)
        np.testing.assert_array_equal(one.mask, r.mask)
        assert one.grasps.n_accepted == r.grasps.n_accepted and one.grasps.rejected_counts == r.grasps.rejected_counts


def test_perceive_many_refuses_bad_prompts_before_any_work(frame):
    perception = GraspPerception()
    perception.pipeline.segmenter = CountingSegmenter(perception.pipeline.segmenter)
    with pytest.raises(InputError, match="at least one prompt"):
        perception.perceive_many(frame, [])
    with pytest.raises(InputError, match="must be graspseg.Prompt objects .* got tuple"):
        perception.perceive_many(frame, [MUG, (352, 280)])
    with pytest.raises(InputError, match="outside"):
        perception.perceive_many(frame, [MUG, Prompt.from_point(5000, 10)])
    assert perception.pipeline.segmenter.encodings == 0


def test_plan_in_base_backs_off_the_swept_distance_and_matches_the_schema(frame, rig):
    perception = GraspPerception(rig=rig)
    response = perception.plan(frame, MUG, base_from_tcp=BASE_FROM_TCP, max_grasps=3)
    assert response.status == "ok" and response.frame == BASE and 1 <= len(response.grasps) <= 3
    for g in response.grasps:
        back = g.tcp_target.translation - g.pregrasp_tcp.translation
        assert np.linalg.norm(back) == pytest.approx(perception.config.grasp.approach_distance_m)
        np.testing.assert_allclose(back / np.linalg.norm(back), g.grasp_pose.rotation[:, 2], atol=1e-9)
    doc = json.loads(json.dumps(response.to_dict()))
    validate(doc, "grasp_response")
    assert doc["approach_distance_m"] == perception.config.grasp.approach_distance_m
    assert {doc["grasps"][0][k]["frame_id"] for k in ("grasp", "tcp_target", "pregrasp_tcp")} == {BASE}
    assert [doc["grasps"][0][k]["child_frame_id"] for k in ("grasp", "tcp_target", "pregrasp_tcp")] == \
        ["grasp", "tcp", "tcp"]
    with pytest.raises(ConfigError, match="max_grasps must be a positive integer, got 0"):
        perception.respond(response.result, max_grasps=0)


def test_no_grasp_is_a_status_with_reasons_that_matches_the_schema(frame, perception):
    response = perception.plan(frame, MUG, boundary_error_px=40.0)
    assert response.status == "no_grasp" and response.grasps == () and response.suggestion
    doc = response.to_dict()
    validate(doc, "grasp_response")
    assert sum(doc["rejected_counts"].values()) == response.result.grasps.n_candidates
    with pytest.raises(NoGraspError, match="no grasp accepted"):
        response.raise_for_status()


def test_result_json_names_the_frame_of_every_vector_and_is_compact_on_request(frame, rig):
    result = GraspPerception(rig=rig).perceive(frame, MUG, base_from_tcp=BASE_FROM_TCP)
    full, compact = result.to_dict(), result.to_dict(compact=True)
    for doc in (full, compact):
        validate(json.loads(json.dumps(doc)), "perception_result")
    g = full["grasps"]["grasps"][0]
    assert {"approach_in_camera", "closing_in_camera", "approach_in_base", "closing_in_base", "contacts_in_base"} <= set(g)
    assert "approach" not in g and "closing" not in g
    base_from_grasp = np.array(g["base_from_grasp"])
    np.testing.assert_allclose(g["approach_in_base"], base_from_grasp[:3, 2], atol=1e-12)
    base_from_camera = np.array(full["cloud"]["base_from_camera"]["matrix"])
    contacts = np.array(g["contacts_in_camera"]) @ base_from_camera[:3, :3].T + base_from_camera[:3, 3]
    np.testing.assert_allclose(g["contacts_in_base"], contacts, atol=1e-9)
    cg = compact["grasps"]
    assert cg["compact"] and len(cg["grasps"]) == min(5, result.grasps.n_accepted)
    assert all(x["accepted"] for x in cg["grasps"])
    assert len(json.dumps(compact)) < len(json.dumps(full)) / 5


def test_a_document_that_breaks_the_schema_is_refused_with_its_path(frame, perception):
    doc = perception.perceive(frame, MUG).to_dict(compact=True)
    doc["grasps"]["grasps"][0]["rejected_because"] = "bad luck"
    with pytest.raises(InputError, match=r"perception_result schema at grasps/grasps/0/rejected_because"):
        validate(doc)
    with pytest.raises(InputError, match="no schema 'nope'; graspseg ships perception_result, grasp_response"):
        load_schema("nope")


def test_the_schemas_list_exactly_the_planners_reject_reasons():
    from graspseg.grasp import REJECT_REASONS

    result = load_schema("perception_result")["$defs"]
    assert result["grasp"]["properties"]["rejected_because"]["enum"] == ["", *REJECT_REASONS]
    assert result["grasp_set"]["properties"]["rejected_counts"]["propertyNames"]["enum"] == list(REJECT_REASONS)
    response = load_schema("grasp_response")["properties"]["rejected_counts"]["propertyNames"]["enum"]
    assert response == list(REJECT_REASONS)


def test_set_rig_is_checked_and_used_from_the_next_call(frame, rig):
    perception = GraspPerception()
    with pytest.raises(ConfigError, match="rig must be a graspseg CameraRig .* got dict"):
        perception.set_rig({"tcp_from_camera": None})
    assert perception.plan(frame, MUG, base_from_tcp=BASE_FROM_TCP).frame == CAMERA
    perception.set_rig(rig)
    assert perception.plan(frame, MUG, base_from_tcp=BASE_FROM_TCP).frame == BASE


def test_installed_plugins_are_found_by_entry_point():
    assert discover_plugins()["graspseg"] is GraspPerception
    assert load_plugin() is GraspPerception
    with pytest.raises(BackendNotFoundError, match=r"no perception plugin 'nope'; installed: \[.*'graspseg'"):
        load_plugin("nope")


def test_the_pregrasp_back_off_is_the_distance_the_collision_check_swept(frame, rig, monkeypatch):
    from graspseg.grasp import collision

    swept = []
    original = collision.finger_palm_tests

    def recording(local, opening_m, gripper, approach_distance_m):
        swept.append(approach_distance_m)
        return original(local, opening_m, gripper, approach_distance_m)

    monkeypatch.setattr(collision, "finger_palm_tests", recording)
    for given in (None, 0.12):  # the config's default, and a longer back-off asked of the plugin
        swept.clear()
        perception = GraspPerception(rig=rig, approach_distance_m=given)
        response = perception.plan(frame, MUG, base_from_tcp=BASE_FROM_TCP)
        assert response.status == "ok" and swept
        want = perception.config.grasp.approach_distance_m if given is None else given
        assert set(swept) == {want} == {response.approach_distance_m, perception.config.grasp.approach_distance_m}
        for g in response.grasps:
            step = g.tcp_target.translation - g.pregrasp_tcp.translation
            assert float(step @ g.grasp_pose.rotation[:, 2]) == pytest.approx(want, abs=1e-12)
            np.testing.assert_allclose(step, want * g.grasp_pose.rotation[:, 2], atol=1e-12)


def test_a_base_pose_without_its_base_vectors_breaks_the_schema(frame, rig):
    doc = GraspPerception(rig=rig).perceive(frame, MUG, base_from_tcp=BASE_FROM_TCP).to_dict(compact=True)
    validate(doc)
    del doc["grasps"]["grasps"][0]["approach_in_base"]
    with pytest.raises(InputError, match=r"at grasps/grasps/0: 'approach_in_base' is a dependency of 'base_from_grasp'"):
        validate(doc)


class FrameCheckingSegmenter(CountingSegmenter):
    """Records, for every prediction, the frame the model held and the click it answered."""

    def __init__(self, inner):
        super().__init__(inner)
        self.current, self.log = None, []

    def set_frame(self, frame):
        self.current = frame.frame_id
        return super().set_frame(frame)

    def predict(self, prompt):
        self.log.append((self.current, tuple(prompt.points_uv[0])))
        return self.inner.predict(prompt)


def test_perceive_many_from_threads_keeps_each_call_on_its_own_frame(frame):
    import dataclasses
    import threading

    frames = {"a": dataclasses.replace(frame, frame_id="a"),
              "b": dataclasses.replace(frame, color=frame.color[:, ::-1].copy(), depth_m=frame.depth_m[:, ::-1].copy(),
                                       frame_id="b")}  # mirrored: the mug at u = 639 - 352
    clicks = {"a": [(352.0, 280.0), (340.0, 300.0)], "b": [(287.0, 280.0), (299.0, 300.0)]}
    meant_for = {uv: name for name, uvs in clicks.items() for uv in uvs}

    def prompts(name):
        return [Prompt.from_point(u, v) for u, v in clicks[name]]

    single = GraspPerception()
    reference = {n: [r.mask.tobytes() for r in single.perceive_many(f, prompts(n))] for n, f in frames.items()}
    assert reference["a"] != reference["b"]
    shared = GraspPerception()
    shared.pipeline.segmenter = FrameCheckingSegmenter(shared.pipeline.segmenter)
    results, errors = [], []

    def work(order):
        try:
            for name in order:
                results.append((name, [r.mask.tobytes() for r in shared.perceive_many(frames[name], prompts(name))]))
        except Exception as e:  # reported by the assertion below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(order,)) for order in (("a", "b"), ("b", "a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert all(masks == reference[name] for name, masks in results)
    seg = shared.pipeline.segmenter
    assert len(seg.log) == 8 and all(held == meant_for[uv] for held, uv in seg.log)  # never another call's frame
    assert seg.encodings <= 4  # at most one encoding per call, however the threads interleave

