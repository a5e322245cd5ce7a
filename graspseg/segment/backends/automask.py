"""Segment everything with a SAM-family segmenter: point grid → quality/stability filter → NMS.

Follows SAM's automatic mask generator (``segment_anything/automatic_mask_generator.py``: a regular grid
of single-point prompts, all three candidates of each, filtered by predicted IoU and by the stability
of the mask under a ±1 logit shift, then box non-maximum suppression), with one change for memory and
speed: filtering and NMS run on the decoder's low-resolution logits (256×256), and only the surviving
masks are upsampled to the frame. No crops (SAM's ``crop_n_layers=0`` default).
"""

from __future__ import annotations

import numpy as np

from ...core.errors import ConfigError
from ..types import MaskSet, Prompt
from .sam import GRANULARITY_BY_AREA, stability_scores


def point_grid(width: int, height: int, points_per_side: int) -> np.ndarray:
    """(n², 2) float64 pixel (u, v) at the centres of an n×n grid of cells over the image."""
    if points_per_side < 1:
        raise ConfigError(f"points_per_side must be >= 1, got {points_per_side}")
    t = (np.arange(points_per_side) + 0.5) / points_per_side
    uu, vv = np.meshgrid(t * (width - 1), t * (height - 1))
    return np.stack([uu.ravel(), vv.ravel()], axis=1)


def box_iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """(M, M) IoU of (M, 4) boxes ``x0, y0, x1, y1`` (inclusive pixel bounds)."""
    x0 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y0 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x1 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y1 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = np.clip(x1 - x0 + 1, 0, None) * np.clip(y1 - y0 + 1, 0, None)
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    return inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9)


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    iou = box_iou_matrix(boxes[order].astype(np.float64))
    keep = np.ones(len(order), bool)
    for i in range(len(order)):  # O(M) loop over candidates, vectorised inside
        if keep[i]:
            keep[i + 1:] &= iou[i, i + 1:] <= iou_threshold
    return order[keep]


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """(M, 4) inclusive bounds ``x0, y0, x1, y1`` of (M, h, w) bool masks (zeros for empty masks)."""
    rows = masks.any(axis=2)
    cols = masks.any(axis=1)
    h, w = masks.shape[1:]
    y0 = np.where(rows.any(1), rows.argmax(1), 0)
    y1 = np.where(rows.any(1), h - 1 - rows[:, ::-1].argmax(1), 0)
    x0 = np.where(cols.any(1), cols.argmax(1), 0)
    x1 = np.where(cols.any(1), w - 1 - cols[:, ::-1].argmax(1), 0)
    return np.stack([x0, y0, x1, y1], axis=1)


def generate_masks(segmenter, *, points_per_side: int = 16, points_per_batch: int = 64,
                   pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.92,
                   stability_offset: float = 1.0, box_nms_thresh: float = 0.7, min_area_frac: float = 0.0005,
                   max_masks: int = 100) -> MaskSet:
    """Every object on the segmenter's current frame, best first.

    Parameters
    ----------
    segmenter : HFSamSegmenter
        With ``set_frame`` already called.
    points_per_side : int
        Grid of n×n single positive points.
    pred_iou_thresh, stability_score_thresh : float
        Keep candidates whose predicted IoU and stability score reach these (SAM: 0.88, 0.95).
    box_nms_thresh : float
        Box IoU above which the lower-scoring mask is dropped.
    min_area_frac : float
        Drop masks smaller than this fraction of the image.
    max_masks : int
        Upper bound on the number returned.

    Returns
    -------
    MaskSet
        One mask per object, ``details``: ``predicted_iou``, ``stability``, ``point_uv`` (K, 2) the grid point
        that produced it, ``box_xyxy`` (K, 4) pixel bounds.
    """
    import torch

    frame = segmenter.frame
    geom = segmenter.geometry
    h_img, w_img = frame.height, frame.width
    grid = point_grid(w_img, h_img, points_per_side)
    lows, ious, stabs, grans, pts = [], [], [], [], []
    valid_hw = None
    for start in range(0, len(grid), points_per_batch):
        chunk = grid[start:start + points_per_batch]
        prompts = [Prompt(points_uv=p[None], point_labels=[1]) for p in chunk]
        out = segmenter.decode(**segmenter.model_inputs(prompts), multimask_output=True)
        low = out.pred_masks[0].float()  # (P, 3, h, w) in the model's input frame
        if valid_hw is None:
            lh, lw = low.shape[-2:]
            rh, rw = geom.resized_hw
            valid_hw = (max(1, round(lh * rh / segmenter.input_size)), max(1, round(lw * rw / segmenter.input_size)))
        low = low[..., :valid_hw[0], :valid_hw[1]]
        with torch.inference_mode():
            stab = stability_scores(low, segmenter.mask_threshold, stability_offset)
            areas = (low > segmenter.mask_threshold).flatten(-2).sum(-1)
        iou = out.iou_scores[0].float()
        rank = torch.argsort(torch.argsort(areas, dim=1, stable=True), dim=1)  # 0 = smallest
        keep = (iou >= pred_iou_thresh) & (stab >= stability_score_thresh)
        keep &= areas >= max(1.0, min_area_frac * valid_hw[0] * valid_hw[1])
        idx = torch.nonzero(keep, as_tuple=False)
        if len(idx) == 0:
            continue
        lows.append(low[idx[:, 0], idx[:, 1]].cpu().numpy())
        ious.append(iou[idx[:, 0], idx[:, 1]].cpu().numpy())
        stabs.append(stab[idx[:, 0], idx[:, 1]].cpu().numpy())
        grans.extend(GRANULARITY_BY_AREA[min(int(r), 2)] for r in rank[idx[:, 0], idx[:, 1]].cpu().numpy())
        pts.append(chunk[idx[:, 0].cpu().numpy()])
    if not lows:
        return MaskSet(np.zeros((0, h_img, w_img), bool), np.zeros(0, np.float32), (), None, segmenter.name,
                       None, {"predicted_iou": np.zeros(0, np.float32), "stability": np.zeros(0, np.float32),
                              "point_uv": np.zeros((0, 2)), "box_xyxy": np.zeros((0, 4))})
    low = np.concatenate(lows)
    iou = np.concatenate(ious)
    stab = np.concatenate(stabs)
    pts_all = np.concatenate(pts)
    boxes_low = mask_boxes(low > segmenter.mask_threshold)
    kept = box_nms(boxes_low, iou, box_nms_thresh)[:max_masks]
    # Upsample only the survivors: pad the valid crop back into the model's low-res frame first.
    full_low = np.zeros((len(kept), *out.pred_masks.shape[-2:]), np.float32) - 1e4
    full_low[:, :valid_hw[0], :valid_hw[1]] = low[kept]
    with torch.inference_mode():
        logits = segmenter.upsample_logits(torch.from_numpy(full_low)).cpu().numpy()
    masks = logits > segmenter.mask_threshold
    boxes = mask_boxes(masks).astype(np.float64)
    return MaskSet(masks, np.clip(iou[kept], 0, 1), tuple(grans[i] for i in kept), logits, segmenter.name, None,
                   {"predicted_iou": iou[kept].astype(np.float32), "stability": stab[kept].astype(np.float32),
                    "point_uv": pts_all[kept], "box_xyxy": boxes})
