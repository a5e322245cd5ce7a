"""Simulated grasp trials: build a scene, render the wrist camera, prompt, perceive, execute, record.

The perception step is one function (:data:`PerceiveFn`): the default runs :class:`graspseg.pipeline.Pipeline`
as a user would; :func:`ground_truth_perceiver` plans a top-down grasp from the exact mask and depth (to test the
execution on its own).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from ..core.camera import CameraRig
from ..core.errors import ConfigError, GraspsegError, NoGraspError
from ..core.frame import RGBDFrame
from ..core.transform import BASE, CAMERA, GRASP, Transform
from ..segment.types import Prompt

log = logging.getLogger(__name__)

MASK_MODES = ("gt", "pred", "noisy")
PROMPT_KINDS = ("click", "box")


@dataclass(frozen=True)
class GraspChoice:
    """What perception hands to execution.

    Attributes
    ----------
    mask : (H, W) bool
        The mask perception used.
    camera_from_grasp : (4, 4) float or None
        The grasp to execute (None when no grasp was accepted).
    opening_m : float
        Pre-grasp opening, metres.
    info : dict
        JSON-able details (width, margins, rejection counts, centre_in_camera, timings).
    grasps : GraspSet or None
        Every candidate perception listed, sorted best first (the oracle executes a sample of them).
    """

    mask: np.ndarray
    camera_from_grasp: np.ndarray | None
    opening_m: float = 0.08
    info: dict = field(default_factory=dict)
    grasps: object | None = None


#: ``perceive(frame, prompt, rig, mask_override) -> GraspChoice``
PerceiveFn = Callable[[RGBDFrame, Prompt, CameraRig, "np.ndarray | None"], GraspChoice]


@dataclass(frozen=True)
class SimTrialConfig:
    """How trials are run.

    Attributes
    ----------
    layout : {"single", "packed", "pile"}
    n_objects : int
        Objects per scene for ``packed`` and ``pile``.
    objects : str
        ``dev``, ``heldout`` or a folder of URDFs.
    mask : str
        ``gt`` (ground-truth mask: isolates the grasp stage), ``pred`` (the segmenter's), or ``noisy:K``
        (ground truth eroded, dilated or jittered by K px, chosen per trial).
    prompt : {"click", "box"}
        A click at the interior point farthest from the true boundary, or the true mask's box.
    margins : bool
        Boundary-error margin checks on (the pipeline default) or off (no boundary error, no robustness).
    backend : str
        Segmenter backend.
    depth_noise : bool
        Apply the stereo depth-noise model.
    gripper : str
        Gripper name or YAML path.
    min_visible_px : int
        A target must show at least this many pixels.
    execution_views : bool
        Keep side views of the execution phases of failed grasps (for failure images).
    oracle_candidates : int
        0: off. Else the oracle (:mod:`graspseg.sim.oracle`) executes up to this many of perception's candidates
        from the trial's saved physics state, and the grasp the same planner picks on the true mask.
    """

    layout: str = "single"
    n_objects: int = 5
    objects: str = "heldout"
    mask: str = "pred"
    prompt: str = "click"
    margins: bool = True
    backend: str = "rgbd"
    depth_noise: bool = True
    gripper: str = "franka_hand"
    min_visible_px: int = 400
    execution_views: bool = False
    oracle_candidates: int = 0

    def __post_init__(self) -> None:
        from .world import SIM_LAYOUTS

        if self.layout not in SIM_LAYOUTS:
            raise ConfigError(f"unknown sim layout {self.layout!r}; choose one of {list(SIM_LAYOUTS)}")
        parse_mask_mode(self.mask)
        if self.prompt not in PROMPT_KINDS:
            raise ConfigError(f"prompt must be one of {list(PROMPT_KINDS)}, got {self.prompt!r}")
        if isinstance(self.oracle_candidates, bool) or int(self.oracle_candidates) != self.oracle_candidates \
                or self.oracle_candidates < 0:
            raise ConfigError(f"oracle_candidates must be an integer >= 0 (0 = no oracle), got {self.oracle_candidates!r}")


def parse_mask_mode(text: str) -> tuple[str, int]:
    """``"gt"`` → ("gt", 0), ``"pred"`` → ("pred", 0), ``"noisy:3"`` → ("noisy", 3)."""
    s = str(text).strip()
    if s in ("gt", "pred"):
        return s, 0
    if s.startswith("noisy:"):
        try:
            k = int(s.split(":", 1)[1])
        except ValueError:
            k = -1
        if 0 <= k <= 50:
            return "noisy", k
    raise ConfigError(f"mask mode {text!r} is not understood; use gt, pred or noisy:K with K pixels in 0..50 (e.g. noisy:3)")


def perturb_mask(mask: np.ndarray, k_px: int, rng: np.random.Generator, mode: str | None = None) -> tuple[np.ndarray, str]:
    """Inject boundary error of ``k_px`` pixels: ``erode``, ``dilate`` or ``jitter`` (a smooth random boundary
    displacement in [−k, k]); ``mode`` None draws one. Returns the mask and the mode used."""
    m = np.asarray(mask, bool)
    mode = mode or str(rng.choice(["erode", "dilate", "jitter"]))
    if k_px <= 0:
        return m.copy(), mode
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k_px + 1, 2 * k_px + 1))
    if mode == "erode":
        out = cv2.erode(m.astype(np.uint8), kernel) > 0
    elif mode == "dilate":
        out = cv2.dilate(m.astype(np.uint8), kernel) > 0
    elif mode == "jitter":
        inside = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5)
        outside = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 5)
        sdf = np.where(m, inside, -outside)
        field_ = cv2.GaussianBlur(rng.standard_normal(m.shape).astype(np.float32), (0, 0), 2.0 * k_px)
        field_ = np.clip(field_ / max(float(field_.std()), 1e-6) * (k_px / 1.5), -k_px, k_px)
        out = sdf + field_ > 0.5
    else:
        raise ConfigError(f"perturbation mode must be erode, dilate or jitter, got {mode!r}")
    if not out.any():
        out = m.copy()
    return out, mode


def make_prompt(gt_mask: np.ndarray, kind: str) -> Prompt:
    """The benchmark prompt for a true mask: a click at the interior point farthest from its boundary, or its box."""
    if kind == "box":
        v, u = np.nonzero(gt_mask)
        return Prompt(box_xyxy=np.array([u.min(), v.min(), u.max() + 1, v.max() + 1], float))
    from ..eval.clicks import first_click

    u, v = first_click(gt_mask)
    return Prompt(points_uv=np.array([[u, v]]), point_labels=np.array([1]))


# --- perception functions -------------------------------------------------------------------------------
def pipeline_perceiver(*, backend: str = "rgbd", margins: bool = True, gripper: str = "franka_hand",
                       boundary_error_px: float | None = None) -> PerceiveFn:
    """Perception as a user runs it: ``Pipeline(config).perceive(frame, prompt)``; the best accepted grasp.

    ``margins`` False sets the boundary error to 0 and turns off the erode/dilate and alternative-mask
    robustness checks. ``boundary_error_px`` (with margins on) replaces the segmenter's own estimate, e.g. by
    the boundary error injected into the mask (an oracle for the margin checks).
    """
    if boundary_error_px is not None and (not margins or boundary_error_px < 0):
        raise ConfigError(f"boundary_error_px={boundary_error_px} needs margins on and a value >= 0 px")
    from dataclasses import replace

    from ..pipeline import Pipeline, PipelineConfig, SegmentStageConfig

    cfg = PipelineConfig(segment=SegmentStageConfig(backend=backend), gripper=gripper)
    if not margins:
        cfg = replace(cfg, boundary_error_px=0.0,
                      grasp=replace(cfg.grasp, erode_dilate=False, use_alternative_masks=False))
    pipes: dict[int, object] = {}

    def perceive(frame: RGBDFrame, prompt: Prompt, rig: CameraRig, mask_override=None) -> GraspChoice:
        key = id(rig)
        if key not in pipes:
            pipes.clear()
            pipes[key] = Pipeline(cfg, rig=rig)
        pipe = pipes[key]
        try:
            res = pipe.perceive(frame, prompt, mask_override=mask_override,
                                boundary_error_px=0.0 if not margins else boundary_error_px)
        except NoGraspError as e:
            return GraspChoice(np.zeros((frame.height, frame.width), bool), None,
                               info={"error": str(e), "rejected_counts": e.rejected_counts})
        g = res.grasps
        info = {"n_grasps": len(g), "n_accepted": int(g.accepted.sum()), "rejected_counts": dict(g.rejected_counts),
                "boundary_error_px": float(res.boundary_error_px), "centre_in_camera": res.shape.centre_in_camera.tolist(),
                "shape_kind": getattr(res.shape, "kind", ""), "timings_ms": dict(res.timings_ms)}
        acc = np.nonzero(g.accepted)[0]
        if not len(acc):
            return GraspChoice(res.mask, None, info=info, grasps=g)
        i = int(acc[0])
        info.update({"width_m": float(g.width_m[i]), "opening_m": float(g.opening_m[i]), "score": float(g.score[i]),
                     "margins": {k: float(v[i]) for k, v in g.margins.items()},
                     "worst_case_margin_mm": float(g.worst_case_margin_mm[i])})
        return GraspChoice(res.mask, np.asarray(g.camera_from_grasp[i]), float(g.opening_m[i]), info, grasps=g)

    return perceive


def topdown_grasp_from_mask(frame: RGBDFrame, mask: np.ndarray, base_from_camera: Transform,
                            *, depth_m: np.ndarray | None = None, max_opening_m: float = 0.08) -> tuple[np.ndarray, float]:
    """A top-down grasp across the mask's narrowest horizontal axis (PCA of its points on the table plane).

    Returns ``camera_from_grasp`` (4, 4) and the opening (metres). ``base`` must have +z up from the table.
    """
    depth = frame.depth_m if depth_m is None else depth_m
    core = cv2.erode(np.asarray(mask, np.uint8), np.ones((5, 5), np.uint8)) > 0  # drop rim (flying) pixels
    sel = (core if core.sum() >= 30 else np.asarray(mask, bool)) & (depth > 0)
    v, u = np.nonzero(sel)
    pts_cam = frame.intrinsics.unproject(np.stack([u, v], 1).astype(float), depth[v, u])
    pts = base_from_camera.apply(pts_cam)
    xy = pts[:, :2]
    c = xy.mean(0)
    evals, evecs = np.linalg.eigh(np.cov((xy - c).T))
    minor = evecs[:, 0]
    proj = (xy - c) @ minor
    mid = 0.5 * (proj.max() + proj.min())
    centre = c + mid * minor
    width = float(proj.max() - proj.min())
    top = float(np.quantile(pts[:, 2], 0.98))
    z = max(top - 0.03, 0.012)
    x = np.array([minor[0], minor[1], 0.0])
    zz = np.array([0.0, 0.0, -1.0])
    y = np.cross(zz, x)
    base_from_grasp = Transform.from_rt(np.stack([x, y, zz], 1), [centre[0], centre[1], z], BASE, GRASP)
    camera_from_grasp = base_from_camera.inverse() @ base_from_grasp
    return camera_from_grasp.matrix, float(min(width + 0.02, max_opening_m))


def ground_truth_perceiver() -> PerceiveFn:
    """Perception replaced by ground truth: the given mask (the true one) and a top-down grasp across it."""

    def perceive(frame: RGBDFrame, prompt: Prompt, rig: CameraRig, mask_override=None) -> GraspChoice:
        if mask_override is None:
            raise ConfigError("ground_truth_perceiver needs the true mask as mask_override (use mask mode 'gt')")
        base_from_camera = frame.base_from_camera(rig.tcp_from_camera)
        cfg, opening = topdown_grasp_from_mask(frame, mask_override, base_from_camera)
        return GraspChoice(np.asarray(mask_override, bool), cfg, opening, {"opening_m": opening})

    return perceive


# --- one trial --------------------------------------------------------------------------------------------
@dataclass
class TrialOutput:
    """A trial's JSON record plus the images needed for failure PNGs and episodes."""

    record: dict
    frame: RGBDFrame | None = None
    gt_mask: np.ndarray | None = None
    used_mask: np.ndarray | None = None
    camera_from_grasp: np.ndarray | None = None
    prompt: Prompt | None = None
    rig: CameraRig | None = None
    camera_from_base: Transform | None = None
    objects_gt: list = field(default_factory=list)
    execution_views: list = field(default_factory=list)  # [(phase, (H, W, 3) uint8)] side views of a failed grasp


@lru_cache(maxsize=16)
def _object_set(name: str):
    from .objects import object_set

    return object_set(name)


def trial_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def run_trial(index: int, config: SimTrialConfig, perceive: PerceiveFn, *, seed: int = 0) -> TrialOutput:
    """Run one seeded trial and return its record (never raises for a failed grasp; errors become causes)."""
    from ..capture.frame_folder import GroundTruthObject
    from ..eval.metrics import boundary_f_score, mask_iou
    from .gripper import FloatingGripper, execute_grasp
    from .synthetic import DepthNoise
    from .world import SimWorld

    t0 = time.perf_counter()
    s = trial_seed(seed, index)
    rng = np.random.default_rng(s)
    mode, k_px = parse_mask_mode(config.mask)
    rec: dict = {"trial": int(index), "seed": int(seed), "trial_seed": s, "layout": config.layout, "objects": config.objects,
                 "mask_mode": config.mask, "prompt_kind": config.prompt, "margins": bool(config.margins),
                 "backend": config.backend}
    out = TrialOutput(rec)
    with SimWorld(s) as world:
        placed = world.build(config.layout, _object_set(config.objects), config.n_objects)
        rec["n_objects"] = len(placed)
        t_build = time.perf_counter()
        view = target = None
        order = rng.permutation(len(placed))
        for j in order[:4]:
            cand = placed[int(j)]
            centre = world.aabb(cand.body_id).mean(0)
            cam = world.look_at_camera(centre, rng=rng)
            v = world.render(cam, noise=DepthNoise() if config.depth_noise else None, rng=rng,
                             frame_id=f"trial_{index:05d}")
            if v.mask_of(cand.body_id).sum() >= config.min_visible_px:
                view, target = v, cand
                break
        t_render = time.perf_counter()
        rec["timings_s"] = {"build": t_build - t0, "render": t_render - t_build}
        if view is None:
            rec.update({"success": False, "cause": "target_not_visible"})
            return out
        gt = view.mask_of(target.body_id)
        rec["target"] = {"name": target.spec.name, "source": target.spec.source, "visible_px": int(gt.sum())}
        base_from_camera = view.camera_from_base.inverse()
        rec["camera"] = {"tilt_deg": float(np.degrees(np.arccos(np.clip(-base_from_camera.rotation[2, 2], -1, 1)))),
                         "distance_m": float(np.linalg.norm(base_from_camera.translation - world.aabb(target.body_id).mean(0)))}
        prompt = make_prompt(gt, config.prompt)
        override = None
        if mode == "gt":
            override = gt
        elif mode == "noisy":
            override, how = perturb_mask(gt, k_px, rng)
            rec["perturbation"] = {"mode": how, "k_px": k_px}
        out.frame, out.gt_mask, out.prompt, out.rig, out.camera_from_base = view.frame, gt, prompt, view.rig, view.camera_from_base
        out.objects_gt = [GroundTruthObject(o.instance_id, o.spec.name, view.mask_of(o.body_id),
                                            view.camera_from_base @ world.base_from_object(o.body_id)) for o in placed]
        try:
            choice = perceive(view.frame, prompt, view.rig, override)
        except GraspsegError as e:
            rec.update({"success": False, "cause": "perception_error", "error": f"{type(e).__name__}: {e}"})
            return out
        t_perc = time.perf_counter()
        rec["timings_s"]["perceive"] = t_perc - t_render
        out.used_mask = choice.mask
        rec["mask_iou"] = float(mask_iou(choice.mask, gt)) if choice.mask.any() else 0.0
        rec["boundary_f"] = float(boundary_f_score(choice.mask, gt)) if choice.mask.any() else 0.0
        info = dict(choice.info)
        if "centre_in_camera" in info:
            true_c = view.camera_from_base.apply(world.aabb(target.body_id).mean(0)[None])[0]
            rec["position_error_mm"] = float(np.linalg.norm(np.asarray(info["centre_in_camera"]) - true_c) * 1000)
        rec["perception"] = info
        gripper = saved = None
        if config.oracle_candidates > 0:  # the hand exists before the state every execution starts from
            gripper = FloatingGripper(world, config.gripper)
            saved = world.p.saveState()
        if choice.camera_from_grasp is None:
            rec.update({"success": False, "cause": "no_grasp"})
            if saved is not None:
                rec["oracle"] = _oracle(world, gripper, saved, choice, rec, view, target.body_id, perceive, prompt,
                                        gt if mode != "gt" else None, config)
            return out
        out.camera_from_grasp = choice.camera_from_grasp
        camera_from_grasp = Transform(choice.camera_from_grasp, CAMERA, GRASP)
        base_from_grasp = base_from_camera @ camera_from_grasp
        gripper = gripper or FloatingGripper(world, config.gripper)
        states: list[tuple[str, int]] = []

        def on_phase(name: str) -> None:
            if config.execution_views:
                states.append((name, world.p.saveState()))

        res = execute_grasp(world, gripper, base_from_grasp, choice.opening_m, target.body_id, on_phase=on_phase)
        if not res.success and states:
            # side views (along and across the closing axis) of the world at the end of each phase reached
            states.append(("end", world.p.saveState()))
            x = base_from_grasp.rotation[:, 0]
            heading = math.atan2(x[1], x[0])
            for name, sid in states:
                world.p.restoreState(sid)
                at = gripper.pose().translation - gripper.pose().rotation[:, 2] * 0.02
                out.execution_views.append((name, np.concatenate(
                    [world.side_view(at, heading + math.pi / 2), world.side_view(at, heading)], axis=1)))
        rec["grasp"] = {"base_from_grasp": base_from_grasp.matrix.tolist(), "opening_m": float(choice.opening_m),
                        "approach_tilt_deg": float(math.degrees(math.acos(np.clip(-base_from_grasp.rotation[2, 2], -1, 1))))}
        rec.update({"success": bool(res.success), "cause": res.cause, "final_opening_m": res.final_opening_m,
                    "lift_m": res.lift_m})
        if res.details:
            rec["execution"] = dict(res.details)
        rec["timings_s"]["execute"] = time.perf_counter() - t_perc
        if saved is not None:
            t_orc = time.perf_counter()
            rec["oracle"] = _oracle(world, gripper, saved, choice, rec, view, target.body_id, perceive, prompt,
                                    gt if mode != "gt" else None, config)
            rec["timings_s"]["oracle"] = time.perf_counter() - t_orc
    rec["timings_s"]["total"] = time.perf_counter() - t0
    return out


def _oracle(world, gripper, saved: int, choice: GraspChoice, rec: dict, view, target_body: int, perceive: PerceiveFn,
            prompt: Prompt, true_mask: np.ndarray | None, config: SimTrialConfig) -> dict:
    """Execute a sample of ``choice.grasps`` and, when ``true_mask`` is given, the grasp perception picks with the
    true mask, each from the saved state ``saved``; see :mod:`graspseg.sim.oracle`."""
    from .gripper import execute_grasp
    from .oracle import run_oracle, sample_candidates

    base_from_camera = view.camera_from_base.inverse()

    def execute(camera_from_grasp: np.ndarray, opening_m: float) -> tuple[bool, str, dict]:
        world.p.restoreState(saved)
        base_from_grasp = base_from_camera @ Transform(np.asarray(camera_from_grasp), CAMERA, GRASP)
        # the true gap between each open finger and the target at the grasp pose (negative: inside it)
        gripper.teleport(base_from_grasp, opening_m)
        world.p.performCollisionDetection()
        gaps = [min((c[8] for c in world.p.getClosestPoints(gripper.body, target_body, 0.05, linkIndexA=j)),
                    default=0.05) for j in gripper.finger_links]
        world.p.restoreState(saved)
        res = execute_grasp(world, gripper, base_from_grasp, opening_m, target_body)
        return res.success, res.cause, {"finger_gap_true_mm": round(float(min(gaps)) * 1e3, 2)}

    out: dict = {"max_candidates": int(config.oracle_candidates)}
    g = choice.grasps
    if g is not None and len(g):
        acc = np.flatnonzero(g.accepted)
        chosen = int(acc[0]) if (choice.camera_from_grasp is not None and len(acc)) else None
        idx = sample_candidates(g.accepted, g.rejected_because, config.oracle_candidates)
        out["n_listed"] = len(g)
        out["n_accepted"] = len(acc)
        out["candidates"] = run_oracle(g, idx, execute, chosen)
        for c in out["candidates"]:  # what the camera saw of each grasp: for analyses of the ranking
            i = c["rank"]
            x = np.asarray(g.closing[i])
            rays = np.asarray(g.contacts_in_camera[i]) / np.linalg.norm(g.contacts_in_camera[i], axis=1, keepdims=True)
            c["unseen_side"] = round(float(max(0.0, -x @ rays[0], x @ rays[1])), 3)
            a_base = base_from_camera.rotation @ np.asarray(g.approach[i])
            c["approach_tilt_deg"] = round(float(np.degrees(np.arccos(np.clip(-a_base[2], -1.0, 1.0)))), 1)
            c["margins"] = {k: round(float(v[i]), 3) for k, v in g.margins.items()}
        replay = [c for c in out["candidates"] if c["chosen"]]
        if replay:
            out["replay_agrees"] = bool(replay[0]["success"]) == bool(rec.get("success"))
    if true_mask is not None:
        try:
            tm = perceive(view.frame, prompt, view.rig, true_mask)
        except GraspsegError as e:
            out["true_mask"] = {"success": False, "cause": "perception_error", "error": f"{type(e).__name__}: {e}"}
        else:
            if tm.camera_from_grasp is None:
                out["true_mask"] = {"success": False, "cause": "no_grasp"}
            else:
                ok, cause, extra = execute(tm.camera_from_grasp, tm.opening_m)
                out["true_mask"] = {"success": bool(ok), "cause": cause, "width_m": tm.info.get("width_m"),
                                    "opening_m": float(tm.opening_m), **extra}
    world.p.restoreState(saved)
    from .oracle import blame

    out["blame"] = blame({**rec, "oracle": out})
    return out


__all__ = ["GraspChoice", "MASK_MODES", "PerceiveFn", "SimTrialConfig", "TrialOutput", "ground_truth_perceiver",
           "make_prompt", "parse_mask_mode", "perturb_mask", "pipeline_perceiver", "run_trial",
           "topdown_grasp_from_mask", "trial_seed"]
