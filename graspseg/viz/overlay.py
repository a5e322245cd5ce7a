"""Overlay pictures: candidate masks, prompts, boundary bands and grasps drawn on the colour image.

All functions return new (H, W, 3) RGB uint8 images; nothing is written here.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: Distinct RGB colours for candidates / instances.
PALETTE = np.array(
    [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
     (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0)],
    dtype=np.uint8,
)
BAND_COLORS = {1: (40, 220, 40), 2: (40, 120, 255), 3: (255, 220, 0)}  # object, background, unknown


def _bgr(rgb) -> tuple[int, int, int]:
    return tuple(int(c) for c in rgb)


def blend_mask(image: np.ndarray, mask: np.ndarray, color, alpha: float = 0.45) -> np.ndarray:
    """Tint the ``mask`` pixels of ``image`` with ``color`` (RGB)."""
    out = image.copy()
    m = mask.astype(bool)
    out[m] = (out[m] * (1 - alpha) + np.asarray(color, np.float32) * alpha).astype(np.uint8)
    return out


def draw_contour(image: np.ndarray, mask: np.ndarray, color, thickness: int = 2) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(image, contours, -1, _bgr(color), thickness, lineType=cv2.LINE_AA)
    return image


def draw_label(image: np.ndarray, text: str, org: tuple[int, int], color=(255, 255, 255), scale: float = 0.5) -> np.ndarray:
    """Text with a dark outline so it reads on any background."""
    org = (int(org[0]), int(org[1]))
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, _bgr(color), 1, cv2.LINE_AA)
    return image


def draw_prompt(image: np.ndarray, prompt) -> np.ndarray:
    """Positive points green, negative red, box white."""
    if prompt is None:
        return image
    for (u, v), label in zip(prompt.points_uv, prompt.point_labels, strict=True):
        c = (0, 255, 0) if label == 1 else (255, 0, 0)
        cv2.circle(image, (int(round(u)), int(round(v))), 7, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(image, (int(round(u)), int(round(v))), 5, c, -1, cv2.LINE_AA)
    if prompt.box_xyxy is not None:
        x0, y0, x1, y1 = (int(round(x)) for x in prompt.box_xyxy)
        cv2.rectangle(image, (x0, y0), (x1, y1), (255, 255, 255), 2, cv2.LINE_AA)
    if prompt.mask is not None:
        draw_contour(image, prompt.mask, (255, 255, 255), 1)
    return image


def mask_set_overlay(color: np.ndarray, mask_set, selected: int | None = None, prompt=None) -> np.ndarray:
    """The frame with every candidate's contour, the selected one filled, labels and the prompt."""
    out = (color.astype(np.float32) * 0.75).astype(np.uint8)
    if selected is not None:
        out = blend_mask(out, mask_set.masks[selected], PALETTE[selected % len(PALETTE)], 0.45)
    for k in range(len(mask_set)):
        c = PALETTE[k % len(PALETTE)]
        draw_contour(out, mask_set.masks[k], c, 3 if k == selected else 1)
    y = 20
    for k in range(len(mask_set)):
        mark = "*" if k == selected else " "
        draw_label(out, f"{mark}{k} {mask_set.granularity[k]:5s} score {mask_set.scores[k]:.2f} "
                        f"area {int(mask_set.areas[k])}", (8, y), PALETTE[k % len(PALETTE)])
        y += 18
    match = mask_set.details.get("text_match")
    if isinstance(match, dict):  # a phrase answered by labelling segment-all's masks
        margin = "-" if match.get("margin") is None else f"{match['margin']:.2f}"
        text = (f"'{match['phrase']}': object {match['best_index']} p {match['probability']:.2f}, margin {margin}"
                + (f" AMBIGUOUS with object {match['runner_up_index']}" if match.get("ambiguous") else ""))
        draw_label(out, text, (8, out.shape[0] - 10), (255, 120, 120) if match.get("ambiguous") else (255, 255, 255))
    return draw_prompt(out, prompt if prompt is not None else mask_set.prompt)


