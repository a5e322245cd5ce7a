"""Evaluation data sets: frame folders, COCO with depth and intrinsics (import, export), summaries, bad input."""

import json
import shutil

import numpy as np
import pytest

from graspseg.capture import GroundTruthObject, save_frame_folder
from graspseg.core import CameraIntrinsics, RGBDFrame, Transform
from graspseg.core.errors import ConfigError, InputError, ShapeError
from graspseg.eval.coco import export_coco, load_coco_dataset
from graspseg.eval.datasets import Instance, Sample, dataset_summary, load_dataset, load_frame_folders

W, H = 160, 120


def make_frame(k: int) -> tuple[RGBDFrame, list[GroundTruthObject]]:
    rng = np.random.default_rng(k)
    depth = np.full((H, W), 0.6, np.float32)
    depth[:, :8] = 0  # a strip without readings
    color = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    box = np.zeros((H, W), bool)
    box[30:70, 40 + k:90 + k] = True
    ring = np.zeros((H, W), bool)
    ring[75:110, 100:140] = True
    ring[85:100, 112:128] = False  # a hole (RLE keeps it)
    depth[box] = 0.55
    depth[ring] = 0.58
    intr = CameraIntrinsics(W, H, 150.0, 151.0, 79.5, 59.5)
    frame = RGBDFrame(color, depth, intr, frame_id=f"f{k}", meta={"depth_scale": 1e-4})
    pose = Transform.from_rt(np.eye(3), [0.01 * k, 0.0, 0.6], "camera_color_optical", "object")
    return frame, [GroundTruthObject(3, "box", box, pose), GroundTruthObject(7, "ring", ring)]


@pytest.fixture
def frames_dir(tmp_path):
    root = tmp_path / "sets"
    for s, n in (("set_a", 2), ("set_b", 1)):
        for k in range(n):
            frame, objs = make_frame(k)
            save_frame_folder(frame, root / s / f"{k:06d}", depth_scale=1e-4, objects=objs)
    return root


def test_frame_folders_at_three_levels(frames_dir):
    ds = load_frame_folders(frames_dir)
    assert len(ds) == 3 and ds.layout == "frame_folders"
    assert ds.names == ["set_a/000000", "set_a/000001", "set_b/000000"]
    assert ds.set_names == ["set_a", "set_a", "set_b"] and ds.categories == {1: "box", 2: "ring"}
    s = ds[1]
    mask, category, object_id = s.instances[0]
    assert category == "box" and object_id == 3 and mask.shape == (H, W)
    assert s.instances[0].camera_from_object is not None and s.instances[1].camera_from_object is None
    assert len(load_frame_folders(frames_dir / "set_a")) == 2
    one = load_dataset(frames_dir / "set_a" / "000001")
    assert len(one) == 1 and one.names == ["000001"] and one.set_names == ["set_a"]
    assert len(ds.subset([2])) == 1 and ds[1:].names == ds.names[1:]


@pytest.mark.parametrize("fmt", ["rle", "rle_uncompressed", "polygon"])
def test_coco_export_reads_back_identically(frames_dir, tmp_path, fmt):
    ds = load_frame_folders(frames_dir)
    path = export_coco(ds, tmp_path / "coco", mask_format=fmt)
    doc = json.loads(path.read_text())
    img = doc["images"][0]
    assert img["file_name"] == "images/set_a/000000.png" and img["depth_file"] == "depth/set_a/000000.png"
    assert img["depth_scale"] == 1e-4 and set(img["intrinsics"]) >= {"fx", "fy", "cx", "cy"}
    seg = doc["annotations"][0]["segmentation"]
    assert isinstance(seg, {"rle": dict, "rle_uncompressed": dict, "polygon": list}[fmt])
    assert doc["annotations"][0]["object_id"] == 3 and len(doc["annotations"][0]["camera_from_object"]) == 4
    back = load_dataset(tmp_path / "coco")  # the folder; the JSON path works as well
    assert back.layout == "coco" and back.names == ds.names and back.set_names == ds.set_names
    assert back.categories == ds.categories
    for a, b in zip(ds, back, strict=True):
        assert (a.frame.color == b.frame.color).all() and (a.frame.depth_m == b.frame.depth_m).all()
        assert a.frame.intrinsics == b.frame.intrinsics and a.frame.frame_id == b.frame.frame_id
        for x, y in zip(a.instances, b.instances, strict=True):
            assert (x.category, x.object_id) == (y.category, y.object_id)
            if fmt == "polygon" and x.category == "ring":
                assert y.mask.sum() == x.mask.sum() + 15 * 16  # polygons lose the hole
            else:
                assert (x.mask == y.mask).all()
            assert (x.camera_from_object is None) == (y.camera_from_object is None)
            if x.camera_from_object is not None:
                assert (x.camera_from_object.matrix == y.camera_from_object.matrix).all()


