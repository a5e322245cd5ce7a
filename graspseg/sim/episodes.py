"""Synthetic manipulation episodes: an object pushed across a table, hidden for a while by a passing plate.

Each episode is rendered with pybullet (:class:`~graspseg.sim.world.SimWorld`) and written in the native
episode layout (:class:`~graspseg.capture.episode.EpisodeWriter`) with exact ground truth per frame: the
target's visible mask (object id 1, ``target``) and its pose ``camera_from_object``. The index's ``extra``
of every frame carries ``visible_fraction`` (visible over unoccluded pixels of the target, from a second
render without the plate), so loss and re-acquisition have a true frame to be measured against.

Scene (``base``: the table top, +z up): a box stands on the table and slides along +x at a constant speed
(``push_m_per_frame``); a flat plate floats between the camera and the table and sweeps across along +y,
covering the box completely for a few frames in the middle of the episode; the wrist camera descends
slowly towards the box (``base_from_tcp`` changes every frame). The first frame's index line holds the
prompt: a click on the box's most interior visible pixel.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..capture.episode import EpisodeWriter
from ..capture.frame_folder import GroundTruthObject
from ..core.camera import CameraRig
from ..core.errors import ConfigError
from .objects import ObjectSpec
from .synthetic import _look_at, d435_intrinsics, default_tcp_from_camera
from .world import SimWorld

log = logging.getLogger(__name__)

#: Visible fraction under which the target counts as hidden in the ground truth (loss / re-acquisition).
HIDDEN_FRACTION = 0.1
_FAR = (5.0, 5.0, 5.0)  # where the plate is parked for the unoccluded render


@dataclass(frozen=True)
class EpisodeSpec:
    """What one synthetic episode looks like; every random choice is drawn from ``seed``.

    Attributes
    ----------
    frames : int
        Frames in the episode.
    width, height : int
        Image size, pixels (D435-like intrinsics scaled to it).
    push_m_per_frame : float
        Speed of the box along +x, metres per frame.
    plate_m_per_frame : float
        Speed of the plate along +y, metres per frame (its sweep is centred on the middle frame).
    camera_distance_m : (float, float)
        Camera distance to the box at the first and the last frame, metres.
    fps : float
        Frame rate of the timestamps.
    seed : int
    """

    frames: int = 40
    width: int = 640
    height: int = 480
    push_m_per_frame: float = 0.003
    plate_m_per_frame: float = 0.012
    camera_distance_m: tuple[float, float] = (0.50, 0.42)
    fps: float = 15.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.frames < 2 or self.width < 64 or self.height < 48:
            raise ConfigError(f"episode needs >= 2 frames of at least 64x48 px, got {self.frames} frames of "
                              f"{self.width}x{self.height}")
        if not 0 <= self.push_m_per_frame <= 0.02 or not 0 < self.plate_m_per_frame <= 0.1:
            raise ConfigError(f"push_m_per_frame must be in [0, 0.02] m and plate_m_per_frame in (0, 0.1] m, got "
                              f"{self.push_m_per_frame} and {self.plate_m_per_frame}")


def _box_spec(rng: np.random.Generator) -> ObjectSpec:
    size = [float(rng.uniform(0.05, 0.07)), float(rng.uniform(0.04, 0.06)), float(rng.uniform(0.06, 0.09))]
    rgb = [(0.75, 0.15, 0.12), (0.15, 0.35, 0.75), (0.20, 0.60, 0.25), (0.85, 0.55, 0.10)][int(rng.integers(4))]
    return ObjectSpec("box", "primitive", primitive={"kind": "box", "size_m": size}, rgba=(*rgb, 1.0))


def _click(mask: np.ndarray) -> list[float]:
    """The most interior pixel of ``mask`` as (u, v)."""
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    v, u = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return [float(u), float(v)]


def write_occlusion_episode(folder: str | Path, spec: EpisodeSpec | None = None, *, overwrite: bool = False) -> dict:
    """Render one episode (see the module docstring) into ``folder``; returns its ground-truth summary.

    The summary has ``frames``, ``hidden_frames`` (indices where the visible fraction is below
    :data:`HIDDEN_FRACTION`), ``loss_frame`` and ``reacquire_frame`` (first hidden frame, first visible
    frame after it; None when the plate never hides the box).
    """
    spec = spec or EpisodeSpec()
    rng = np.random.default_rng(spec.seed)
    intr = d435_intrinsics(spec.width, spec.height)
    with SimWorld(seed=spec.seed) as world:
        box = _box_spec(rng)
        start = np.array([-0.5 * spec.push_m_per_frame * spec.frames + rng.uniform(-0.01, 0.01),
                          rng.uniform(-0.01, 0.01), box.primitive["size_m"][2] / 2 + 1e-4])
        yaw = float(rng.uniform(-0.4, 0.4))
        target = world.add_object(box, start, tuple(world.pb.getQuaternionFromEuler([0, 0, yaw])))
        plate_spec = ObjectSpec("plate", "primitive", primitive={"kind": "box", "size_m": [0.16, 0.07, 0.01]},
                                rgba=(0.55, 0.55, 0.58, 1.0))
        plate = world.add_object(plate_spec, _FAR)
        plate_z = float(rng.uniform(0.20, 0.24))
        azimuth = float(rng.uniform(-math.pi, math.pi))
        tilt = math.radians(float(rng.uniform(15, 30)))
        mid = (spec.frames - 1) / 2 + float(rng.uniform(-2, 2))
        meta = {"generator": "graspseg.sim.episodes", "spec": {k: getattr(spec, k) for k in spec.__dataclass_fields__}}
        truth_hidden: list[int] = []
        rig = CameraRig(intr, default_tcp_from_camera(), depth_scale=1e-3, name="sim_d435")  # as SimWorld.render
        with EpisodeWriter(folder, rig=rig, meta=meta, overwrite=overwrite) as rec:
            for i in range(spec.frames):
                pos = start + np.array([spec.push_m_per_frame * i, 0.0, 0.0])
                world.p.resetBasePositionAndOrientation(target.body_id, pos.tolist(),
                                                        world.pb.getQuaternionFromEuler([0, 0, yaw]))
                a = i / max(spec.frames - 1, 1)
                dist = (1 - a) * spec.camera_distance_m[0] + a * spec.camera_distance_m[1]
                camera_from_base = _look_at(pos * [1, 1, 0] + [0, 0, box.primitive["size_m"][2] / 2], dist, tilt,
                                            azimuth, 0.0)
                # the plate sweeps along +y over the box, between it and the camera
                cam_in_base = camera_from_base.inverse().translation
                along = np.array([0.0, spec.plate_m_per_frame * (i - mid), 0.0])
                top = pos + [0, 0, box.primitive["size_m"][2] / 2]
                s = (plate_z - top[2]) / max(cam_in_base[2] - top[2], 1e-6)  # on the ray camera -> box top
                plate_pos = top + s * (cam_in_base - top) + along
                world.p.resetBasePositionAndOrientation(plate.body_id, _FAR, (0, 0, 0, 1))
                clear = world.render(camera_from_base, intrinsics=intr, rng=np.random.default_rng(0))
                world.p.resetBasePositionAndOrientation(plate.body_id, plate_pos.tolist(), (0, 0, 0, 1))
                view = world.render(camera_from_base, intrinsics=intr, timestamp_s=1.7e9 + i / spec.fps,
                                    frame_id=f"{i:06d}", rng=np.random.default_rng([spec.seed, i]))
                visible = view.mask_of(target.body_id)
                amodal = clear.mask_of(target.body_id)
                frac = float(visible.sum() / max(int(amodal.sum()), 1))
                if frac < HIDDEN_FRACTION:
                    truth_hidden.append(i)
                camera_from_object = camera_from_base @ world.base_from_object(target.body_id)
                gt = [GroundTruthObject(1, "target", visible, camera_from_object)]
                prompt = {"points_uv": [_click(visible)], "point_labels": [1]} if i == 0 else None
                rec.append(view.frame, prompt=prompt, objects=gt,
                           extra={"visible_fraction": round(frac, 4), "visible_px": int(visible.sum())})
    loss = truth_hidden[0] if truth_hidden else None
    reacq = None
    if loss is not None:
        after = [k for k in range(loss, spec.frames) if k not in truth_hidden]
        reacq = after[0] if after else None
    return {"frames": spec.frames, "hidden_frames": truth_hidden, "loss_frame": loss, "reacquire_frame": reacq}


def write_occlusion_episodes(root: str | Path, n: int, spec: EpisodeSpec | None = None, *,
                             overwrite: bool = False) -> list[Path]:
    """``n`` episodes ``root/ep_000``, ``root/ep_001``, ... with seeds ``spec.seed + k``."""
    spec = spec or EpisodeSpec()
    out = []
    for k in range(int(n)):
        folder = Path(root) / f"ep_{k:03d}"
        write_occlusion_episode(folder, EpisodeSpec(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__},
                                                       "seed": spec.seed + k}), overwrite=overwrite)
        out.append(folder)
    return out


__all__ = ["HIDDEN_FRACTION", "EpisodeSpec", "write_occlusion_episode", "write_occlusion_episodes"]
