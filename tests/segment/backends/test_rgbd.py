"""The embedded rgbd segmenter on constructed frames, the shipped real frame and synthetic clutter."""

import numpy as np
import pytest

from graspseg.capture.frame_folder import load_frame_folder, load_ground_truth
from graspseg.core import CameraIntrinsics, RGBDFrame
from graspseg.core.errors import ConfigError, PromptError, SegmentationError
from graspseg.eval import boundary_f_score, first_click, mask_iou
from graspseg.segment.backends.rgbd import RGBDSegmenter, RGBDSegmenterConfig
from graspseg.segment.types import MaskSet, Prompt

TABLE_Z = 0.6
TABLE_RGB = (140, 110, 80)


def tabletop(boxes, *, holes=(), size=(480, 640)):
    """A camera looking straight down at a table TABLE_Z away, with flat-topped boxes.

    boxes: list of (y0, y1, x0, x1, height_m, rgb). holes: list of (y0, y1, x0, x1) slices set to depth 0.
    Returns the frame and the (H, W) bool mask of every box.
    """
    h, w = size
    intr = CameraIntrinsics(w, h, 600.0, 600.0, (w - 1) / 2, (h - 1) / 2)
    depth = np.full((h, w), TABLE_Z, np.float32)
    color = np.empty((h, w, 3), np.uint8)
    color[:] = TABLE_RGB
    rng = np.random.default_rng(0)
    color = np.clip(color + rng.normal(0, 3, color.shape), 0, 255).astype(np.uint8)
    masks = []
    for y0, y1, x0, x1, height, rgb in boxes:
        depth[y0:y1, x0:x1] = TABLE_Z - height
        color[y0:y1, x0:x1] = rgb
        m = np.zeros((h, w), bool)
        m[y0:y1, x0:x1] = True
        masks.append(m)
    for y0, y1, x0, x1 in holes:
        depth[y0:y1, x0:x1] = 0
    return RGBDFrame(color, depth, intr, frame_id="tabletop"), masks


@pytest.fixture(scope="module")
def two_boxes():
    # two boxes side by side, touching, different heights (a depth jump between their tops)
    return tabletop([(180, 300, 200, 300, 0.06, (200, 30, 30)), (180, 300, 300, 420, 0.10, (30, 30, 200))])


@pytest.fixture(scope="module")
def seg2(two_boxes):
    seg = RGBDSegmenter()
    seg.set_frame(two_boxes[0])
    return seg


def test_click_gives_three_candidates_and_the_object(seg2, two_boxes):
    _, masks = two_boxes
    ms = seg2.predict(Prompt.from_point(250, 240))
    assert isinstance(ms, MaskSet) and ms.backend == "rgbd"
    assert ms.granularity == ("part", "whole", "group")
    assert mask_iou(ms.masks[1], masks[0]) > 0.97
    assert boundary_f_score(ms.masks[1], masks[0], 2) > 0.95
    assert np.all((ms.scores >= 0) & (ms.scores <= 1))
    # logits are positive exactly inside the masks
    assert np.array_equal(ms.logits > 0, ms.masks)
    assert ms.details["stability"].shape == (3,)
    # the other box is its own object
    ms2 = seg2.predict(Prompt.from_point(360, 240))
    assert mask_iou(ms2.masks[1], masks[1]) > 0.97
    assert not (ms.masks[1] & ms2.masks[1]).any()


def test_support_plane_found(seg2):
    f = seg2.features
    assert f.plane.found and f.plane.reason == ""
    assert abs(abs(f.plane.normal[2]) - 1) < 1e-3  # the table faces the camera
    assert f.plane.offset == pytest.approx(TABLE_Z, abs=2e-3)
    assert f.support[10, 10] and not f.support[240, 250]


def test_box_and_mask_prompts(seg2, two_boxes):
    _, masks = two_boxes
    ms = seg2.predict(Prompt.from_box(190, 170, 310, 310))
    assert mask_iou(ms.masks[ms.select("whole")], masks[0]) > 0.97
    coarse = np.zeros_like(masks[1])
    coarse[200:280, 320:400] = True  # an eroded mask of the second box
    ms = seg2.predict(Prompt(mask=coarse))
    assert mask_iou(ms.masks[1], masks[1]) > 0.97


def test_negative_point_excludes_a_region(seg2, two_boxes):
    _, masks = two_boxes
    # a box prompt over both boxes, a negative click on the second one
    p = Prompt(points_uv=[[360, 240]], point_labels=[0], box_xyxy=[195, 175, 425, 305])
    ms = seg2.predict(p)
    assert mask_iou(ms.masks[1], masks[0]) > 0.95
    # positive and negative clicks inside one region split it between them
    p = Prompt(points_uv=[[220, 240], [290, 240]], point_labels=[1, 0])
    ms = seg2.predict(p)
    m = ms.masks[1]
    assert m[240, 220] and not m[240, 290]
    assert 0.3 < m.sum() / masks[0].sum() < 0.7


