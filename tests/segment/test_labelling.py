"""Mask crops, label scores and text prompts answered by labelling segment-all's masks (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.core.errors import ConfigError, MaskError, PromptError, SegmentationError, ShapeError
from graspseg.segment import Prompt, create_segmenter
from graspseg.segment.backends.hf_testing import OBJECTS, objects_frame
from graspseg.segment.labelling import (
    CropOptions,
    LabelledSegmenter,
    MaskLabels,
    check_masks,
    crop_box,
    interior_point,
    mask_crop,
    match_phrase,
    parse_phrases,
)

FILL = (10, 20, 30)


@pytest.fixture
def image():
    return np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)


def _blob(shape=(60, 80)):
    m = np.zeros(shape, bool)
    m[20:35, 30:50] = True
    m[35:40, 30:34] = True  # an L shape: its box holds non-mask pixels
    return m


@pytest.mark.parametrize("where", ["inside", "at the corner"])
def test_masked_crop_holds_the_mask_pixels_and_only_them(image, where):
    mask = _blob() if where == "inside" else np.pad(np.ones((6, 9), bool), ((0, 54), (0, 71)))
    crop, cmask, box = mask_crop(image, mask, CropOptions(context=0.25, background="mask"), fill=FILL)
    assert crop.shape[0] == crop.shape[1] == box[2] - box[0] == box[3] - box[1]
    assert cmask.sum() == mask.sum()  # every mask pixel is in the crop...
    np.testing.assert_array_equal(crop[cmask], image[mask])  # ...unchanged, in the same order
    assert (crop[~cmask] == FILL).all()  # and nothing else is
    if where == "at the corner":
        assert box[0] < 0 and box[1] < 0  # the square reaches past the image: padded


def test_crop_box_is_a_centred_square_with_context():
    mask = _blob()
    x0, y0, x1, y1 = crop_box(mask, context=0.2, min_side_px=4)
    assert x1 - x0 == y1 - y0 == int(np.ceil(20 * 1.4))  # longer side 20 px (columns 30..49) plus 20 % each side
    assert abs((x0 + x1) / 2 - 40) <= 0.5 and abs((y0 + y1) / 2 - 30) <= 0.5
    tiny = np.zeros((60, 80), bool)
    tiny[10, 10] = True
    box = crop_box(tiny, context=0.2, min_side_px=16)
    assert box[2] - box[0] == 16


def test_backgrounds_keep_the_object_and_treat_the_rest(image):
    mask = _blob()
    opts = dict(context=0.3)
    keep, cmask, box = mask_crop(image, mask, CropOptions(background="none", **opts))
    x0, y0, x1, y1 = box
    np.testing.assert_array_equal(keep, image[y0:y1, x0:x1])  # inside the image: the context is untouched
    blurred, cmask_b, _ = mask_crop(image, mask, CropOptions(background="blur", **opts))
    np.testing.assert_array_equal(cmask_b, cmask)
    np.testing.assert_array_equal(blurred[cmask], keep[cmask])  # the object stays sharp
    outside = ~cmask
    assert np.abs(blurred[outside].astype(int) - keep[outside]).mean() > 20  # random texture is smoothed...
    assert blurred[outside].std() < 0.5 * keep[outside].std()


def test_resized_crops_keep_the_object_and_mask_out_the_rest(image):
    mask = _blob()
    crop, cmask, _ = mask_crop(image, mask, CropOptions(background="mask"), size=48, fill=FILL)
    assert crop.shape == (48, 48, 3) and cmask.shape == (48, 48)
    assert 0.3 < cmask.mean() < 0.6 and (crop[~cmask] == FILL).all()
    dot = np.zeros((60, 80), bool)
    dot[5, 70] = True  # one pixel shrunk into a crop: still marked
    _, cmask, _ = mask_crop(image, dot, CropOptions(min_side_px=64), size=16)
    assert cmask.sum() >= 1


def test_bad_crop_inputs_are_named(image):
    with pytest.raises(MaskError, match="mask 1 is empty .*drop empty masks"):
        check_masks(image, np.stack([_blob(), np.zeros((60, 80), bool)]))
    with pytest.raises(MaskError, match="mask is empty"):
        mask_crop(image, np.zeros((60, 80), bool))
    with pytest.raises(ShapeError, match="masks must be \\(K, H, W\\) with \\(H, W\\) = \\(60, 80\\)"):
        check_masks(image, np.ones((1, 10, 10), bool))
    with pytest.raises(ShapeError, match="colour image must be \\(H, W, 3\\) uint8"):
        check_masks(image.astype(np.float32), _blob())
    with pytest.raises(ConfigError, match="crop background is 'grey'; expected one of blur, mask, none"):
        CropOptions(background="grey")
    with pytest.raises(ConfigError, match="crop context is -1"):
        CropOptions(context=-1)
    with pytest.raises(ConfigError, match="min_side_px is 0"):
        CropOptions(min_side_px=0)


def test_phrases_are_parsed_and_an_empty_list_refused():
    assert parse_phrases(" mug, bowl ,,Mug, red   box") == ("mug", "bowl", "red box")
    assert parse_phrases(["mug", "box"]) == ("mug", "box")
    for bad in ("", " , ,", []):
        with pytest.raises(PromptError, match="no phrases given.*--phrases 'mug,bowl,box'"):
            parse_phrases(bad)
    with pytest.raises(PromptError, match="phrases must be strings, got 3"):
        parse_phrases(["mug", 3])


def test_labels_margins_and_ambiguity():
    logits = np.array([[5.0, 1.0, 0.0], [2.0, 2.5, 0.0], [0.0, 0.0, 9.0]], np.float32)
    lab = MaskLabels(("mug", "bowl", "box"), logits, "softmax", min_margin=1.0)
    assert lab.labels == ("mug", "bowl", "box")
    np.testing.assert_allclose(lab.probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(lab.margins, [4.0, 0.5, 9.0])
    assert lab.ambiguous.tolist() == [False, True, False]
    d = lab.object_dict(1)
    assert d["label"] == "bowl" and d["ambiguous"] and d["margin"] == 0.5 and set(d["probabilities"]) == set(lab.phrases)
    m = lab.match("mug")
    assert (m.best, m.runner_up, m.margin, m.ambiguous) == (0, 1, 3.0, False)
    sig = MaskLabels(("mug",), logits[:, :1], "sigmoid")
    assert np.isinf(sig.margins).all() and not sig.ambiguous.any()
    np.testing.assert_allclose(sig.probabilities[:, 0], 1 / (1 + np.exp(-logits[:, 0])), rtol=1e-6)
    with pytest.raises(PromptError, match="'cup' is not one of the labelled phrases"):
        lab.match("cup")
    with pytest.raises(ShapeError, match="logits must be \\(K, 2\\) for 2 phrases"):
        MaskLabels(("a", "b"), logits, "softmax")


def test_phrase_match_over_masks():
    m = match_phrase(np.array([1.0, 3.2, 2.5]), "red mug", min_margin=1.0)
    assert m.best == 1 and m.runner_up == 2 and m.ambiguous and m.margin == pytest.approx(0.7, abs=1e-6)
    assert m.probabilities.sum() == pytest.approx(1.0) and m.order.tolist() == [1, 2, 0]
    d = m.to_dict()
    assert d["best_index"] == 1 and d["runner_up_index"] == 2 and d["ambiguous"] is True
    assert d["phrase_probability"] is None  # softmax (CLIP): no probability of a phrase on its own
    one = match_phrase(np.array([0.3]), "mug")
    assert one.runner_up is None and not one.ambiguous and one.to_dict()["margin"] is None
    sig = match_phrase(np.array([-4.0, -6.0]), "mug", scoring="sigmoid").to_dict()
    assert sig["phrase_probability"] == pytest.approx(1 / (1 + np.exp(4.0)))


def test_interior_point_is_inside():
    mask = _blob()
    u, v = interior_point(mask)
    assert mask[int(v), int(u)] and 34 <= u <= 46 and 24 <= v <= 31


# --------------------------------------------------------------------------------------------------
# Text prompts on the weight-free rgbd backend, with a colour "labeller"
# --------------------------------------------------------------------------------------------------
class ColourLabeller:
    """Embeds a mask as its mean colour and 'red' / 'blue' / 'green' as the matching unit vector."""

    scoring = "softmax"
    WORDS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}

    def __init__(self):
        self.mask_calls = 0
        self.phrase_calls = 0

    def embed_masks(self, color, masks):
        self.mask_calls += 1
        masks = check_masks(color, masks)
        e = np.stack([color[m].mean(axis=0) for m in masks]).astype(np.float32)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    def embed_phrases(self, phrases):
        self.phrase_calls += 1
        return np.array([self.WORDS[p.split()[0]] for p in phrases], np.float32)

    def logits(self, img, txt):
        return 20.0 * img @ txt.T


@pytest.fixture
def labelled():
    seg = LabelledSegmenter(create_segmenter("rgbd"), ColourLabeller())
    seg.set_frame(objects_frame())
    return seg


def _object_index(mask):
    """Which of OBJECTS ``mask`` covers most."""
    overlap = [mask[y0:y1, x0:x1].mean() for (y0, y1), (x0, x1), _ in OBJECTS]
    return int(np.argmax(overlap))


def test_text_picks_the_labelled_object_on_rgbd(labelled):
    ms = labelled.predict(Prompt(text="blue box"))
    match = ms.details["text_match"]
    assert match["phrase"] == "blue box" and not match["ambiguous"] and match["margin"] > 1.0
    whole = ms.masks[ms.select("whole")]
    assert _object_index(whole) == 1
    np.testing.assert_array_equal(whole, labelled.segment_all().masks[match["best_index"]])
    assert ms.prompt.text == "blue box" and ms.logits is not None  # rgbd's own candidates, with soft logits
    assert labelled.labeller.mask_calls == 1
    labelled.predict(Prompt(text="red box"))
    assert labelled.labeller.mask_calls == 1  # masks embedded once per frame; phrases asked again
    labelled.set_frame(objects_frame(seed=1))
    labelled.predict(Prompt(text="blue box"))
    assert labelled.labeller.mask_calls == 2


def test_two_alike_objects_are_flagged_never_silently_chosen(labelled, caplog):
    ms = labelled.predict(Prompt(text="red box"))
    match = ms.details["text_match"]
    assert match["ambiguous"] and {_object_index(ms.masks[ms.select("whole")])} <= {0, 2}
    assert {match["best_index"], match["runner_up_index"]} == {
        k for k, m in enumerate(labelled.segment_all().masks) if _object_index(m) in (0, 2)}
    assert "'red box' is ambiguous" in caplog.text
    strict = LabelledSegmenter(create_segmenter("rgbd"), ColourLabeller(), on_ambiguous="error")
    strict.set_frame(objects_frame())
    with pytest.raises(SegmentationError, match="'red box' is ambiguous: objects .* score alike.*distinguishing word"):
        strict.predict(Prompt(text="red box"))
    relaxed = LabelledSegmenter(create_segmenter("rgbd"), ColourLabeller(), min_margin=0.0, reprompt=False)
    relaxed.set_frame(objects_frame())
    ms = relaxed.predict(Prompt(text="red box"))
    assert len(ms) == 1 and not ms.details["text_match"]["ambiguous"] and ms.granularity == ("whole",)


def test_other_prompts_pass_through_and_bad_use_is_named(labelled):
    u, v = 35, 50
    direct = create_segmenter("rgbd")
    direct.set_frame(labelled.frame)
    np.testing.assert_array_equal(labelled.predict(Prompt.from_point(u, v)).masks, direct.predict(Prompt.from_point(u, v)).masks)
    assert labelled.name == "rgbd" and labelled.accepts_text and labelled.features is not None  # the rest is rgbd's
    with pytest.raises(PromptError, match="text cannot be combined with points"):
        labelled.predict(Prompt(points_uv=[[u, v]], text="red box"))
    fresh = LabelledSegmenter(create_segmenter("rgbd"), ColourLabeller())
    with pytest.raises(SegmentationError, match="no frame set"):
        fresh.predict(Prompt(text="red box"))
    with pytest.raises(ConfigError, match="labeller must have embed_masks"):
        LabelledSegmenter(create_segmenter("rgbd"), object())
    with pytest.raises(ConfigError, match="on_ambiguous is 'guess'"):
        LabelledSegmenter(create_segmenter("rgbd"), ColourLabeller(), on_ambiguous="guess")
    with pytest.raises(ConfigError, match="min_margin is -1"):
        LabelledSegmenter(create_segmenter("rgbd"), ColourLabeller(), min_margin=-1)


def test_no_object_found_is_an_error(labelled):
    frame = objects_frame()
    flat = type(frame)(frame.color, np.full_like(frame.depth_m, 0.5), frame.intrinsics)
    labelled.set_frame(flat)
    with pytest.raises(SegmentationError, match="segment-all found no object on this frame"):
        labelled.predict(Prompt(text="red box"))


def test_labels_of_every_object(labelled):
    instances, labels = labelled.label("red, blue, green")
    assert len(instances) == len(labels) == 3
    expect = ["blue" if _object_index(m) == 1 else "red" for m in instances.masks]
    assert list(labels.labels) == expect and not labels.ambiguous.any()


def test_create_segmenter_wraps_with_a_configured_labeller():
    seg = create_segmenter("rgbd", labeller=ColourLabeller())
    assert isinstance(seg, LabelledSegmenter)
    assert not isinstance(create_segmenter("rgbd", labeller={}), LabelledSegmenter)
    with pytest.raises(ConfigError, match="names no checkpoint; set segment.labeller.model"):
        create_segmenter("rgbd", labeller={"min_margin": 2.0})
    with pytest.raises(PromptError, match="configure a labeller checkpoint \\(--labeller DIR"):
        s = create_segmenter("rgbd")
        s.set_frame(objects_frame())
        s.predict(Prompt(text="red box"))
