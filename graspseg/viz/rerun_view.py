"""Results in the rerun viewer (extra ``viz``): colour image, mask, boundary band, cloud and grasps.

Entities (camera frame ``camera_color_optical``, metres):

``camera``            pinhole of the frame's intrinsics (the 3D view shows the image in its frustum)
``camera/image``      the colour image; ``camera/image/mask`` and ``camera/image/band`` as segmentation layers
``camera/cloud``      the object's points (band-unknown points yellow)
``camera/grasps``     accepted grasps' gripper outlines (the best one thick), rejected ones faint
``status``            one text line per frame: status, source, latency, keyframe age (live); track, flags, best
                      grasp (analysis)
``metrics/<name>``    scalars over time (analysis: track score, best worst-case margin, accepted grasps)

Timelines: ``frame`` (the camera's frame number live, the episode's frame index in an analysis) and
``capture_time`` (the frame's timestamp).

:class:`RerunViewer` is the one rerun writer: ``graspseg live --viewer`` logs live results through :meth:`RerunViewer.log`,
``graspseg analyze --rrd`` every analysed frame through :meth:`RerunViewer.log_frame`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

BAND_CLASSES = {0: ("outside", (0, 0, 0, 0)), 1: ("object", (60, 140, 255, 110)), 2: ("background leak", (40, 90, 255, 200)),
                3: ("unknown", (255, 220, 0, 200))}


def import_rerun(purpose: str = "the rerun viewer"):
    """``rerun``, or :class:`MissingDependencyError` naming the ``viz`` extra."""
    try:
        import rerun as rr
    except ImportError:
        raise MissingDependencyError("rerun-sdk", "viz", purpose) from None
    return rr


class RerunViewer:
    """Send results to rerun: :class:`~graspseg.loop.LiveResult` s (:meth:`log`) or any frame with its
    :class:`~graspseg.pipeline.PerceptionResult` or mask (:meth:`log_frame`).

    Parameters
    ----------
    target : str
        ``"rerun"`` spawns (or connects to) a viewer on this machine; a path ending in ``.rrd`` saves a recording
        to open later with ``rerun FILE.rrd``.
    max_rejected : int
        Rejected grasps drawn per result.
    app_id, recording_id : str
        How the viewer names the application and this recording.
    """

    def __init__(self, target: str = "rerun", *, app_id: str = "graspseg_live", max_rejected: int = 20,
                 recording_id: str | None = None) -> None:
        rr = import_rerun()
        self.rr = rr
        self.max_rejected = int(max_rejected)
        self.stream = rr.RecordingStream(app_id, recording_id=recording_id)
        if target == "rerun":
            self.stream.spawn()
        elif str(target).endswith(".rrd"):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            self.stream.save(str(target))
        else:
            raise ConfigError(f"--viewer is {target!r}; give 'rerun' (a live viewer) or a FILE.rrd path to save")
        self.target = str(target)
        self._pinhole_key = None
        self.logged = 0

    def log(self, live) -> None:
        """Log one :class:`~graspseg.loop.LiveResult` (and its frame)."""
        frame = live.frame
        text = (f"{live.status} ({live.source}) frame {frame.frame_id}: latency {live.latency_s * 1e3:.0f} ms, "
                f"keyframe {live.keyframe_frame_id} {live.keyframe_age_s:.2f} s old")
        if live.reason:
            text += f" — {live.reason}"
        self.log_frame(frame, int(frame.meta.get("color_frame_number", live.sequence)), live.result,
                       text=text, warn=live.status != "ok")

    def log_frame(self, frame, sequence: int, result=None, *, mask=None, text: str = "", warn: bool = False,
                  scalars: dict | None = None) -> None:
        """Log one frame with what perception made of it.

        Parameters
        ----------
        frame : RGBDFrame
        sequence : int
            Position on the ``frame`` timeline.
        result : PerceptionResult or None
            Its mask, band, cloud and grasps are drawn; None clears them (target lost, frame not analysed).
        mask : (H, W) bool, optional
            The mask to draw when there is no ``result`` (a tracked mask); ignored when ``result`` is given.
        text : str
            One status line (``status`` entity), at WARN level when ``warn``.
        scalars : dict, optional
            ``{name: value}`` plotted over time under ``metrics/<name>`` (non-finite values are skipped).
        """
        rr, s = self.rr, self.stream
        s.set_time("frame", sequence=int(sequence))
        s.set_time("capture_time", duration=float(frame.timestamp_s))
        intr = frame.intrinsics
        key = (intr.width, intr.height, intr.fx, intr.fy, intr.cx, intr.cy)
        if key != self._pinhole_key:
            s.log("camera", rr.Pinhole(image_from_camera=intr.K, resolution=[intr.width, intr.height],
                                       camera_xyz=rr.ViewCoordinates.RDF), static=True)
            s.log("camera/image/band", rr.AnnotationContext([(k, name, color) for k, (name, color) in BAND_CLASSES.items()]),
                  static=True)
            self._pinhole_key = key
        s.log("camera/image", rr.Image(frame.color))
        if text:
            s.log("status", rr.TextLog(text, level="WARN" if warn else "INFO"))
        for name, value in (scalars or {}).items():
            if value is not None and np.isfinite(value):
                s.log(f"metrics/{name}", rr.Scalars(float(value)))
        r = result
        if r is None:
            if mask is not None and np.any(mask):
                s.log("camera/image/mask", rr.SegmentationImage(np.asarray(mask, np.uint8)))
            else:
                s.log("camera/image/mask", rr.Clear(recursive=False))
            for entity in ("camera/image/band", "camera/cloud", "camera/grasps"):
                s.log(entity, rr.Clear(recursive=False))
            self.logged += 1
            return
        s.log("camera/image/mask", rr.SegmentationImage(r.mask.astype(np.uint8)))
        s.log("camera/image/band", rr.SegmentationImage(np.asarray(r.cloud.band, np.uint8)))
        pts = np.asarray(r.cloud.points_in_camera)
        colors = np.asarray(r.cloud.colors).copy()
        colors[np.asarray(r.cloud.labels) == 3] = (255, 220, 0)
        s.log("camera/cloud", rr.Points3D(pts, colors=colors, radii=0.0015))
        strips, strip_colors, radii = self._grasp_lines(r)
        if strips:
            s.log("camera/grasps", rr.LineStrips3D(strips, colors=strip_colors, radii=radii))
        else:
            s.log("camera/grasps", rr.Clear(recursive=False))
        self.logged += 1

    def _grasp_lines(self, r):
        from ..viz.overlay import gripper_outline_in_grasp

        g = r.grasps
        n = len(g)
        if not n:
            return [], [], []
        accepted = np.asarray(g.accepted, bool)
        order = list(np.flatnonzero(accepted)[:5]) + list(np.flatnonzero(~accepted)[: self.max_rejected])
        strips, colors, radii = [], [], []
        best = order[0] if accepted.any() else None
        for i in order:
            pose = np.asarray(g.camera_from_grasp[i])
            for line in gripper_outline_in_grasp(float(g.opening_m[i]), float(g.width_m[i]), r.gripper):
                strips.append(np.asarray(line) @ pose[:3, :3].T + pose[:3, 3])
                if accepted[i]:
                    colors.append((40, 220, 80, 255))
                    radii.append(0.002 if i == best else 0.0008)
                else:
                    colors.append((230, 60, 60, 90))
                    radii.append(0.0004)
        return strips, colors, radii

    def close(self) -> None:
        self.stream.flush()
        self.stream.disconnect()


__all__ = ["RerunViewer", "import_rerun"]
