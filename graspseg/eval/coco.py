"""COCO instance annotations with depth and intrinsics beside the images: import and export.

Layout (read by :func:`load_coco_dataset`, written by :func:`export_coco`)::

    DATASET/
      annotations.json        COCO instances: images, annotations, categories
      images/NAME.png         8-bit RGB (the image record's file_name, relative to DATASET/)
      depth/NAME.png          16-bit depth registered to the colour image; metres = value × depth_scale, 0 = none
      camera/NAME.json        optional: frame-folder camera.json (width, height, fx, fy, cx, cy, depth_scale)

Each image record may carry, beside COCO's ``id, file_name, width, height``: ``depth_file`` (default
``depth/NAME.png``), ``depth_scale`` (metres per unit) and ``intrinsics`` (``fx, fy, cx, cy`` pixels, optional
``distortion_k1_k2_p1_p2_k3``) — when either is absent, ``camera/NAME.json`` supplies it — and ``set`` (the
subset it belongs to, for per-set figures). Each annotation may carry ``object_id`` (instance identity, default
its ``id``) and ``camera_from_object`` (4×4, metres, ``camera_color_optical`` from ``object``).
``segmentation`` is a polygon list, an uncompressed RLE or a compressed RLE (:mod:`graspseg.eval.rle`).
The samples are those of :mod:`graspseg.eval.datasets`: ``for mask, category, object_id in sample.instances``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, InputError, ShapeError
from ..core.transform import Transform
from .datasets import CAMERA_FRAME, Dataset, Instance, Sample, _Entry
from .rle import decode_segmentation, encode_polygons, encode_rle

#: The COCO annotation file of a data set folder.
ANNOTATIONS = "annotations.json"
#: Mask encodings :func:`export_coco` writes.
MASK_FORMATS = ("rle", "rle_uncompressed", "polygon")


def _coco_file(path: Path) -> Path:
    if path.is_dir():
        p = path / ANNOTATIONS
        if not p.is_file():
            raise InputError(f"{path} has no {ANNOTATIONS}; give the COCO annotations JSON or its folder")
        return p
    if not path.is_file():
        raise InputError(f"COCO annotations {path} does not exist; give the path of the instances JSON")
    return path


def _need(d: dict, key: str, where: str, kind: type | tuple, what: str):
    if key not in d:
        raise ConfigError(f"{where}: missing {key!r} ({what})")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, kind):
        raise ConfigError(f"{where}: {key} is {v!r}; expected {what}")
    return v


def _image_camera(root: Path, img: dict, stem: str, where: str):
    """``(CameraIntrinsics, depth_scale)`` of an image record, from the record or ``camera/NAME.json``."""
    from ..core.camera import CameraIntrinsics, check_depth_scale
    from ..core.validate import read_data_file

    cam: dict = {}
    cam_path = root / "camera" / f"{stem}.json"
    if ("intrinsics" not in img or "depth_scale" not in img) and cam_path.is_file():
        cam = read_data_file(cam_path, "camera file", kind="json")
        if not isinstance(cam, dict):
            raise ConfigError(f"{cam_path}: expected a JSON object with fx, fy, cx, cy and depth_scale")
    intr = img.get("intrinsics", cam if cam else None)
    if intr is None:
        raise InputError(f"{where}: no intrinsics: give the record an 'intrinsics' object (fx, fy, cx, cy) or write "
                         f"{cam_path}")
    if not isinstance(intr, dict):
        raise ConfigError(f"{where}: intrinsics is {intr!r}; expected an object with fx, fy, cx, cy (pixels)")
    intr = {"width": img["width"], "height": img["height"], **intr}
    intrinsics = CameraIntrinsics.from_dict(intr, source=f"{where}: intrinsics")
    if (intrinsics.width, intrinsics.height) != (img["width"], img["height"]):
        raise ShapeError(f"{where}: intrinsics are for {intrinsics.width}x{intrinsics.height} but the image is "
                         f"{img['width']}x{img['height']}")
    scale = img.get("depth_scale", cam.get("depth_scale"))
    if scale is None:
        raise InputError(f"{where}: no depth_scale (metres per raw depth unit, e.g. 0.001): give it in the record "
                         f"or in {cam_path}")
    return intrinsics, check_depth_scale(scale, field=f"{where}: depth_scale")


def _coco_sample(root: Path, img: dict, anns: list[dict], categories: dict[int, str], name: str, set_name: str,
                 color_path: Path, depth_path: Path) -> Sample:
    from PIL import Image

    from ..capture.frame_folder import frame_from_files

    where = f"image {img['id']} ({img['file_name']})"
    try:
        with Image.open(color_path) as im:
            size = im.size
    except (OSError, ValueError):
        size = None  # not readable as an image: frame_from_files names the problem
    if size is not None and size != (img["width"], img["height"]):
        raise ShapeError(f"{where}: the record says {img['width']}x{img['height']} but {color_path} is "
                         f"{size[0]}x{size[1]}; fix the record's width and height")
    intrinsics, scale = _image_camera(root, img, name, where)
    frame = frame_from_files(color_path, depth_path, depth_scale=scale, intrinsics=intrinsics,
                             frame_id=Path(name).name, timestamp_s=img.get("timestamp_s", 0.0),
                             meta={"source": str(color_path), "depth_scale": scale})
    out = []
    for a in anns:
        mask = decode_segmentation(a["segmentation"], img["height"], img["width"])
        pose = None
        if a.get("camera_from_object") is not None:
            pose = Transform.from_dict({"matrix": a["camera_from_object"]}, to_frame=CAMERA_FRAME, from_frame="object",
                                       source=f"annotation {a['id']}: camera_from_object")
        out.append(Instance(mask, categories[a["category_id"]], a.get("object_id", a["id"]), pose))
    return Sample(frame, tuple(out), name, set_name)


def load_coco_dataset(path: str | Path) -> Dataset:
    """A COCO instance-annotation data set with depth and intrinsics beside the images (see the module doc).

    Everything that can be checked without decoding images is checked here: the JSON's structure, every
    colour and depth file's presence, the intrinsics and depth scale of each image, category ids, RLE sizes.

    Parameters
    ----------
    path : str or Path
        The annotations JSON, or the folder holding ``annotations.json``.

    Raises
    ------
    InputError
        Missing files (JSON, a colour image, a depth image), no intrinsics or depth scale, no image.
    ConfigError
        Malformed JSON or records, unknown category ids, annotations of unknown images.
    ShapeError
        An RLE whose size is not its image's.
    """
    from ..core.validate import read_data_file

    jpath = _coco_file(Path(path))
    root = jpath.parent
    data = read_data_file(jpath, "COCO annotations", kind="json")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ConfigError(f"{jpath}: expected a COCO instances object with 'images', 'annotations' and 'categories' "
                          "lists")
    images, anns, cats = data["images"], data.get("annotations", []), data.get("categories", [])
    if not isinstance(anns, list) or not isinstance(cats, list):
        raise ConfigError(f"{jpath}: 'annotations' and 'categories' must be lists")
    if not images:
        raise InputError(f"{jpath}: the data set is empty (no image records); nothing to evaluate")
    categories: dict[int, str] = {}
    for k, c in enumerate(cats):
        where = f"{jpath}: categories[{k}]"
        if not isinstance(c, dict):
            raise ConfigError(f"{where}: expected an object with id and name")
        categories[_need(c, "id", where, int, "an integer")] = str(_need(c, "name", where, str, "a name"))
    by_image: dict[int, list[dict]] = {}
    records: dict[int, dict] = {}
    for k, img in enumerate(images):
        where = f"{jpath}: images[{k}]"
        if not isinstance(img, dict):
            raise ConfigError(f"{where}: expected an image record object")
        iid = _need(img, "id", where, int, "an integer")
        if iid in records:
            raise ConfigError(f"{where}: image id {iid} appears twice; ids must be unique")
        _need(img, "file_name", where, str, "the colour image path")
        for f in ("width", "height"):
            if _need(img, f, where, int, "pixels (an integer)") <= 0:
                raise ConfigError(f"{where}: {f} is {img[f]}; expected > 0 pixels")
        records[iid] = img
        by_image[iid] = []
    for k, a in enumerate(anns):
        where = f"{jpath}: annotations[{k}]"
        if not isinstance(a, dict):
            raise ConfigError(f"{where}: expected an annotation object")
        aid = _need(a, "id", where, int, "an integer")
        iid = _need(a, "image_id", where, int, "an integer")
        cid = _need(a, "category_id", where, int, "an integer")
        if "segmentation" not in a:
            raise ConfigError(f"{where}: missing 'segmentation' (polygons or RLE)")
        if iid not in records:
            raise ConfigError(f"{where}: image_id {iid} is not among the image ids; every annotation needs its image")
        if cid not in categories:
            raise ConfigError(f"{where} (id {aid}): unknown category id {cid}; the categories are "
                              f"{sorted(categories)}")
        seg = a["segmentation"]
        img = records[iid]
        if isinstance(seg, dict):
            size = seg.get("size")
            if not (isinstance(size, list) and len(size) == 2):
                raise ConfigError(f"{where}: RLE size must be [height, width], got {size!r}")
            if list(size) != [img["height"], img["width"]]:
                raise ShapeError(f"{where}: the RLE mask is {size[1]}x{size[0]} but image {iid} is "
                                 f"{img['width']}x{img['height']}; masks must have their image's size")
        elif not isinstance(seg, list):
            raise ConfigError(f"{where}: segmentation must be polygons (a list) or an RLE (an object)")
        by_image[iid].append(a)
    entries = []
    seen: set[str] = set()
    for iid, img in records.items():
        where = f"{jpath}: image {iid} ({img['file_name']})"
        color_path = root / img["file_name"]
        if not color_path.is_file() and (root / "images" / img["file_name"]).is_file():
            color_path = root / "images" / img["file_name"]
        if not color_path.is_file():
            raise InputError(f"{where}: colour image {color_path} does not exist")
        rel = color_path.relative_to(root)
        parts = rel.with_suffix("").parts
        name = "/".join(parts[1:] if parts[0] == "images" and len(parts) > 1 else parts)
        if name in seen:
            raise ConfigError(f"{where}: two images are named {name!r}; file names must be unique")
        seen.add(name)
        depth_rel = img.get("depth_file", f"depth/{name}.png")
        if not isinstance(depth_rel, str):
            raise ConfigError(f"{where}: depth_file is {depth_rel!r}; expected a path relative to {root}")
        depth_path = root / depth_rel
        if not depth_path.is_file():
            raise InputError(f"{where} has no depth: {depth_path} does not exist; every image needs a 16-bit depth "
                             "PNG registered to it (depth/NAME.png or the record's depth_file)")
        _image_camera(root, img, name, where)  # intrinsics and depth scale present and valid
        set_name = str(img.get("set", parts[1] if parts[0] == "images" and len(parts) > 2 else root.name))
        entries.append(_Entry(name, set_name, (lambda img=img, n=name, s=set_name, c=color_path, d=depth_path:
                                               _coco_sample(root, img, by_image[img["id"]], categories, n, s, c, d))))
    return Dataset(root.name, root, "coco", entries, categories)


# --- export ------------------------------------------------------------------------------------------

def _bbox(mask: np.ndarray) -> list[float]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def export_coco(samples: Iterable[Sample], out: str | Path, *, mask_format: str = "rle",
                depth_scale: float | None = None, description: str = "") -> Path:
    """Write samples as a COCO-with-depth data set (the layout of :func:`load_coco_dataset`), as one set.

    Parameters
    ----------
    samples : iterable of Sample
        E.g. a :class:`Dataset`. Names must be unique; a name ``set/frame`` becomes ``images/set/frame.png``.
    out : folder
        Replaced as a whole (:func:`graspseg.core.io.output_set`).
    mask_format : str
        ``rle`` (compressed, default), ``rle_uncompressed`` or ``polygon`` (outer contours: holes are lost).
    depth_scale : float, optional
        Metres per depth unit of the written PNGs; default each frame's own (``meta["depth_scale"]``), else
        1e-4. With the frame's own scale the depth reads back bit-identical.

    Returns
    -------
    Path of ``annotations.json``.
    """
    from ..capture.images import write_png
    from ..core.camera import check_depth_scale
    from ..core.io import atomic_write_json, output_set

    if mask_format not in MASK_FORMATS:
        raise InputError(f"mask_format {mask_format!r}: choose one of {MASK_FORMATS}")
    if depth_scale is not None:
        depth_scale = check_depth_scale(depth_scale)
    out = Path(out)
    images, annotations = [], []
    cat_ids: dict[str, int] = {}
    if isinstance(samples, Dataset):
        cat_ids = {n: i for i, n in samples.categories.items()}
    seen: set[str] = set()
    with output_set(out) as tmp:
        for k, s in enumerate(samples):
            if s.name in seen:
                raise InputError(f"two samples are named {s.name!r}; export needs unique names")
            if not s.name or s.name.startswith("/") or ".." in Path(s.name).parts:
                raise InputError(f"sample name {s.name!r} cannot be a file name under images/")
            seen.add(s.name)
            scale = depth_scale or s.frame.meta.get("depth_scale") or 1e-4
            raw = np.round(s.frame.depth_m.astype(np.float64) / scale)
            if raw.max(initial=0) > 65535:
                raise InputError(f"sample {s.name}: depth up to {float(s.frame.depth_m.max()):.2f} m does not fit 16 bits "
                                 f"at depth_scale {scale:g}; pass a larger depth_scale")
            write_png(tmp / "images" / f"{s.name}.png", s.frame.color)
            write_png(tmp / "depth" / f"{s.name}.png", raw.astype(np.uint16))
            intr = s.frame.intrinsics.to_dict()
            rec = {"id": k + 1, "file_name": f"images/{s.name}.png", "width": s.frame.width, "height": s.frame.height,
                   "depth_file": f"depth/{s.name}.png", "depth_scale": float(scale),
                   "intrinsics": {f: intr[f] for f in ("fx", "fy", "cx", "cy", "distortion_k1_k2_p1_p2_k3")},
                   "set": s.set_name, "timestamp_s": s.frame.timestamp_s}
            images.append(rec)
            for inst in s.instances:
                if inst.category not in cat_ids:
                    cat_ids[inst.category] = max(cat_ids.values(), default=0) + 1
                if mask_format == "polygon":
                    seg = encode_polygons(inst.mask)
                else:
                    seg = encode_rle(inst.mask, compressed=mask_format == "rle")
                ann = {"id": len(annotations) + 1, "image_id": k + 1, "category_id": cat_ids[inst.category],
                       "segmentation": seg, "area": inst.area_px, "bbox": _bbox(inst.mask),
                       "iscrowd": 0, "object_id": inst.object_id}
                if inst.camera_from_object is not None:
                    ann["camera_from_object"] = inst.camera_from_object.matrix.tolist()
                annotations.append(ann)
        if not images:
            raise InputError("nothing to export: the data set is empty")
        doc = {"info": {"description": description or "graspseg COCO export with depth and intrinsics",
                        "layout": "graspseg-coco-depth/1", "units": {"depth": "value x depth_scale = metres",
                                                                     "camera_from_object": "metres"},
                        "frame": CAMERA_FRAME},
               "images": images, "annotations": annotations,
               "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in
                              sorted(cat_ids.items(), key=lambda kv: kv[1])]}
        atomic_write_json(tmp / ANNOTATIONS, doc, indent=None)
    return out / ANNOTATIONS