def test_segment_all_finds_each_object(seg2, two_boxes):
    _, masks = two_boxes
    ms = seg2.segment_all()
    assert len(ms) == 2 and set(ms.granularity) == {"whole"}
    best = sorted(max(mask_iou(m, g) for m in ms.masks) for g in masks)
    assert best[0] > 0.97


def test_holes_are_decided_from_colour_and_never_split_an_object():
    # a no-depth stripe across the box (dark material) and a shadow band beside it, table-coloured
    frame, masks = tabletop([(180, 300, 200, 300, 0.06, (200, 30, 30))],
                            holes=[(230, 240, 200, 300), (180, 300, 185, 200)])
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    ms = seg.predict(Prompt.from_point(250, 210))
    m = ms.masks[1]
    assert m[260, 250], "the part of the box beyond the hole must stay in the object"
    assert m[235, 250], "the enclosed hole takes the colour of the object"
    assert not m[240, 190], "the shadow band has the table's colour and stays out"
    assert mask_iou(m, masks[0]) > 0.95
    # the boundary at the shadow band is less certain than at the depth jump: wider logit transition
    lg = ms.logits[1]
    slope_shadow = abs(lg[240, 201] - lg[240, 199])
    slope_jump = abs(lg[240, 299] - lg[240, 301])
    assert slope_jump > slope_shadow


def test_real_frame_click(sample_frame_dir):
    frame = load_frame_folder(sample_frame_dir)
    gt = load_ground_truth(sample_frame_dir)[0].mask
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    ms = seg.predict(Prompt.from_point(*first_click(gt)))
    whole = ms.masks[ms.select("whole")]
    assert mask_iou(whole, gt) > 0.93
    # this true mask was projected from the depth cloud: the depth rim matches it closest
    assert boundary_f_score(whole, gt, 2) > 0.75
    assert ms.masks[2].sum() >= whole.sum()  # group contains the whole
    assert not (ms.masks[0] & ~whole).any()  # part within the whole
    depth_rim = RGBDSegmenter(refine_band_px=0)
    depth_rim.set_frame(frame)
    assert boundary_f_score(depth_rim.predict(Prompt.from_point(*first_click(gt))).masks[1], gt, 2) > 0.9


def test_synthetic_touching_objects_are_separated():
    synthetic = pytest.importorskip("graspseg.sim.synthetic")
    scene = synthetic.make_scene("side_by_side", seed=1, n_objects=4, noise=synthetic.DepthNoise())
    seg = RGBDSegmenter()
    seg.set_frame(scene.frame)
    ious = [mask_iou(ms.masks[1], obj.mask) for obj, ms in _click_each_object(seg, scene)]
    assert len(ious) >= 3 and min(ious) > 0.85, ious


def _click_each_object(seg, scene, min_px=400):
    """(object, MaskSet) for one first click on every scene object of at least ``min_px`` pixels."""
    return [(obj, seg.predict(Prompt.from_point(*first_click(obj.mask))))
            for obj in scene.objects if obj.mask.sum() >= min_px]


# --- bad input ------------------------------------------------------------------------------------------
def test_text_prompt_is_refused(seg2):
    with pytest.raises(PromptError, match="backend 'rgbd' does not accept text prompts"):
        seg2.predict(Prompt(text="red box"))


def test_prompt_outside_the_image(seg2):
    with pytest.raises(PromptError, match=r"point \(700, 10\) is outside the 640x480 image"):
        seg2.predict(Prompt.from_point(700, 10))
    with pytest.raises(PromptError, match="lies entirely outside"):
        seg2.predict(Prompt.from_box(650, 10, 700, 50))


def test_empty_box_is_refused():
    with pytest.raises(PromptError, match="is empty: need x1 > x0"):
        Prompt.from_box(10, 10, 10, 50)


def test_all_zero_depth_in_prompt_region():
    frame, _ = tabletop([(180, 300, 200, 300, 0.06, (200, 30, 30))], holes=[(0, 100, 0, 100)])
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    with pytest.raises(PromptError, match="no reading .all zero. in the prompt region"):
        seg.predict(Prompt.from_point(40, 40))
    with pytest.raises(PromptError, match="enlarge the box"):
        seg.predict(Prompt.from_box(10, 10, 80, 80))


def test_click_on_the_table_says_so(seg2):
    with pytest.raises(SegmentationError, match="lies on the support plane .the table."):
        seg2.predict(Prompt.from_point(20, 20))


def test_predict_needs_a_frame_and_a_prompt(seg2):
    with pytest.raises(SegmentationError, match="call set_frame"):
        RGBDSegmenter().predict(Prompt.from_point(1, 1))
    with pytest.raises(PromptError, match="predict needs a Prompt"):
        seg2.predict((10, 10))
    with pytest.raises(SegmentationError, match="set_frame needs an RGBDFrame"):
        RGBDSegmenter().set_frame(np.zeros((4, 4)))


