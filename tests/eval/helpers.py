"""Shared by the eval tests: small frame folders of a box on a table, a segmenter with a known error."""

from pathlib import Path

import numpy as np

from graspseg.capture import GroundTruthObject, save_frame_folder
from graspseg.core import CameraIntrinsics, RGBDFrame
from graspseg.segment import MaskSet


def box_frame(k: int):
    """640x480: a table at 0.5 m and a 6 cm red box at 0.44 m (shifted by k px), its exact mask."""
    depth = np.full((480, 640), 0.5, np.float32)
    color = np.full((480, 640, 3), 120, np.uint8)
    box = np.zeros((480, 640), bool)
    box[200:280, 280 + k:360 + k] = True
    depth[box] = 0.44
    color[box] = (200, 30, 30)
    frame = RGBDFrame(color, depth, CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5), frame_id=f"b{k}",
                      meta={"depth_scale": 1e-4})
    return frame, [GroundTruthObject(1, "box", box)]


def write_boxes(root: Path) -> Path:
    """Two frame folders ``root/boxes/000`` and ``root/boxes/030``; returns ``root/boxes``."""
    for k in (0, 30):
        frame, objs = box_frame(k)
        save_frame_folder(frame, root / "boxes" / f"{k:03d}", objects=objs)
    return root / "boxes"


class OffsetSegmenter:
    """Returns the true mask of the frame grown by ``grow`` px (a known boundary error) for every prompt."""

    def __init__(self, masks_by_frame, grow=0):
        self.masks, self.grow, self.frame = masks_by_frame, grow, None

    def set_frame(self, frame):
        self.frame = frame.frame_id

    def predict(self, prompt):
        import cv2

        m = self.masks[self.frame].astype(np.uint8)
        if self.grow:
            m = cv2.dilate(m, np.ones((2 * self.grow + 1,) * 2, np.uint8))
        return MaskSet(m[None] > 0, [0.9], ("whole",))
