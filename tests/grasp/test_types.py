import json

import numpy as np
import pytest

from graspseg.core import BASE, CAMERA, NoGraspError, ShapeError
from graspseg.grasp import GraspSet

from .helpers import make_set, pose


def test_empty_set_is_a_grasp_set_with_an_explanation():
    e = GraspSet.empty(boundary_error_px=3, rejected_counts={"too_wide": 5}, suggestion="object wider than ...")
    assert len(e) == 0 and e.n_accepted == 0 and e.top(3).width_m.shape == (0,)
    d = e.to_dict()
    assert d["grasps"] == [] and d["rejected_counts"] == {"too_wide": 5} and d["schema_version"] == 2
    with pytest.raises(NoGraspError, match="object wider than") as info:
        e.raise_if_empty()
    assert info.value.rejected_counts == {"too_wide": 5}


def test_indexing_top_accepted_only_and_json():
    s = make_set([pose(np.eye(3), [0, 0, 0.5 + 0.01 * i]) for i in range(4)], [0.03, 0.04, 0.05, 0.06],
                 accepted=[True, False, True, False], base_from_camera=pose(np.eye(3), [1, 0, 0]))
    assert len(s) == 4 and len(s.top(2)) == 2 and s.top(2).width_m.tolist() == [0.03, 0.04]
    a = s.accepted_only()
    assert a.width_m.tolist() == [0.03, 0.05] and (a.rejected_because == "").all()
    assert s[1].rejected_because.tolist() == ["collision"]
    assert s[np.array([3, 0])].margins["opening_px"].tolist() == [6.0, 0.0]
    t = s.pose(2, BASE)
    assert t.to_frame == BASE and t.translation[0] == pytest.approx(1.0)
    assert s.pose(2).from_frame == "grasp" and s.pose(2, CAMERA).translation[2] == pytest.approx(0.52)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["n_accepted"] == 2 and d["grasps"][1]["rejected_because"] == "collision"
    assert "base_from_grasp" in d["grasps"][0] and d["frames"]["camera"] == CAMERA
    assert not s.margins["opening_mm"].flags.writeable
    assert s.raise_if_empty() is s


def test_bad_grasp_sets_raise():
    s = make_set([np.eye(4)], [0.03])
    with pytest.raises(ShapeError, match="width_m must be"):
        GraspSet(s.camera_from_grasp, np.zeros(2), s.opening_m, s.approach, s.closing, s.contacts_in_camera,
                 s.contacts_uv, s.score, {}, s.worst_case_margin_mm, s.accepted, s.rejected_because)
    with pytest.raises(ShapeError, match="both accepted and rejected"):
        GraspSet(s.camera_from_grasp, s.width_m, s.opening_m, s.approach, s.closing, s.contacts_in_camera,
                 s.contacts_uv, s.score, {}, s.worst_case_margin_mm, s.accepted, np.array(["table"]))
    with pytest.raises(ShapeError, match=r"margins\['x'\]"):
        GraspSet(s.camera_from_grasp, s.width_m, s.opening_m, s.approach, s.closing, s.contacts_in_camera,
                 s.contacts_uv, s.score, {"x": [1, 2]}, s.worst_case_margin_mm, s.accepted, s.rejected_because)
    with pytest.raises(ShapeError, match="no base_from_grasp"):
        s.pose(0, BASE)
    with pytest.raises(ShapeError, match="not 'tcp'"):
        s.pose(0, "tcp")