def test_config_validation():
    with pytest.raises(ConfigError, match=r"segment.rgbd.jump_a_m must be >= 0"):
        RGBDSegmenterConfig(jump_a_m=-1)
    with pytest.raises(ConfigError, match="must exceed min_depth_m"):
        RGBDSegmenterConfig(min_depth_m=2.0, max_depth_m=1.0)
    with pytest.raises(ConfigError, match="stability_scales must be positive"):
        RGBDSegmenterConfig(stability_scales=(0.5, -1.0))
    with pytest.raises(ConfigError, match="normal_downsample must be >= 1"):
        RGBDSegmenterConfig(normal_downsample=0)
    with pytest.raises(ConfigError, match="refine_min_gain must be >= 1"):
        RGBDSegmenterConfig(refine_min_gain=0.5)
    with pytest.raises(ConfigError, match=r"unknown rgbd segmenter option\(s\) \['jump_threshold'\]"):
        RGBDSegmenter(jump_threshold=0.1)
    cfg = RGBDSegmenterConfig(jump_a_m=0.01)
    assert RGBDSegmenter(cfg, jump_b_per_m=0.03).config == RGBDSegmenterConfig(jump_a_m=0.01, jump_b_per_m=0.03)


# --- depth dropouts, open tops, differently coloured neighbours ------------------------------------------
def test_fill_speckle_fills_scattered_dropouts_but_not_wide_holes():
    from graspseg.segment.backends.rgbd_features import fill_speckle

    z = np.full((60, 80), 0.5, np.float32)
    z[10:40:3, 10:70:3] = 0  # scattered single-pixel dropouts
    z[42:58, 50:70] = 0  # a wide hole (a shadow)
    before = z.copy()
    out = fill_speckle(z, 2.0, 5, 0.5)
    assert np.array_equal(z, before), "the input must not be modified"
    assert (out[10:40, 10:70] == 0.5).all()
    assert (out[46:54, 54:66] == 0).all(), "the middle of a wide hole stays without depth"


def test_speckled_dark_box_is_one_object():
    # a dark box whose depth reads only in speckles (every third pixel on a grid missing, plus rows)
    frame, masks = tabletop([(180, 300, 200, 300, 0.06, (25, 25, 25)), (180, 300, 300, 420, 0.10, (30, 30, 200))])
    depth = frame.depth_m.copy()
    rng = np.random.default_rng(3)
    drop = (rng.random(depth.shape) < 0.3) & masks[0]
    depth[drop] = 0
    frame = RGBDFrame(frame.color, depth, frame.intrinsics, frame_id="speckled")
    ious = {}
    for fill in (0.0, 2.0):
        seg = RGBDSegmenter(speckle_fill_px=fill)
        seg.set_frame(frame)
        ms = seg.predict(Prompt.from_point(250, 240))
        ious[fill] = mask_iou(ms.masks[1], masks[0])
    assert ious[2.0] > 0.97, ious
    assert ious[2.0] > ious[0.0], ious


def _synthetic_iou(layout, seed, name):
    synthetic = pytest.importorskip("graspseg.sim.synthetic")
    scene = synthetic.make_scene(layout, seed=seed, n_objects=4, noise=None)
    obj = next(o for o in scene.objects if o.name == name)
    seg = RGBDSegmenter()
    seg.set_frame(scene.frame)
    ms = seg.predict(Prompt.from_point(*first_click(obj.mask)))
    return mask_iou(ms.masks[1], obj.mask)


def test_open_mug_top_joins_its_wall():
    # seen from above, a mug's rim and inside are one fragment and its outer wall another, met at a crease
    assert _synthetic_iou("side_by_side", 2, "white_mug") > 0.85


def test_differently_coloured_box_behind_is_not_merged_into_the_front_one():
    # the yellow box's visible top is a thin strip behind a pink box; it is not the pink box's appendage
    assert _synthetic_iou("clutter", 2, "yellow_box") > 0.5


def _merged(regions, shape):
    """merge_fragments on a flat, evenly coloured frame 0.6 m away, 5 cm above the support.

    regions: list of (y0, y1, x0, x1, mean convexity, rows touching the support at the bottom[, depth m])
    in label order 1, 2, ... (later ones drawn over earlier ones); returns the merged label of each region
    at its top-left pixel.
    """
    from graspseg.segment.backends.rgbd_features import merge_fragments

    frag = np.zeros(shape, np.int32)
    height = np.full(shape, 0.05, np.float32)
    curvature = np.zeros(shape, np.float32)
    depth = np.full(shape, 0.6, np.float32)
    for i, (y0, y1, x0, x1, curv, low_rows, *z) in enumerate(regions, start=1):
        frag[y0:y1, x0:x1] = i
        curvature[y0:y1, x0:x1] = curv
        height[y1 - low_rows:y1, x0:x1] = 0.005
        depth[y0:y1, x0:x1] = z[0] if z else 0.6
    lab = np.zeros(shape + (3,), np.float32)
    out = merge_fragments(frag, height, depth, depth, lab, curvature, RGBDSegmenterConfig())
    return [int(out[y0, x0]) for y0, _, x0, *_ in regions]


