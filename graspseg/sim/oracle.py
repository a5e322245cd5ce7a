"""The grasp oracle: execute many candidates of one trial in simulation and say which stage lost the trial.

For a trial, the perception's grasp set (accepted and rejected candidates) is sampled — the best accepted ones
and, round-robin over the rejection reasons, the best-ranked rejected ones — and every sampled candidate is
executed from the same saved physics state as the chosen grasp. A second perception with the true mask (the
counterfactual "perfect segmentation") is executed too. :func:`blame` turns that into one stage per failed trial:

==================  ===========================================================================================
``segmentation``    the mask is wrong (IoU < 0.9) and the same planner on the true mask picks a grasp that succeeds
``execution``       the hand closed on the target and lost it (``dropped_on_*``) and no other sampled grasp holds
``shape``           the chosen grasp's fingers met the target where the model said free space
                    (``collision_*_target``) and no other sampled grasp works: the object was measured too thin
``ranking``         an accepted candidate succeeds, the chosen one does not
``check:<reason>``  no accepted candidate succeeds but a rejected one does: ``<reason>`` rejected a working grasp
``candidates``      no sampled candidate succeeds (none generated on the graspable part)
==================  ===========================================================================================

Nothing here imports pybullet: the execution is passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

#: Blame stages, in the order they are tested.
BLAME_STAGES: tuple[str, ...] = ("segmentation", "execution", "shape", "ranking", "check", "candidates")
#: A failed trial is blamed on segmentation only when its mask is this far from the truth (IoU) and the true
#: mask would have given a working grasp; with a nearly right mask the grasp stage is to blame.
SEGMENTATION_IOU = 0.9
_DROPS = ("dropped_on_lift", "dropped_on_shake")
_RAMS = ("collision_approach_target", "collision_pregrasp_target")


def sample_candidates(accepted: np.ndarray, reasons: np.ndarray, max_n: int) -> np.ndarray:
    """Indices (into a grasp set sorted best first) of at most ``max_n`` candidates to execute.

    A third of the budget (at least 3) goes to the best accepted grasps, the rest round-robin over the rejection
    reasons, best-ranked first, so that every reason that rejected something is tried.

    Parameters
    ----------
    accepted : (N,) bool
    reasons : (N,) str
        ``""`` for accepted grasps, else the rejection reason.
    max_n : int
    """
    accepted = np.asarray(accepted, bool)
    reasons = np.asarray(reasons).astype(str)
    if max_n <= 0 or not len(accepted):
        return np.zeros(0, int)
    acc = np.flatnonzero(accepted)
    out = list(acc[: min(len(acc), max(3, max_n // 3), max_n)])
    queues = {}
    for i in np.flatnonzero(~accepted):
        queues.setdefault(str(reasons[i]), []).append(int(i))
    lists = list(queues.values())
    j = 0
    while len(out) < max_n and any(j < len(q) for q in lists):
        for q in lists:
            if j < len(q) and len(out) < max_n:
                out.append(q[j])
        j += 1
    rest = [int(i) for i in acc if i not in out]  # budget left over: more accepted grasps
    out += rest[: max(0, max_n - len(out))]
    return np.asarray(sorted(out), int)


def run_oracle(grasps, indices: np.ndarray, execute: Callable[[np.ndarray, float], tuple[bool, str, dict]],
               chosen: int | None = None) -> list[dict]:
    """Execute the candidates ``indices`` of ``grasps`` with ``execute(camera_from_grasp, opening_m) -> (success,
    cause, extra)`` (which restores the saved world first); one JSON-able record per candidate: its rank in the
    set, whether it was accepted (else the reason), whether it is the ``chosen`` one, the outcome and ``extra``."""
    out = []
    for i in np.asarray(indices, int):
        ok, cause, extra = execute(np.asarray(grasps.camera_from_grasp[i]), float(grasps.opening_m[i]))
        out.append({"rank": int(i), "accepted": bool(grasps.accepted[i]), "reason": str(grasps.rejected_because[i]),
                    "chosen": chosen is not None and int(i) == int(chosen), "success": bool(ok), "cause": str(cause),
                    "width_m": float(grasps.width_m[i]), "opening_m": float(grasps.opening_m[i]),
                    "score": float(grasps.score[i]), "worst_case_margin_mm": float(grasps.worst_case_margin_mm[i]),
                    **extra})
    return out


def blame(record: dict) -> str:
    """The stage that lost a trial (``""`` for a success; ``"unknown"`` without an oracle), see the module doc.

    Reads ``success``, ``cause`` and ``oracle`` (``candidates``: executed candidates with ``accepted``,
    ``reason``, ``success``; ``true_mask``: the counterfactual with the true mask, ``success``) of a trial record.
    """
    if record.get("success"):
        return ""
    orc = record.get("oracle")
    if not orc:
        return "unknown"
    cause = str(record.get("cause", ""))
    cands = orc.get("candidates", [])
    true_mask = orc.get("true_mask") or {}
    others = [c for c in cands if not c.get("chosen")]
    if true_mask.get("success") and float(record.get("mask_iou", 1.0)) < SEGMENTATION_IOU:
        return "segmentation"
    works_acc = any(c["success"] for c in cands if c["accepted"])
    works_rej = [c for c in cands if c["success"] and not c["accepted"]]
    any_other = any(c["success"] for c in others)
    if cause in _DROPS and not any_other:
        return "execution"
    if cause in _RAMS and not any_other:
        return "shape"
    if works_acc:
        return "ranking"
    if works_rej:
        return f"check:{works_rej[0]['reason']}"
    return "candidates"


def blame_table(records: list[dict]) -> dict:
    """Counts of :func:`blame` over the failed trials that carry an oracle, with the rejection reasons that
    rejected a working grasp and how many trials had any working candidate."""
    failed = [r for r in records if not r.get("success") and r.get("oracle")]
    stages = Counter(blame(r).split(":")[0] for r in failed)
    checks = Counter(blame(r).split(":", 1)[1] for r in failed if blame(r).startswith("check:"))
    working_rejected = Counter()
    for r in records:
        for c in (r.get("oracle") or {}).get("candidates", []):
            if c["success"] and not c["accepted"]:
                working_rejected[c["reason"]] += 1
    executed = sum(len((r.get("oracle") or {}).get("candidates", [])) for r in records)
    replay = [r["oracle"]["replay_agrees"] for r in records if (r.get("oracle") or {}).get("replay_agrees") is not None]
    return {
        "failed_trials_with_oracle": len(failed),
        "by_stage": {s: stages.get(s, 0) for s in BLAME_STAGES if stages.get(s, 0)},
        "check_by_reason": dict(checks.most_common()),
        "working_rejected_candidates_by_reason": dict(working_rejected.most_common()),
        "trials_with_a_working_candidate": sum(any(c["success"] for c in (r.get("oracle") or {}).get("candidates", []))
                                               for r in records if r.get("oracle")),
        "trials_with_oracle": sum(bool(r.get("oracle")) for r in records),
        "candidates_executed": executed,
        "replay_agrees": f"{sum(replay)}/{len(replay)}" if replay else None,
    }


__all__ = ["BLAME_STAGES", "blame", "blame_table", "run_oracle", "sample_candidates"]
