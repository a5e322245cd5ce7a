"""The grasp oracle's candidate sample and blame rules (pure functions; the pybullet part runs in test_sim_execution)."""

import numpy as np
import pytest

from graspseg.sim.oracle import BLAME_STAGES, blame, blame_table, run_oracle, sample_candidates


def test_sample_takes_the_best_accepted_and_every_rejection_reason():
    accepted = np.array([True] * 6 + [False] * 9)
    reasons = np.array([""] * 6 + ["friction"] * 5 + ["collision"] * 3 + ["table"])
    idx = sample_candidates(accepted, reasons, 9)
    assert len(idx) == 9 and len(set(idx)) == 9
    assert list(idx[:3]) == [0, 1, 2]  # a third of the budget: the three best accepted
    picked = set(reasons[idx]) - {""}
    assert picked == {"friction", "collision", "table"}  # every reason is tried
    assert 6 in idx and 11 in idx and 14 in idx  # the best-ranked of each reason
    # budget left over goes to more accepted grasps; nothing is picked twice
    idx = sample_candidates(np.array([True] * 5 + [False]), np.array([""] * 5 + ["table"]), 10)
    assert list(idx) == [0, 1, 2, 3, 4, 5]
    assert len(sample_candidates(accepted, reasons, 0)) == 0
    assert len(sample_candidates(np.zeros(0, bool), np.zeros(0, str), 5)) == 0


class _Set:
    """The few GraspSet fields the oracle reads."""

    def __init__(self, n):
        self.camera_from_grasp = np.tile(np.eye(4), (n, 1, 1))
        self.opening_m = np.full(n, 0.05)
        self.width_m = np.full(n, 0.04)
        self.accepted = np.array([True, True, False])[:n]
        self.rejected_because = np.array(["", "", "friction"])[:n]
        self.score = np.linspace(0.9, 0.5, n)
        self.worst_case_margin_mm = np.full(n, 3.0)


def test_run_oracle_records_each_execution():
    calls = []

    def execute(pose, opening):
        calls.append(opening)
        return len(calls) == 3, "" if len(calls) == 3 else "collision_approach_target", {"finger_gap_true_mm": 1.0}

    out = run_oracle(_Set(3), np.array([0, 1, 2]), execute, chosen=0)
    assert len(calls) == 3
    assert [c["success"] for c in out] == [False, False, True]
    assert out[0]["chosen"] and not out[1]["chosen"]
    assert out[2]["reason"] == "friction" and not out[2]["accepted"]
    assert out[2]["finger_gap_true_mm"] == 1.0


def _rec(cause, cands, true_mask=None, iou=0.95):
    orc = {"candidates": [dict(zip(("accepted", "reason", "success", "chosen"), c, strict=True)) for c in cands]}
    if true_mask is not None:
        orc["true_mask"] = {"success": true_mask}
    return {"success": cause == "", "cause": cause, "mask_iou": iou, "oracle": orc}


@pytest.mark.parametrize(("rec", "stage"), [
    (_rec("", [(True, "", True, True)]), ""),
    ({"success": False, "cause": "no_grasp"}, "unknown"),
    # a wrong mask, and the true mask would have worked
    (_rec("no_grasp", [(False, "table", False, False)], true_mask=True, iou=0.5), "segmentation"),
    # a nearly right mask is not to blame even when the true mask's grasp works: another accepted one works
    (_rec("collision_approach_target", [(True, "", False, True), (True, "", True, False)], true_mask=True,
          iou=0.97), "ranking"),
    (_rec("dropped_on_shake", [(True, "", False, True), (False, "friction", False, False)]), "execution"),
    (_rec("collision_approach_target", [(True, "", False, True), (False, "collision", False, False)]), "shape"),
    (_rec("no_grasp", [(False, "friction", False, False), (False, "contact_margin", True, False)]),
     "check:contact_margin"),
    (_rec("no_grasp", [(False, "friction", False, False), (False, "table", False, False)], true_mask=False,
          iou=0.5), "candidates"),
])
def test_blame_rules(rec, stage):
    assert blame(rec) == stage


def test_blame_table_counts_stages_and_reasons():
    recs = [
        _rec("", [(True, "", True, True), (False, "friction", True, False)]),
        _rec("no_grasp", [(False, "friction", True, False)]),
        _rec("no_grasp", [(False, "table", False, False)], true_mask=True, iou=0.4),
        _rec("collision_approach_target", [(True, "", False, True), (True, "", True, False)]),
    ]
    recs[0]["oracle"]["replay_agrees"] = True
    t = blame_table(recs)
    assert t["failed_trials_with_oracle"] == 3
    assert t["by_stage"] == {"segmentation": 1, "ranking": 1, "check": 1}
    assert set(t["by_stage"]) <= set(BLAME_STAGES)
    assert t["check_by_reason"] == {"friction": 1}
    assert t["working_rejected_candidates_by_reason"] == {"friction": 2}
    assert t["trials_with_a_working_candidate"] == 3 and t["trials_with_oracle"] == 4
    assert t["candidates_executed"] == 6 and t["replay_agrees"] == "1/1"