def test_merged_fragment_is_never_picked_again_as_a_neighbour():
    # a rim (1) joins the inside (2) as its open top; the inside (with the rim) then joins the convex outer
    # wall (3) standing on the support, although the rim shared a longer boundary with it than the wall does
    rim, inside, wall = _merged([(8, 20, 20, 180, 0.0, 0), (20, 50, 20, 180, -0.03, 0),
                                 (50, 100, 30, 170, 0.05, 5)], (120, 220))
    assert rim == inside == wall


def test_floor_enclosed_by_the_rims_in_front_of_it_joins_them_all():
    # a container seen from above: its floor (3, on the support, behind) is enclosed by a rim in two
    # fragments (1, 2) 5 cm nearer; the floor joins one, and the other rim occluding it joins too
    left, right, floor = _merged([(10, 70, 10, 40, 0.05, 0, 0.55), (10, 70, 40, 70, 0.05, 0, 0.55),
                                  (20, 60, 20, 50, -0.1, 40, 0.6)], (80, 80))
    assert left == right == floor


def test_standing_container_is_not_the_open_top_of_a_box_it_touches():
    # a mug's top (1) over its wall (2) standing on the support, beside a larger box (3) of the same colour,
    # met at a crease: the mug (top and wall) is one object, the box another
    top, wall, box = _merged([(10, 30, 20, 170, -0.03, 0), (30, 90, 20, 170, 0.0, 6),
                              (20, 130, 170, 290, 0.05, 6)], (140, 320))
    assert top == wall
    assert wall != box


def test_scores_include_solidity_lower_for_non_convex_masks():
    # a rectangular box and an L-shaped object (two equal-height, same-coloured blocks: one surface)
    frame, masks = tabletop([(100, 200, 100, 200, 0.06, (200, 30, 30)),
                             (260, 380, 300, 340, 0.06, (30, 30, 200)), (340, 380, 340, 460, 0.06, (30, 30, 200))])
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    rect = seg.predict(Prompt.from_point(150, 150))
    ell = seg.predict(Prompt.from_point(320, 300))
    assert mask_iou(ell.masks[1], masks[1] | masks[2]) > 0.95
    assert rect.details["solidity"][1] > 0.97
    assert ell.details["solidity"][1] < 0.75
    parts = [rect.details[k][1] for k in ("stability", "contrast", "purity", "solidity")]
    assert rect.scores[1] == pytest.approx(np.clip(np.mean(parts), 0, 1), abs=1e-5)


# --- close-ups without a visible table --------------------------------------------------------------------
def cylinder_closeup(radius_m=0.1, axis_z_m=0.25, size=(480, 640)):
    """A camera 0.15 m from a large horizontal cylinder (axis along the camera x) that fills the whole view."""
    h, w = size
    intr = CameraIntrinsics(w, h, 600.0, 600.0, (w - 1) / 2, (h - 1) / 2)
    y = intr.ray_image[..., 1]
    # the ray t (x, y, 1) meets (t y)² + (t - axis_z)² = r² first at the smaller root
    a = y * y + 1.0
    disc = axis_z_m ** 2 - a * (axis_z_m ** 2 - radius_m ** 2)
    depth = ((axis_z_m - np.sqrt(disc)) / a).astype(np.float32)
    rng = np.random.default_rng(0)
    color = np.clip(np.full((h, w, 3), (180, 40, 40)) + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)
    return RGBDFrame(color, depth, intr, frame_id="closeup")


@pytest.fixture(scope="module")
def mug_only(sample_frame_dir):
    """The shipped frame with depth only on the mug: a wrist close-up where no table is visible."""
    frame = load_frame_folder(sample_frame_dir)
    gt = load_ground_truth(sample_frame_dir)[0].mask
    depth = np.where(gt, frame.depth_m, 0).astype(np.float32)
    return RGBDFrame(frame.color, depth, frame.intrinsics, frame_id="mug_only"), gt


def test_mug_close_up_without_table_is_segmented(mug_only):
    frame, gt = mug_only
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    plane = seg.features.plane
    assert not plane.found  # RANSAC's best plane is a band across the mug's front wall
    assert "too small to be the table" in plane.reason
    assert not seg.features.support.any()
    ms = seg.predict(Prompt.from_point(352, 280))
    whole = ms.masks[1]
    valid = frame.depth_m > 0
    # the whole valid-depth region connected to the click (the mug) is the object
    assert np.count_nonzero(whole & valid) >= 0.99 * np.count_nonzero(valid)
    # beyond it only the hole inside the handle (no depth, enclosed by the mug) is added
    assert mask_iou(whole, gt) > 0.85
    assert not (ms.masks[0] & ~whole).any()
    assert np.all(np.isfinite(ms.logits))


def test_plane_through_a_curved_object_filling_the_view_is_rejected():
    frame = cylinder_closeup()
    assert (frame.depth_m > 0).all()
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    plane = seg.features.plane
    assert not plane.found
    assert "continue it smoothly behind it" in plane.reason and "not a table" in plane.reason
    ms = seg.predict(Prompt.from_point(320, 240))
    assert ms.masks[1].all() and ms.masks[2].all()  # one object filling the view
    assert np.all(ms.logits[1] > 0) and np.all(np.isfinite(ms.logits))
    assert np.all((ms.scores >= 0) & (ms.scores <= 1))
    # the same plane taken as the table (plausibility checks off) swallows the click: the reported bug
    lax = RGBDSegmenter(plane_max_below_fraction=1.0, plane_min_hull_fraction=0.0)
    lax.set_frame(frame)
    assert lax.features.plane.found
    with pytest.raises(SegmentationError, match="lies on the support plane"):
        lax.predict(Prompt.from_point(320, 240))