def test_coco_intrinsics_from_a_camera_file(frames_dir, tmp_path):
    export_coco(load_frame_folders(frames_dir / "set_b"), tmp_path / "coco")
    doc = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    for img in doc["images"]:
        cam = {"width": img["width"], "height": img["height"], **img.pop("intrinsics"),
               "depth_scale": img.pop("depth_scale")}
        (tmp_path / "coco" / "camera").mkdir(exist_ok=True)
        (tmp_path / "coco" / "camera" / "000000.json").write_text(json.dumps(cam))
        img.pop("depth_file")
        img["file_name"] = "000000.png"  # a bare name is looked up under images/
    (tmp_path / "coco" / "annotations.json").write_text(json.dumps(doc))
    ds = load_coco_dataset(tmp_path / "coco" / "annotations.json")
    assert ds[0].frame.intrinsics.fx == 150.0 and len(ds[0].instances) == 2


def test_summary(frames_dir):
    s = dataset_summary(load_dataset(frames_dir))
    assert s["images"] == 3 and s["instances"] == 6 and s["instances_with_pose"] == 3
    assert s["categories"] == {"box": 3, "ring": 3} and s["sets"]["set_a"] == {"images": 2, "instances": 4}
    assert s["mask_area_px"]["min"] == 1160 and s["mask_area_px"]["max"] == 2000  # ring 40x35 - 16x15, box 50x40
    assert s["depth_coverage"]["median"] == pytest.approx(1 - 8 / W)
    assert s["mask_depth_coverage"]["min"] == 1.0 and s["resolutions"] == {f"{W}x{H}": 3}


def test_shared_ycb_video_through_coco_and_back(real_dir, tmp_path):
    """The shared ycb_video frames exported to COCO with depth and read back identically."""
    ycb = real_dir.parent / "ycb_video"
    if not (ycb / "000001").is_dir():
        pytest.skip("shared ycb_video frames not found")
    ds = load_dataset(ycb)
    for fmt in ("rle", "rle_uncompressed", "polygon"):
        back = load_coco_dataset(export_coco(ds, tmp_path / fmt, mask_format=fmt))
        assert back.names == ds.names and len(back) == 10
        for a, b in zip(ds, back, strict=True):
            assert (a.frame.color == b.frame.color).all() and (a.frame.depth_m == b.frame.depth_m).all()
            assert a.frame.intrinsics == b.frame.intrinsics
            assert [(i.category, i.object_id) for i in a.instances] == [(i.category, i.object_id) for i in b.instances]
            for x, y in zip(a.instances, b.instances, strict=True):
                assert (x.mask == y.mask).all()  # the YCB labels have no holes: polygons are exact too
                assert (x.camera_from_object.matrix == y.camera_from_object.matrix).all()


# --- bad input ---------------------------------------------------------------------------------------

@pytest.fixture
def coco(frames_dir, tmp_path):
    export_coco(load_frame_folders(frames_dir / "set_a"), tmp_path / "coco")
    return tmp_path / "coco"


def _edit(coco, fn):
    p = coco / "annotations.json"
    doc = json.loads(p.read_text())
    fn(doc)
    p.write_text(json.dumps(doc))
    return p


def test_missing_files(tmp_path, coco):
    with pytest.raises(InputError, match="does not exist or is not a folder"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"COCO annotations .*missing.json does not exist"):
        load_dataset(tmp_path / "missing.json")
    (coco / "images" / "000001.png").unlink()
    with pytest.raises(InputError, match=r"colour image .*000001.png does not exist"):
        load_coco_dataset(coco)


def test_images_lacking_depth(coco):
    (coco / "depth" / "000000.png").unlink()
    with pytest.raises(InputError, match=r"has no depth: .*depth/000000.png does not exist"):
        load_coco_dataset(coco)


def test_no_intrinsics_or_depth_scale(coco):
    _edit(coco, lambda d: d["images"][0].pop("intrinsics"))
    with pytest.raises(InputError, match=r"no intrinsics: give the record an 'intrinsics' object"):
        load_coco_dataset(coco)
    _edit(coco, lambda d: (d["images"][0].update(intrinsics={"fx": 150, "fy": 150, "cx": 80, "cy": 60}),
                           d["images"][0].pop("depth_scale")))
    with pytest.raises(InputError, match="no depth_scale"):
        load_coco_dataset(coco)