#: segment-everything: the support planes and the background regions (walls, shelves) that are not objects
SUPPORT_COLOR = (90, 110, 140)
BACKGROUND_COLOR = (40, 40, 40)


def instances_overlay(color: np.ndarray, mask_set, support: np.ndarray | None = None,
                      background: np.ndarray | None = None, note: str | None = None) -> np.ndarray:
    """Segment-everything picture: each instance filled in its own colour, with its index.

    ``support`` and ``background`` (H, W) bool, when given, are tinted slate blue and dark grey (with a
    legend): what the segmenter took as the table and as scenery rather than objects. ``note`` (e.g. why
    nothing was found) is written across the top, wrapped to the image width.
    """
    out = (color.astype(np.float32) * 0.7).astype(np.uint8)
    legend = []
    for mask, c, name in ((support, SUPPORT_COLOR, "support"), (background, BACKGROUND_COLOR, "background")):
        if mask is not None and mask.any():
            out = blend_mask(out, mask, c, 0.55)
            legend.append((name, c))
    for k in range(len(mask_set)):
        c = PALETTE[k % len(PALETTE)]
        out = blend_mask(out, mask_set.masks[k], c, 0.5)
        draw_contour(out, mask_set.masks[k], c, 2)
        ys, xs = np.nonzero(mask_set.masks[k])
        if len(xs):
            draw_label(out, f"{k}:{mask_set.scores[k]:.2f}", (int(xs.mean()) - 12, int(ys.mean())))
    for i, (name, c) in enumerate(legend):
        y = out.shape[0] - 8 - 18 * (len(legend) - 1 - i)
        cv2.rectangle(out, (6, y - 11), (20, y + 1), _bgr(c), -1)
        cv2.rectangle(out, (6, y - 11), (20, y + 1), (255, 255, 255), 1)
        draw_label(out, name, (24, y))
    for i, line in enumerate(wrap_text(note, out.shape[1] - 16, 0.45) if note else []):
        draw_label(out, line, (8, 18 + 16 * i), (255, 120, 90), 0.45)
    return out


def labelled_instances_overlay(color: np.ndarray, mask_set, labels) -> np.ndarray:
    """Segment-everything picture with each object's label: ``index:label probability`` at its centre.

    ``labels`` is a :class:`~graspseg.segment.labelling.MaskLabels` for the masks of ``mask_set``; an
    ambiguous label (its runner-up phrase scores alike) is shown with ``?`` and the runner-up.
    """
    out = (color.astype(np.float32) * 0.7).astype(np.uint8)
    for k in range(len(mask_set)):
        c = PALETTE[k % len(PALETTE)]
        out = blend_mask(out, mask_set.masks[k], c, 0.5)
        draw_contour(out, mask_set.masks[k], c, 2)
    for k in range(len(mask_set)):
        ys, xs = np.nonzero(mask_set.masks[k])
        if not len(xs):
            continue
        j = int(labels.best[k])
        text = f"{k}:{labels.phrases[j]} {labels.probabilities[k, j]:.2f}"
        if labels.ambiguous[k]:
            second = int(np.argsort(-labels.logits[k])[1])
            text += f" ? {labels.phrases[second]}"
        width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0]
        u = int(np.clip(xs.mean() - width / 2, 2, max(2, out.shape[1] - width - 2)))
        v = int(np.clip(ys.mean(), 14, out.shape[0] - 4))
        draw_label(out, text, (u, v), (255, 120, 120) if labels.ambiguous[k] else (255, 255, 255))
    draw_label(out, f"labels from: {', '.join(labels.phrases)}"[:120], (8, out.shape[0] - 10), (200, 200, 200))
    return out