def test_table_with_floor_past_its_edge_is_still_the_support(two_boxes):
    frame, masks = two_boxes
    depth = frame.depth_m.copy()
    depth[400:] = TABLE_Z + 0.7  # the floor seen past the table's edge, far below it
    seg = RGBDSegmenter()
    seg.set_frame(RGBDFrame(frame.color, depth, frame.intrinsics))
    assert seg.features.plane.found, seg.features.plane.reason
    assert seg.features.plane.offset == pytest.approx(TABLE_Z, abs=2e-3)
    ms = seg.predict(Prompt.from_point(250, 240))
    assert mask_iou(ms.masks[1], masks[0]) > 0.97


def test_click_on_a_tiny_region_without_support_plane_says_so():
    frame = cylinder_closeup()
    depth = np.zeros_like(frame.depth_m)
    depth[200:206, 300:306] = 0.3  # 36 px of depth: no plane, and too small to be an object
    seg = RGBDSegmenter()
    seg.set_frame(RGBDFrame(frame.color, depth, frame.intrinsics))
    assert not seg.features.plane.found
    with pytest.raises(SegmentationError, match="no support plane was found"):
        seg.predict(Prompt.from_point(302, 202))


def test_pipeline_perceives_a_close_up_without_table(mug_only):
    from graspseg.pipeline import Pipeline

    frame, gt = mug_only
    result = Pipeline().perceive(frame, Prompt.from_point(352, 280))
    assert result.cloud.plane is None
    assert any("support plane" in n for n in result.notes)
    assert mask_iou(result.mask, gt) > 0.85


# --- support planes judged by what stands on them ----------------------------------------------------------
@pytest.fixture(scope="module")
def third_person_room():
    from graspseg.sim.synthetic import DepthNoise, make_scene

    return make_scene("clutter", seed=1, n_objects=8, width=960, height=540, distance_m=1.2, tilt_deg=50,
                      room=True, noise=DepthNoise())


def test_third_person_table_with_the_room_behind_it_is_the_support(third_person_room):
    """The floor and the wall past a table lie behind its plane; they say nothing against it."""
    scene = third_person_room
    seg = RGBDSegmenter()
    seg.set_frame(scene.frame)
    plane = seg.features.plane
    assert plane.found, plane.reason
    true = scene.plane
    assert abs(float(plane.normal @ true.normal)) > np.cos(np.radians(2))
    assert plane.offset == pytest.approx(true.offset, abs=0.02)
    assert plane.supported_fraction > 0.01
    # the same frame under the old rule (every sample behind the plane counts, floor gap aside) was refused
    z = scene.frame.depth_m
    table = (scene.instance_ids == 0) & (z > 0)
    v, u = np.nonzero(table)
    pts = scene.frame.intrinsics.unproject(np.stack([u, v], 1).astype(float), z[v, u].astype(float))
    height = pts @ true.normal + true.offset
    assert np.mean((height < -0.03) & (height > -0.3)) > 0.05  # the room behind: > 5 % of the samples
    # clicked objects come out at their own size, not merged with the table
    ious = []
    for obj, ms in _click_each_object(seg, scene):
        ious.append(mask_iou(ms.masks[1], obj.mask))
        # (small touching objects may still merge with a neighbour at this range; never with the table)
        assert np.count_nonzero(ms.masks[1] & table) < 0.2 * obj.mask.sum()
    assert len(ious) >= 6 and np.median(ious) > 0.7


def test_segment_all_reports_walls_as_background_not_objects(third_person_room):
    scene = third_person_room
    seg = RGBDSegmenter()
    inst = seg.segment_all(scene.frame)
    wall_or_floor = scene.instance_ids == 0
    objects_px = inst.masks.any(0) if len(inst) else np.zeros_like(wall_or_floor)
    table = seg.features.support & seg.features.support_region
    # nothing of the scenery (table, floor, wall) is reported as an object
    assert np.count_nonzero(objects_px & wall_or_floor) < 0.02 * np.count_nonzero(objects_px)
    assert np.count_nonzero(inst.details["support"] & table) > 0.9 * np.count_nonzero(table)
    # the scenery seen above the table's height (the wall, where it has depth) is background, not an object
    z = scene.frame.depth_m
    v, u = np.nonzero(wall_or_floor & (z > 0))
    pts = scene.frame.intrinsics.unproject(np.stack([u, v], 1).astype(float), z[v, u].astype(float))
    raised = np.zeros_like(wall_or_floor)
    raised[v, u] = pts @ scene.plane.normal + scene.plane.offset > 0.05
    assert raised.sum() > 1000
    assert np.count_nonzero(inst.details["background"] & raised) > 0.8 * np.count_nonzero(raised)
    # ... and (almost) none of the objects: under 2 % of their pixels, rims included
    objects_true = scene.instance_ids > 0
    assert np.count_nonzero(inst.details["background"] & objects_true) < 0.02 * np.count_nonzero(objects_true)
    # every mask is object pixels (touching objects may still share one mask at this range)
    assert len(inst) >= 5
    for k in range(len(inst)):
        assert np.mean(scene.instance_ids[inst.masks[k]] == 0) < 0.1