def test_masks_of_the_wrong_size(coco, frames_dir, tmp_path):
    _edit(coco, lambda d: d["annotations"][0]["segmentation"].update(size=[60, 80]))
    with pytest.raises(ShapeError, match=r"the RLE mask is 80x60 but image 1 is 160x120"):
        load_coco_dataset(coco)
    # a frame-folder mask PNG of another size
    import cv2

    cv2.imwrite(str(frames_dir / "set_b" / "000000" / "masks" / "3_box.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match="is 10x10 but the frame is 160x120"):
        load_frame_folders(frames_dir / "set_b")[0]
    with pytest.raises(ShapeError, match="masks must have their image's size"):
        frame, _ = make_frame(0)
        Sample(frame, (Instance(np.zeros((5, 5), bool), "box", 1),), "x")


def test_unknown_category_ids_and_malformed_records(coco):
    _edit(coco, lambda d: d["annotations"][1].update(category_id=99))
    with pytest.raises(ConfigError, match=r"unknown category id 99; the categories are \[1, 2\]"):
        load_coco_dataset(coco)
    _edit(coco, lambda d: d["annotations"][1].update(category_id=1, image_id=42))
    with pytest.raises(ConfigError, match="image_id 42 is not among the image ids"):
        load_coco_dataset(coco)
    _edit(coco, lambda d: d["annotations"][1].update(image_id=1, segmentation=5))
    with pytest.raises(ConfigError, match="segmentation must be polygons"):
        load_coco_dataset(coco)
    _edit(coco, lambda d: d["images"][1].update(id=1))
    with pytest.raises(ConfigError, match="image id 1 appears twice"):
        load_coco_dataset(coco)
    _edit(coco, lambda d: d["images"][1].update(id=2, width="wide"))
    with pytest.raises(ConfigError, match="width is 'wide'; expected pixels"):
        load_coco_dataset(coco)
    (coco / "annotations.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a COCO instances object"):
        load_coco_dataset(coco)
    (coco / "annotations.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_coco_dataset(coco)


def test_record_size_must_match_the_image(coco):
    _edit(coco, lambda d: (d["images"][0].update(width=320, height=240),
                           [a["segmentation"].update(size=[240, 320]) for a in d["annotations"] if a["image_id"] == 1],
                           [a.update(segmentation={"size": [240, 320], "counts": [320 * 240]})
                            for a in d["annotations"] if a["image_id"] == 1]))
    ds = load_coco_dataset(coco)  # the files are only read when a sample is
    with pytest.raises(ShapeError, match="record says 320x240 but .* is 160x120"):
        ds[0]


def test_empty_data_sets(tmp_path, coco):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"data set .*empty is empty: no frame folder"):
        load_dataset(tmp_path / "empty")
    _edit(coco, lambda d: (d.update(images=[], annotations=[])))
    with pytest.raises(InputError, match="the data set is empty"):
        load_coco_dataset(coco)
    with pytest.raises(InputError, match="nothing to export: the data set is empty"):
        export_coco([], tmp_path / "out")
    with pytest.raises(InputError, match="is empty; nothing to summarise"):
        dataset_summary(_empty(tmp_path))


def _empty(tmp_path):
    frame, objs = make_frame(0)
    save_frame_folder(frame, tmp_path / "one", objects=objs)
    return load_frame_folders(tmp_path / "one").subset([])


def test_export_refuses_bad_requests(frames_dir, tmp_path):
    ds = load_frame_folders(frames_dir / "set_a")
    with pytest.raises(InputError, match="mask_format 'png': choose one of"):
        export_coco(ds, tmp_path / "x", mask_format="png")
    s = ds[0]
    with pytest.raises(InputError, match="two samples are named '000000'"):
        export_coco([s, s], tmp_path / "x")
    with pytest.raises(InputError, match="does not fit 16 bits at depth_scale 1e-06"):
        export_coco([s], tmp_path / "x", depth_scale=1e-6)
    assert not (tmp_path / "x").exists()  # nothing half-written
    shutil.rmtree(tmp_path / "x", ignore_errors=True)


def test_native_episodes_are_a_data_set(tmp_path):
    """An episode (or a folder of them) reads as a data set: one set per episode, annotated frames as samples."""
    from graspseg.capture.episode import EpisodeWriter
    from graspseg.eval import load_episodes

    for ep_name, n in (("pick_a", 2), ("pick_b", 1)):
        with EpisodeWriter(tmp_path / "episodes" / ep_name) as w:
            for k in range(n):
                frame, objs = make_frame(k)
                w.append(frame, objects=objs if k == 0 else None)  # the second frame is not annotated
    one = load_dataset(tmp_path / "episodes" / "pick_a")
    assert one.layout == "episodes" and one.names == ["pick_a/000000", "pick_a/000001"]
    assert one.set_names == ["pick_a", "pick_a"] and one.categories == {1: "box", 2: "ring"}
    ref_frame, ref_objs = make_frame(0)
    s = one[0]
    assert (s.frame.color == ref_frame.color).all() and np.allclose(s.frame.depth_m, ref_frame.depth_m, atol=1e-4)
    assert [(i.category, i.object_id) for i in s.instances] == [("box", 3), ("ring", 7)]
    assert (s.instances[0].mask == ref_objs[0].mask).all() and s.instances[0].camera_from_object is not None
    assert one[1].instances == ()
    both = load_dataset(tmp_path / "episodes")
    assert both.layout == "episodes" and len(both) == 3 and both.set_names == ["pick_a", "pick_a", "pick_b"]
    summary = dataset_summary(both)
    assert summary["images"] == 3 and summary["instances"] == 4 and summary["images_without_instances"] == 1
    assert summary["sets"] == {"pick_a": {"images": 2, "instances": 2}, "pick_b": {"images": 1, "instances": 2}}
    back = load_dataset(export_coco(both, tmp_path / "coco"))  # and out to COCO with depth
    assert back.names == both.names and all((a.instances[0].mask == b.instances[0].mask).all()
                                            for a, b in zip(both, back, strict=True) if a.instances)
    with pytest.raises(InputError, match="holds no native episode"):
        load_episodes(tmp_path / "coco")
