"""Trackers on synthetic sequences with exact masks: an object that moves, is occluded, and comes back."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from graspseg.core.camera import CameraIntrinsics
from graspseg.core.errors import ConfigError, SegmentationError
from graspseg.core.frame import RGBDFrame
from graspseg.segment.tracking import RepromptTracker, Tracker, TrackStep, create_tracker, mask_iou, track
from graspseg.segment.types import MaskSet, Prompt

H, W = 96, 128


def sequence(n: int = 14, occlude: tuple[int, ...] = (6, 7), step_px: int = 3, seed: int = 0):
    """Frames and exact visible masks: a 0.1 m-high box sliding right over a table, hidden by a bar."""
    rng = np.random.default_rng(seed)
    k = CameraIntrinsics(width=W, height=H, fx=110.0, fy=110.0, cx=W / 2, cy=H / 2)
    frames, gts = [], []
    for i in range(n):
        color = rng.integers(90, 140, (H, W, 3), dtype=np.uint8)
        depth = np.full((H, W), 0.6, np.float32) + np.linspace(-0.02, 0.02, H, dtype=np.float32)[:, None]
        obj = np.zeros((H, W), bool)
        x0 = 20 + step_px * i
        obj[35:62, x0:x0 + 26] = True
        color[obj] = (200, 50, 40)
        depth[obj] = 0.5
        if i in occlude:  # a bar in front of the camera covers the whole object
            bar = np.zeros((H, W), bool)
            bar[25:72, x0 - 6:x0 + 32] = True
            color[bar] = (40, 40, 200)
            depth[bar] = 0.3
            obj &= ~bar
        frames.append(RGBDFrame(color, depth, k, timestamp_s=i / 30))
        gts.append(obj)
    return frames, gts


class DepthComponentSegmenter:
    """A minimal segmenter for testing trackers: the connected region of similar depth around the click."""

    name = "depth-component"
    accepts_text = False

    def __init__(self) -> None:
        self.frame = None
        self.calls = 0

    def set_frame(self, frame):
        self.frame = frame

    def predict(self, prompt: Prompt) -> MaskSet:
        self.calls += 1
        u, v = np.round(prompt.positive_points[0]).astype(int)
        d = self.frame.depth_m
        same = np.abs(d - d[v, u]) < 0.01
        labels, _ = ndimage.label(same)
        whole = labels == labels[v, u]
        part = whole & (np.abs(np.arange(W) - u) < 5)[None, :]
        return MaskSet(np.stack([part, whole]), [0.6, 0.9], ("part", "whole"), backend=self.name, prompt=prompt)

    def segment_all(self, frame=None):
        raise NotImplementedError


def _check_track(steps: list[TrackStep], gts: list[np.ndarray], occluded: tuple[int, ...], min_iou: float):
    for i, (s, gt) in enumerate(zip(steps, gts, strict=True)):
        if i in occluded:
            assert s.lost and not s.mask.any() and "occluded" in s.reason, (i, s.reason)
        else:
            assert not s.lost, (i, s.reason)
            assert mask_iou(s.mask, gt) >= min_iou, (i, mask_iou(s.mask, gt))


def test_reprompt_tracker_follows_moving_object_through_occlusion():
    frames, gts = sequence()
    tracker = RepromptTracker(DepthComponentSegmenter(), search_px=8)
    assert isinstance(tracker, Tracker)
    steps = track(tracker, frames, Prompt.from_point(30, 45))
    _check_track(steps, gts, (6, 7), min_iou=0.999)
    assert [s.frame_index for s in steps] == list(range(len(frames)))
    assert steps[8].iou_previous < 0.9  # it re-acquired after 3 frames of motion


def sweep_sequence(n: int = 14):
    """A box sliding right, hidden by a bar sweeping over it left to right: the box disappears from the left
    (its right edge is seen last) and comes back from the left (the side opposite the one last seen)."""
    k = CameraIntrinsics(width=W, height=H, fx=110.0, fy=110.0, cx=W / 2, cy=H / 2)
    # columns of the box covered by the bar, as fractions of its width, per frame
    cover = {5: (0.0, 0.4), 6: (0.0, 0.75), 7: (0.0, 1.0), 8: (0.0, 1.0), 9: (0.2, 1.0), 10: (0.3, 1.0)}
    frames, gts = [], []
    for i in range(n):
        color = np.full((H, W, 3), 110, np.uint8)
        depth = np.full((H, W), 0.6, np.float32)
        obj = np.zeros((H, W), bool)
        x0 = 20 + i
        obj[35:62, x0:x0 + 26] = True
        color[obj] = (200, 50, 40)
        depth[obj] = 0.5
        if i in cover:
            a, b = cover[i]
            bar = np.zeros((H, W), bool)
            bar[25:72, x0 + int(round(26 * a)):x0 + int(round(26 * b))] = True
            color[bar] = (40, 40, 200)
            depth[bar] = 0.3
            obj &= ~bar
        frames.append(RGBDFrame(color, depth, k, timestamp_s=i / 30))
        gts.append(obj)
    return frames, gts


def test_reprompt_tracker_reacquires_an_object_coming_out_on_the_other_side():
    frames, gts = sweep_sequence()
    steps = track(RepromptTracker(DepthComponentSegmenter(), search_px=8), frames, Prompt.from_point(30, 45))
    assert [s.lost for s in steps] == [False] * 7 + [True, True] + [False] * 5, [s.reason for s in steps]
    # back on the first frame a sliver shows, and it grows back to the whole box (not "area changed")
    assert steps[9].area_px == gts[9].sum() and steps[9].area_px < gts[13].sum() / 3
    assert all(mask_iou(s.mask, gts[i]) > 0.99 for i, s in enumerate(steps) if i not in (7, 8, 11))
    assert mask_iou(steps[11].mask, gts[11]) > 0.3  # the first whole view: a part of it may be taken once


def test_reprompt_tracker_reports_a_jump_to_a_bigger_region():
    frames, _ = sequence(n=3, occlude=())
    seg = DepthComponentSegmenter()
    tracker = RepromptTracker(seg, search_px=8, max_area_ratio=1.5)
    tracker.start(frames[0], Prompt.from_point(30, 45))
    real = seg.predict

    def table_instead(prompt):  # the segmenter returns the whole table: a wrong candidate
        ms = real(prompt)
        return MaskSet(~ms.masks[1:], [0.9], ("whole",))

    seg.predict = table_instead
    s = tracker.step(frames[1])
    assert s.lost and "area changed" in s.reason


def test_rgbd_tracker_on_the_rgbd_backend():
    pytest.importorskip("graspseg.segment.backends.rgbd")
    frames, gts = sequence()
    tracker = create_tracker("rgbd", search_px=8)
    steps = track(tracker, frames, Prompt.from_point(30, 45))
    _check_track(steps, gts, (6, 7), min_iou=0.8)


def test_tracker_errors():
    with pytest.raises(ConfigError, match="search_px=0"):
        RepromptTracker(DepthComponentSegmenter(), search_px=0)
    with pytest.raises(SegmentationError, match="call start"):
        RepromptTracker(DepthComponentSegmenter()).step(sequence(n=1)[0][0])


# --- SAM 2 video model, tiny random config -------------------------------------------------------
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def video_ckpt(tmp_path_factory):
    pytest.importorskip("transformers")
    from graspseg.segment.backends import hf_testing

    return hf_testing.save_checkpoint("Sam2VideoModel", hf_testing.sam2_video_config(),
                                      tmp_path_factory.mktemp("v") / "sam2v")


def test_sam2_video_tracker_streams_with_bounded_state(video_ckpt):
    frames, _ = sequence(n=10, occlude=())
    tracker = create_tracker("sam2", model=video_ckpt, device="cpu", window=3, presence_threshold=0.0)
    steps = track(tracker, frames, Prompt(points_uv=[[30, 45]], box_xyxy=[20, 35, 46, 62]))
    assert len(steps) == 10 and all(s.mask.shape == (H, W) for s in steps)
    assert all(0.0 <= s.score <= 1.0 for s in steps)
    sizes = [s.details["state"] for s in steps]
    assert max(x["frames"] for x in sizes) <= 3 + 2  # window + prompted frame + current
    assert sizes[-1]["outputs"] <= 3 + 2
    assert 0 in tracker.session.processed_frames  # the prompted frame is kept


def test_sam2_video_tracker_matches_the_model_called_directly(video_ckpt):
    import transformers

    frames, _ = sequence(n=2, occlude=())
    tracker = create_tracker("sam2", model=video_ckpt, device="cpu", presence_threshold=0.0)
    first = tracker.start(frames[0], Prompt.from_point(30, 45))
    model = tracker.model
    session = transformers.Sam2VideoInferenceSession(video_height=H, video_width=W, dtype=torch.float32)
    idx = session.obj_id_to_idx(1)
    s = tracker.input_size
    session.add_point_inputs(idx, 0, {"point_coords": torch.tensor([[[[30 * s / W, 45 * s / H]]]]),
                                      "point_labels": torch.tensor([[[1]]], dtype=torch.int32)})
    session.obj_with_new_inputs = [1]
    with torch.no_grad():
        out = model(inference_session=session, frame_idx=0, frame=tracker._pixels(frames[0].color))
    ref = torch.nn.functional.interpolate(out.pred_masks[:1], (H, W), mode="bilinear", align_corners=False)[0, 0] > 0
    assert np.array_equal(first.mask, ref.numpy()) if not first.lost else not first.mask.any()
    assert first.score == pytest.approx(float(torch.sigmoid(out.object_score_logits.reshape(-1)[0])), abs=1e-6)


def test_sam2_video_tracker_refuses_an_image_checkpoint(tmp_path):
    pytest.importorskip("transformers")
    from graspseg.segment.backends import hf_testing

    p = hf_testing.save_checkpoint("Sam2Model", hf_testing.sam2_config(), tmp_path / "img")
    with pytest.raises(ConfigError, match="'sam2' model but backend 'sam2-video'"):
        create_tracker("sam2", model=p, device="cpu")


def test_rgbd_tracker_clicks_inside_the_last_mask_when_its_first_click_finds_nothing():
    class RefusesTheFirstStepClick(DepthComponentSegmenter):
        refused = []

        def predict(self, prompt):
            if self.calls == 1 and not self.refused:  # call 0 was start(); refuse the step's first click
                self.calls += 1
                self.refused.append(prompt.positive_points[0].tolist())
                raise SegmentationError("no region found under the prompt: it lies on the support plane")
            return super().predict(prompt)

    frames, gts = sequence(n=3, occlude=())
    seg = RefusesTheFirstStepClick()
    tracker = RepromptTracker(seg, search_px=8)
    tracker.start(frames[0], Prompt.from_point(30, 45))
    step = tracker.step(frames[1])
    assert seg.refused and not step.lost and mask_iou(step.mask, gts[1]) > 0.9
    u, v = step.details["click_uv"]
    assert gts[0][int(v), int(u)] and gts[1][int(v), int(u)]  # the second click: inside the last mask, on the object
    assert step.details["mask_set"] is not None and step.details["candidate"] >= 0