def test_rims_move_onto_the_colour_edges_when_depth_is_shifted_against_colour():
    """Exact masks, an Xtion-like sensor (depth 2–6 px off colour): the colour step puts the rim back."""
    synthetic = pytest.importorskip("graspseg.sim.synthetic")
    scene = synthetic.make_scene("single", seed=3, distance_m=0.35, tilt_deg=40, room=True,
                                 noise=synthetic.sensor_noise("xtion"))
    frame, done = synthetic.sensor_frame(scene, "xtion", seed=3)
    assert abs(done["depth_shift_px"][0]) >= 2
    gt = scene.objects[0].mask
    scores = {}
    for band in (0, 4):
        seg = RGBDSegmenter(refine_band_px=band)
        seg.set_frame(frame)
        m = seg.predict(Prompt.from_point(*first_click(gt))).masks[1]
        scores[band] = (mask_iou(m, gt), boundary_f_score(m, gt, 2.0))
    assert scores[4][1] > scores[0][1] + 0.15, scores
    assert scores[4][0] >= scores[0][0] - 0.005, scores


def test_a_mug_floor_seen_from_above_is_the_mug_at_any_resolution():
    """Overhead, 1280x720: the mug's inner floor lies a few mm above the table and fills more pixels than
    at 640x480; it is still the mug's surface, not support (island size is a fraction of the image)."""
    pytest.importorskip("graspseg.sim.synthetic")
    from graspseg.bench.quality import render_cell_scene, synthetic_cells

    (cell,) = synthetic_cells(["overhead"], ["1280x720"], ["d435"], ["single"])
    scene, frame = render_cell_scene(cell, 0)
    (obj,) = scene.objects
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    assert seg.features.support[obj.mask].mean() < 0.05
    whole = seg.predict(Prompt.from_point(*first_click(obj.mask))).masks[1]
    assert mask_iou(whole, obj.mask) > 0.6


# --- bad input: no table, a table filling the view, a click on the table, 0.1 mm units at 1280x720 ---------------
def test_a_table_filling_the_view_is_refused_and_segment_all_explains_its_empty_result(empty_table_720p):
    frame = empty_table_720p
    assert np.all(np.abs(frame.depth_m * 1e4 - np.round(frame.depth_m * 1e4)) < 1e-2)  # 0.1 mm units
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    assert seg.features.plane.found and seg.features.support.mean() > 0.95
    for u, v in ((640, 360), (100, 650), (1200, 40)):
        with pytest.raises(SegmentationError, match="lies on the support plane .the table., not on an object"):
            seg.predict(Prompt.from_point(u, v))
    inst = seg.segment_all()
    assert len(inst) == 0 and inst.areas.shape == (0,)
    assert inst.details["support"].mean() > 0.95 and not inst.details["background"].any()
    assert inst.details["explanation"] == ("no object found: the support plane covers 100% of the view; "
                                           "nothing rises above it")


def test_a_table_not_taken_as_the_support_is_a_flat_surface_never_an_object(two_boxes):
    frame, masks = two_boxes
    seg = RGBDSegmenter(plane_min_inlier_ratio=1.0, plane_empty_min_inlier_ratio=1.0)  # no plane accepted
    seg.set_frame(frame)
    assert not seg.features.plane.found and not seg.features.support.any()
    table = ~(masks[0] | masks[1])
    assert seg.flat_surface(table).startswith("a flat surface 0.")
    assert seg.flat_surface(masks[1]) is None  # a box top: flat but small
    assert seg.features.levels[0].whole.max() == 1  # without a support the boxes and the table are one region
    # so a click on the table or on a box is refused, never answered with the whole table
    for u, v in ((20, 20), (250, 240)):
        with pytest.raises(SegmentationError, match=r"is a flat surface 0\.\d\d x 0\.\d\d m .wider than any object: "
                                                    r"max_object_height_m 0.4 m.: the table, the floor or a wall, "
                                                    r"not an object .no support plane was accepted: plane 1 explains"):
            seg.predict(Prompt.from_point(u, v))
    inst = seg.segment_all()
    assert len(inst) == 0 and inst.details["background"].all()
    assert inst.details["explanation"].startswith("no object found: no support plane was found (plane 1 explains")
    assert inst.details["explanation"].endswith("1 region(s) are flat surfaces wider than any object "
                                                "(max_object_height_m 0.4 m)")
    # with the support found, the same frame gives the boxes and nothing of the table
    inst = RGBDSegmenter().segment_all(frame)
    assert len(inst) == 2 and not inst.masks.any(0)[table].any() and inst.details["support"][table].mean() > 0.95