def crop_sheet(crops: np.ndarray, captions: Sequence[str], per_row: int = 6) -> np.ndarray:
    """(K, S, S, 3) crops in a grid, each captioned: what a labeller saw for each mask."""
    if crops.shape[1] < 112:  # tiny model inputs: enlarge so that the captions fit
        f = -(-112 // crops.shape[1])
        crops = crops.repeat(f, axis=1).repeat(f, axis=2)
    k, s = len(crops), crops.shape[1]
    rows = max(1, -(-k // per_row))
    sheet = np.zeros((rows * (s + 4), min(k, per_row) * (s + 4), 3), np.uint8)
    for i in range(k):
        y, x = (i // per_row) * (s + 4) + 2, (i % per_row) * (s + 4) + 2
        sheet[y:y + s, x:x + s] = crops[i]
        draw_label(sheet, captions[i], (x + 4, y + 16))
    return sheet


def band_overlay(image: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Colour the boundary band: object green, background blue, unknown yellow."""
    out = image.copy()
    for label, c in BAND_COLORS.items():
        if label == 1:
            continue  # object interior is shown by the mask tint
        out[band == label] = c
    return out


def margin_color(margin_mm: float, good_mm: float = 5.0) -> tuple[int, int, int]:
    """Red (≤ 0 mm) → yellow → green (≥ ``good_mm``) colour for a margin."""
    t = float(np.clip(margin_mm / good_mm, 0.0, 1.0)) if np.isfinite(margin_mm) else 0.0
    return (int(255 * min(1.0, 2 - 2 * t)), int(255 * min(1.0, 2 * t)), 40)


def gripper_outline_in_grasp(opening_m: float, width_m: float, gripper) -> list[np.ndarray]:
    """Polylines (each (P, 3), grasp frame) of a parallel-jaw gripper preset to ``opening_m``.

    Grasp frame: +z approach, +x closing, origin at the fingertip centre. The fingers (from the gripper
    model: ``finger_depth_m``, ``finger_thickness_m``) stand at ±opening/2 as they descend; the palm line sits
    at z = -finger_depth with a stem of ``palm_height_m`` towards the flange; the closing line joins the
    contacts at ±width/2.
    """
    h = opening_m / 2
    t = float(getattr(gripper, "finger_thickness_m", 0.01))
    d = float(getattr(gripper, "finger_depth_m", 0.05))
    stem = float(getattr(gripper, "palm_height_m", 0.04))
    lines = []
    for s in (-1.0, 1.0):
        inner, outer = s * h, s * (h + t)
        lines.append(np.array([[inner, 0, -d], [inner, 0, 0], [outer, 0, 0], [outer, 0, -d], [inner, 0, -d]]))
    lines.append(np.array([[-(h + t), 0, -d], [h + t, 0, -d]]))
    lines.append(np.array([[0, 0, -d], [0, 0, -d - stem]]))
    lines.append(np.array([[-width_m / 2, 0, 0], [width_m / 2, 0, 0]]))  # closing line between the contacts
    return lines


#: Colour of each rejection reason's outline (RGB); groups that need the same fix share one colour. None of
#: them is the mask's blue, the band's blue/yellow or the accepted grasps' green.
REASON_COLORS: dict[str, tuple[int, int, int]] = {
    "collision": (255, 60, 60), "table": (255, 0, 255), "friction": (200, 120, 40),
    "opening_margin": (255, 255, 255), "finger_landing": (255, 255, 255),
    "contact_unknown": (255, 255, 255), "robustness": (255, 255, 255),
}
_REASON_GROUPS = {(255, 60, 60): "collision", (255, 0, 255): "table", (200, 120, 40): "friction",
                  (255, 255, 255): "boundary-error margin", (140, 140, 140): "width / contact / depth"}
_OTHER_REASON = (140, 140, 140)
_ACCEPTED = (40, 230, 90)


def draw_grasps(image: np.ndarray, grasps, intrinsics, gripper, *, max_rejected: int = 40, top_k: int = 5) -> np.ndarray:
    """Project each grasp's gripper outline onto an RGB image.

    The best accepted grasp is drawn thick and labelled (number, width, worst-case margin); the next
    ``top_k - 1`` accepted ones thin and numbered; up to ``max_rejected`` rejected ones faint, coloured by their
    rejection reason (:data:`REASON_COLORS`), with a legend of the colours used in the bottom-left corner.
    """
    n = len(grasps)
    accepted = np.asarray(grasps.accepted, bool) if n else np.zeros(0, bool)
    h, w = image.shape[:2]

    def centre_uv(idx: int):
        c = np.asarray(grasps.camera_from_grasp[idx])[:3, 3]
        if c[2] <= 0.01:
            return None
        u, v = intrinsics.project(c[None])[0]
        return (int(np.clip(u, 0, w - 1)), int(np.clip(v, 0, h - 1))) if np.isfinite(u) else None

    def draw_one(target: np.ndarray, idx: int, color, thickness: int) -> None:
        pose = np.asarray(grasps.camera_from_grasp[idx])
        for line in gripper_outline_in_grasp(float(grasps.opening_m[idx]), float(grasps.width_m[idx]), gripper):
            pts = line @ pose[:3, :3].T + pose[:3, 3]
            if (pts[:, 2] <= 0.01).any():  # behind or at the camera: not drawable
                continue
            uv = intrinsics.project(pts)
            cv2.polylines(target, [np.round(uv).astype(np.int32)], False, _bgr(color), thickness, cv2.LINE_AA)

    rejected_idx = np.flatnonzero(~accepted)[:max_rejected]
    accepted_idx = np.flatnonzero(accepted)[:top_k]
    out = image.copy()
    used: dict[tuple[int, int, int], str] = {}
    if len(rejected_idx):
        faint = image.copy()
        for i in rejected_idx:
            color = REASON_COLORS.get(str(grasps.rejected_because[i]), _OTHER_REASON)
            used[color] = _REASON_GROUPS[color]
            draw_one(faint, i, color, 1)
        out = cv2.addWeighted(faint, 0.5, out, 0.5, 0)
    for rank in range(len(accepted_idx) - 1, -1, -1):  # the best drawn last, on top
        i = accepted_idx[rank]
        draw_one(out, i, _ACCEPTED, 3 if rank == 0 else 1)
        uv = centre_uv(i)
        if uv is not None:
            draw_label(out, str(rank + 1), (uv[0] + 4, uv[1] - 4), _ACCEPTED, 0.45)
    if len(accepted_idx):
        best = accepted_idx[0]
        uv = centre_uv(best)
        if uv is not None:
            cv2.circle(out, uv, 4, (255, 255, 255), -1, cv2.LINE_AA)
        text = (f"#1 width {grasps.width_m[best] * 1e3:.0f} mm, opening {grasps.opening_m[best] * 1e3:.0f} mm, "
                f"worst-case margin {grasps.worst_case_margin_mm[best]:.1f} mm")
        lines = wrap_text(text, out.shape[1] - 16, 0.45)
        for j, line in enumerate(lines):  # wrapped to the image width, stacked above the legend
            draw_label(out, line, (8, h - 12 - 16 * (len(used) + len(lines) - j)), _ACCEPTED, 0.45)
    legend = [(_ACCEPTED, f"accepted (top {len(accepted_idx)} numbered)")] if len(accepted_idx) else []
    legend += [(c, f"rejected: {name}") for c, name in used.items()]
    for j, (color, name) in enumerate(legend):
        y = h - 12 - 16 * (len(legend) - 1 - j)
        cv2.line(out, (8, y - 4), (26, y - 4), _bgr(color), 2, cv2.LINE_AA)
        draw_label(out, name, (32, y), color, 0.42)
    return out


def wrap_text(text: str, width_px: int, scale: float = 0.45) -> list[str]:
    """Split ``text`` into lines that fit ``width_px`` pixels in cv2's Hershey simplex font at ``scale``."""
    words, lines, cur = text.split(), [], ""
    for word in words:
        trial = f"{cur} {word}".strip()
        if cur and cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width_px:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return lines + ([cur] if cur else [])


def stack_side_by_side(images: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate RGB images horizontally, padding heights."""
    h = max(i.shape[0] for i in images)
    padded = [np.pad(i, ((0, h - i.shape[0]), (0, 0), (0, 0))) for i in images]
    return np.concatenate(padded, axis=1)