def test_no_table_in_a_1280x720_d405_frame():
    """Objects with nothing around them (the table out of range): clicked objects come out; a click where there
    is no depth is refused; segment-all reports the objects and an explanation only when there are none."""
    from graspseg.sim.synthetic import make_scene, sensor_noise

    scene = make_scene("clutter", seed=3, n_objects=4, width=1280, height=720, distance_m=0.45,
                       noise=sensor_noise("d405"))
    z = np.where(scene.instance_ids > 0, scene.frame.depth_m, 0).astype(np.float32)
    frame = RGBDFrame(scene.frame.color, z, scene.frame.intrinsics, frame_id="no_table")
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    assert not seg.features.plane.found
    for obj, ms in _click_each_object(seg, scene):
        assert mask_iou(ms.masks[1], obj.mask) > 0.9
    corner = next((u, v) for v in range(0, 720, 40) for u in range(0, 1280, 40) if not z[max(0, v - 12): v + 13,
                                                                                        max(0, u - 12): u + 13].any())
    with pytest.raises(PromptError, match="no reading .all zero. in the prompt region"):
        seg.predict(Prompt.from_point(*corner))
    inst = seg.segment_all()
    assert len(inst) >= 1 and "explanation" not in inst.details
    empty = RGBDFrame(scene.frame.color, np.zeros_like(z), scene.frame.intrinsics)
    inst = seg.segment_all(empty)
    assert len(inst) == 0 and "has no depth reading in the rgbd range" in inst.details["explanation"]


def test_a_click_on_a_patch_of_the_table_without_depth_is_refused_but_a_dark_object_without_depth_is_not():
    frame, _ = tabletop([(180, 300, 200, 300, 0.06, (200, 30, 30)), (380, 396, 500, 516, 0.0, (25, 25, 25))],
                        holes=[(380, 396, 500, 516), (380, 396, 100, 116)])
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    with pytest.raises(SegmentationError, match="lies on a patch without depth inside the support plane .the table. "
                                                "and coloured like it, not on an object"):
        seg.predict(Prompt.from_point(108, 388))
    dark = seg.predict(Prompt.from_point(508, 388)).masks[1]  # black, no depth, on the table: an object
    square = np.zeros_like(dark)
    square[380:396, 500:516] = True
    assert mask_iou(dark, square) > 0.8


# --- far views: thresholds per sample, noise measured on the plane ----------------------------------------
def test_thin_objects_on_a_far_table_make_it_the_support_not_the_floor():
    """Third-person view, 1.0–1.6 m: flat boxes and lying cylinders 1–3 cm tall stand on the table (each
    sample is judged at its own depth, a + b z², not at the frame's median depth over the floor at 2.5 m),
    so the table is the support and no click returns the table."""
    pytest.importorskip("graspseg.sim.synthetic")
    from graspseg.bench.quality import render_cell_scene, synthetic_cells

    (cell,) = synthetic_cells(["third_person"], ["640x480"], ["d435"], ["thin_flat"])
    scene, frame = render_cell_scene(cell, 0)
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    plane = seg.features.plane
    assert plane.found, plane.reason
    assert plane.offset == pytest.approx(scene.plane.offset, abs=0.03)  # the table, not the floor 0.74 m below
    assert plane.supported_fraction >= seg.config.plane_min_supported_fraction
    table = scene.instance_ids == 0
    ious = []
    for obj in scene.objects:
        m = seg.predict(Prompt.from_point(*first_click(obj.mask))).masks[1]
        assert np.count_nonzero(m & table) < 0.2 * obj.mask.sum()
        ious.append(mask_iou(m, obj.mask))
    assert np.mean(ious) > 0.6, ious


def _noisy_plane_frame(depth_m, noise_per_m2, size=(240, 320), seed=0):
    """A camera looking straight down at an empty plane ``depth_m`` away; per-pixel noise σ = k z²."""
    h, w = size
    intr = CameraIntrinsics(w, h, 300.0, 300.0, (w - 1) / 2, (h - 1) / 2)
    rng = np.random.default_rng(seed)
    depth = (depth_m + rng.normal(0, noise_per_m2 * depth_m**2, (h, w))).astype(np.float32)
    color = np.full((h, w, 3), 128, np.uint8)
    return RGBDFrame(color, depth, intr)


def test_depth_noise_is_measured_on_the_plane_and_is_not_something_standing_on_it():
    """A D405-like sensor at 2.5 m (σ ≈ 28 mm, as large as the inlier threshold): the noise is measured on
    the plane (σ = k z²) and its outliers are not objects standing on it."""
    from graspseg.segment.backends.rgbd_features import fit_support_plane

    k = 0.0045
    frame = _noisy_plane_frame(2.5, k)
    cfg = RGBDSegmenterConfig()
    plane, _ = fit_support_plane(frame.depth_m, frame.intrinsics.ray_image, cfg)
    assert plane.noise_per_m2 == pytest.approx(k, rel=0.25)
    assert plane.supported_fraction < cfg.plane_min_supported_fraction
    # a quiet sensor at wrist range measures a small noise
    quiet, _ = fit_support_plane(*(lambda f: (f.depth_m, f.intrinsics.ray_image))(_noisy_plane_frame(0.5, 0.001)),
                                 cfg)
    assert quiet.noise_per_m2 == pytest.approx(0.001, rel=0.25)


def test_an_object_at_the_tables_edge_stands_on_the_table_not_on_the_floor_below():
    """Table and floor are both supports (a box stands on each); a box at the table's edge reaches past
    the table's image outline, over the floor: it still stands on the table (the nearest support beneath
    it), so segment-all reports it as an object rather than as scenery 0.7 m tall."""
    frame, masks = tabletop([(340, 430, 250, 350, 0.06, (200, 30, 30)),  # over the table's edge (row 400)
                             (435, 475, 500, 600, 0.10, (30, 200, 30))])  # on the floor
    depth = frame.depth_m.copy()
    floor = np.zeros(depth.shape, bool)
    floor[400:] = True
    depth[floor & ~masks[0] & ~masks[1]] = TABLE_Z + 0.7
    depth[masks[1]] = TABLE_Z + 0.7 - 0.10
    seg = RGBDSegmenter()
    inst = seg.segment_all(RGBDFrame(frame.color, depth, frame.intrinsics))
    f = seg.features
    assert f.plane.offset == pytest.approx(TABLE_Z, abs=2e-3) and len(f.supports) == 2
    edge_box = masks[0]
    assert f.height_m[edge_box].max() < 0.07  # measured from the table, also past its outline
    assert any(mask_iou(m, edge_box) > 0.9 for m in inst.masks), [mask_iou(m, edge_box) for m in inst.masks]


def test_gaps_without_depth_inside_an_object_join_its_whole():
    """A shiny mug seen from above: dropouts inside its outline belong to it (the rendered truth has none)."""
    quality = pytest.importorskip("graspseg.bench.quality")
    scene, frame = quality.render_cell_scene({"viewpoint": "overhead", "resolution": "640x480", "sensor": "d405",
                                              "scene": "single"}, seed=0)
    gt = scene.objects[0].mask
    seg = RGBDSegmenter()
    seg.set_frame(frame)
    ms = seg.predict(Prompt.from_point(*first_click(gt)))
    part, whole, group = ms.masks
    assert mask_iou(whole, gt) > 0.95 and boundary_f_score(whole, gt, 2) > 0.9
    assert not (part & ~whole).any() and not (whole & ~group).any()
    # the soft logits (the boundary band) follow the filled outline
    assert np.array_equal(ms.logits[1] > 0, whole)


def test_a_small_raised_platform_with_objects_on_it_is_a_support_a_bare_box_top_is_not():
    """Seen from above, a floor 1.2 m away, a stool 0.55 m high beside a 0.25 m box: the stool's visible top
    explains fewer samples than ``plane_min_inlier_ratio`` (the two boxes on it hide most of it), yet things
    stand on it, so it is a support parallel to the floor and its boxes are objects 0.12 m tall, not scenery
    0.67 m above the floor. The bare box top beside it, with nothing on it, stays part of its box."""
    floor_z, stool_h, box_h = 1.2, 0.55, 0.12
    heights = [stool_h, stool_h + box_h, stool_h + box_h, 0.25]
    frame, masks = tabletop([(110, 350, 130, 400, 0.0, (60, 160, 160)),  # the stool's top
                             (130, 330, 150, 260, 0.0, (200, 30, 30)),  # two boxes on the stool
                             (130, 330, 280, 380, 0.0, (30, 30, 200)),
                             (150, 320, 450, 610, 0.0, (30, 200, 30))])  # a box on the floor
    depth = np.full(frame.depth_m.shape, floor_z, np.float32)
    for m, height in zip(masks, heights, strict=True):
        depth[m] = floor_z - height
    stool_px = masks[0] & ~masks[1] & ~masks[2]
    cfg = RGBDSegmenterConfig()
    assert np.count_nonzero(stool_px) < cfg.plane_min_inlier_ratio * stool_px.size
    seg = RGBDSegmenter(cfg)
    inst = seg.segment_all(RGBDFrame(frame.color, depth, frame.intrinsics))
    f = seg.features
    assert f.plane.offset == pytest.approx(floor_z, abs=2e-3)
    assert [round(s.offset, 2) for s in f.supports] == [floor_z, round(floor_z - stool_h, 2)]
    for box in masks[1:3]:
        assert f.height_m[box].max() == pytest.approx(box_h, abs=0.01)  # measured from the stool
    ious = [[mask_iou(m, box) for m in inst.masks] for box in masks[1:]]
    assert all(max(row) > 0.9 for row in ious), ious
    # a low platform (0.15 m): its boxes stand on the floor already (0.27 m tall), so it is no extra support
    low = depth.copy()
    low[masks[0]] += np.float32(stool_h - 0.15)
    from graspseg.segment.backends.rgbd_features import fit_support_plane
    _, supports = fit_support_plane(low, frame.intrinsics.ray_image, cfg)
    assert [round(s.offset, 2) for s in supports] == [floor_z]
