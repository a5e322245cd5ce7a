"""Evaluation data sets: the :class:`Dataset` of :class:`Sample` (frame + instances), frame folders, summaries.

A :class:`Dataset` is a lazily loaded sequence of :class:`Sample` (an :class:`~graspseg.core.RGBDFrame` and
its annotated :class:`Instance` objects). Two layouts are read (:func:`load_dataset` picks by what it finds):

* **COCO with depth**: :mod:`graspseg.eval.coco` (``annotations.json``, ``images/``, ``depth/``, intrinsics
  per image record or in ``camera/NAME.json``).
* **Frame folders** (:func:`load_frame_folders`): ``color.png``, ``depth.png``, ``camera.json``, ``masks/``
  and ``objects.json`` (``shared/data/README.md``), read by :mod:`graspseg.capture.frame_folder`. The path
  may be one frame folder, a set (a folder of frame folders) or a folder of sets.
* **Native episodes** (:func:`load_episodes`, :mod:`graspseg.capture.episode`): one episode folder
  (``episode.json``, ``index.jsonl``, ``frames/``) or a folder of them; each episode is a set, its frames
  with ``masks/`` the annotated samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError, ShapeError
from ..core.frame import RGBDFrame
from ..core.transform import Transform

log = logging.getLogger(__name__)

CAMERA_FRAME = "camera_color_optical"


@dataclass(frozen=True, eq=False)
class Instance:
    """One annotated object of a sample.

    ``mask, category, object_id = instance`` unpacks the three core fields.

    Attributes
    ----------
    mask : (H, W) bool
        The object's pixels in the sample's colour image.
    category : str
        Category name.
    object_id : int
        Instance identity (the frame folder's object id, COCO's ``object_id`` or annotation id).
    camera_from_object : Transform or None
        True pose (metres, ``camera_color_optical`` from ``object``), when annotated.
    """

    mask: np.ndarray
    category: str
    object_id: int
    camera_from_object: Transform | None = None

    def __post_init__(self) -> None:
        m = np.asarray(self.mask)
        if m.ndim != 2:
            raise ShapeError(f"instance mask must be an (H, W) image, got shape {m.shape}")
        m = m.astype(bool, copy=False)
        m.setflags(write=False)
        object.__setattr__(self, "mask", m)
        object.__setattr__(self, "object_id", int(self.object_id))
        object.__setattr__(self, "category", str(self.category))

    def __iter__(self) -> Iterator:
        return iter((self.mask, self.category, self.object_id))

    @property
    def area_px(self) -> int:
        return int(np.count_nonzero(self.mask))


@dataclass(frozen=True, eq=False)
class Sample:
    """One frame with its annotated objects.

    Attributes
    ----------
    frame : RGBDFrame
    instances : tuple of Instance
        Every instance mask has the frame's (H, W).
    name : str
        Unique within its data set (``set/frame`` for a folder of sets).
    set_name : str
        The subset it belongs to (per-set figures).
    """

    frame: RGBDFrame
    instances: tuple[Instance, ...]
    name: str
    set_name: str = ""

    def __post_init__(self) -> None:
        inst = tuple(self.instances)
        for i in inst:
            if i.mask.shape != (self.frame.height, self.frame.width):
                raise ShapeError(f"sample {self.name}: mask of {i.category} (id {i.object_id}) is "
                                 f"{i.mask.shape[1]}x{i.mask.shape[0]} but the frame is "
                                 f"{self.frame.width}x{self.frame.height}; masks must have their image's size")
        object.__setattr__(self, "instances", inst)


@dataclass(frozen=True)
class _Entry:
    name: str
    set_name: str
    load: Callable[[], Sample]


class Dataset(Sequence):
    """A sequence of :class:`Sample`, each read from disk when indexed (nothing is cached).

    Attributes
    ----------
    name : str
    root : Path
        The data set's folder (COCO: the folder holding ``annotations.json``).
    layout : str
        ``"coco"``, ``"frame_folders"`` or ``"episodes"``.
    categories : dict of int to str
        Category id → name (frame folders: ids 1.. by sorted name).
    """

    def __init__(self, name: str, root: Path, layout: str, entries: list[_Entry], categories: dict[int, str]):
        self.name = name
        self.root = Path(root)
        self.layout = layout
        self._entries = list(entries)
        self.categories = dict(categories)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        return self._entries[index].load()

    def __iter__(self) -> Iterator[Sample]:
        for e in self._entries:
            yield e.load()

    @property
    def names(self) -> list[str]:
        return [e.name for e in self._entries]

    @property
    def set_names(self) -> list[str]:
        return [e.set_name for e in self._entries]

    def subset(self, indices: Iterable[int]) -> Dataset:
        """The samples at ``indices`` (e.g. a train / validation split), as a data set of the same layout."""
        return Dataset(self.name, self.root, self.layout, [self._entries[i] for i in indices], self.categories)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {self.layout}, {len(self)} samples, {len(self.categories)} categories)"


# --- frame folders -------------------------------------------------------------------------------------

def _is_frame_folder(p: Path) -> bool:
    return p.is_dir() and (p / "camera.json").is_file()


def _frame_sample(folder: Path, name: str, set_name: str) -> Sample:
    from ..capture.frame_folder import load_frame_folder, load_ground_truth

    frame = load_frame_folder(folder)
    gts = load_ground_truth(folder, (frame.height, frame.width))
    return Sample(frame, tuple(Instance(g.mask, g.name, g.id, g.camera_from_object) for g in gts), name, set_name)


def _category_names(folder: Path) -> list[str]:
    import json

    objs = folder / "objects.json"
    if objs.is_file():
        try:
            return [str(o["name"]) for o in json.loads(objs.read_text()) if isinstance(o, dict) and "name" in o]
        except (ValueError, OSError):
            return []  # the loader names the problem when the sample is read
    return [p.stem.split("_", 1)[-1] for p in sorted((folder / "masks").glob("*.png"))]


def load_frame_folders(path: str | Path) -> Dataset:
    """A data set of frame folders: ``path`` is one frame folder, a set of them, or a folder of sets.

    Raises
    ------
    InputError
        ``path`` does not exist, or holds no frame folder (``camera.json``) two levels down.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"data set {root} does not exist or is not a folder; give a COCO annotations JSON, a "
                         "folder with annotations.json, or frame folders (color.png, depth.png, camera.json)")
    if _is_frame_folder(root):
        found = [(root, root.name, root.parent.name or root.name)]
    else:
        found = [(p, p.name, root.name) for p in sorted(root.iterdir()) if _is_frame_folder(p)]
        if not found:
            found = [(f, f"{s.name}/{f.name}", s.name) for s in sorted(root.iterdir()) if s.is_dir()
                     for f in sorted(s.iterdir()) if _is_frame_folder(f)]
    if not found:
        raise InputError(f"data set {root} is empty: no frame folder (with camera.json) in it or in its sub-folders, "
                         "and no annotations.json; see docs/metrics.md for the layouts")
    names = sorted({n for f, _, _ in found for n in _category_names(f)})
    entries = [_Entry(name, set_name, (lambda f=f, n=name, s=set_name: _frame_sample(f, n, s)))
               for f, name, set_name in found]
    return Dataset(root.name, root, "frame_folders", entries, {i + 1: n for i, n in enumerate(names)})


# --- native episodes ---------------------------------------------------------------------------------

def _episode_sample(episode, i: int, name: str) -> Sample:
    frame = episode.frame(i)
    gts = episode.ground_truth(i)
    return Sample(frame, tuple(Instance(g.mask, g.name, g.id, g.camera_from_object) for g in gts), name,
                  episode.folder.name)


def load_episodes(path: str | Path) -> Dataset:
    """A data set of native episodes: ``path`` is one episode folder or a folder of them.

    Each episode is a set (its folder name); a sample is named ``episode/frame`` (the frame folder's name) and
    holds the frame's annotated objects (none for frames without ``masks/``). What the episode reader skipped
    (a torn last index line, a missing frame folder) is logged.

    Raises
    ------
    InputError
        ``path`` holds no episode (``episode.json``) at its top or one level down.
    """
    from ..capture.episode import Episode, is_episode

    root = Path(path)
    folders = [root] if is_episode(root) else sorted(p for p in root.iterdir() if p.is_dir() and is_episode(p))
    if not folders:
        raise InputError(f"{root} holds no native episode (a folder with episode.json), at its top or one level down")
    entries, names = [], set()
    for folder in folders:
        ep = Episode(folder)
        for problem in ep.problems:
            log.warning("episode %s: %s", folder, problem)
        for i, rec in enumerate(ep.records):
            name = f"{folder.name}/{Path(rec.folder).name}"
            entries.append(_Entry(name, folder.name, (lambda ep=ep, i=i, n=name: _episode_sample(ep, i, n))))
            names.update(_category_names(folder / rec.folder))
    return Dataset(root.name, root, "episodes", entries, {i + 1: n for i, n in enumerate(sorted(names))})


def load_dataset(path: str | Path) -> Dataset:
    """Any evaluation data set, by what ``path`` holds.

    A ``.json`` file or a folder with ``annotations.json``: COCO (:func:`graspseg.eval.coco.load_coco_dataset`);
    a native episode or a folder of them (``episode.json``): :func:`load_episodes`; else frame folders
    (:func:`load_frame_folders`).
    """
    from ..capture.episode import is_episode
    from .coco import ANNOTATIONS, load_coco_dataset

    p = Path(path)
    if p.suffix.lower() == ".json" or (p.is_dir() and (p / ANNOTATIONS).is_file()):
        return load_coco_dataset(p)
    if p.is_dir() and (is_episode(p) or any(q.is_dir() and is_episode(q) for q in p.iterdir())):
        return load_episodes(p)
    return load_frame_folders(p)


# --- summary -----------------------------------------------------------------------------------------

def _dist(values: list[float], digits: int = 4) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64)
    return {"n": int(a.size), "min": round(float(a.min()), digits), "p10": round(float(np.percentile(a, 10)), digits),
            "median": round(float(np.median(a)), digits), "mean": round(float(a.mean()), digits),
            "p90": round(float(np.percentile(a, 90)), digits), "max": round(float(a.max()), digits)}


def dataset_summary(dataset: Dataset) -> dict:
    """What a data set holds: images, instances, categories, mask areas, depth coverage, poses, per set.

    ``depth_coverage`` is the fraction of pixels with a depth reading per image; ``mask_depth_coverage`` the
    fraction of each instance's pixels with one (what the cloud and the 3-D metrics can use).
    """
    if not len(dataset):
        raise InputError(f"data set {dataset.name} is empty; nothing to summarise")
    per_set: dict[str, dict] = {}
    cats: dict[str, int] = {}
    areas_px, areas_frac, cover, mask_cover = [], [], [], []
    sizes: dict[str, int] = {}
    n_inst = n_pose = n_empty = 0
    for s in dataset:
        st = per_set.setdefault(s.set_name, {"images": 0, "instances": 0})
        st["images"] += 1
        st["instances"] += len(s.instances)
        valid = s.frame.depth_m > 0
        cover.append(float(valid.mean()))
        key = f"{s.frame.width}x{s.frame.height}"
        sizes[key] = sizes.get(key, 0) + 1
        n_empty += not s.instances
        for inst in s.instances:
            n_inst += 1
            n_pose += inst.camera_from_object is not None
            cats[inst.category] = cats.get(inst.category, 0) + 1
            a = inst.area_px
            areas_px.append(a)
            areas_frac.append(a / valid.size)
            mask_cover.append(float(valid[inst.mask].mean()) if a else 0.0)
    return {
        "data": str(dataset.root), "layout": dataset.layout, "images": len(dataset), "instances": n_inst,
        "images_without_instances": n_empty, "instances_with_pose": n_pose,
        "categories": dict(sorted(cats.items())), "resolutions": sizes, "sets": per_set,
        "mask_area_px": _dist(areas_px, 1), "mask_area_fraction": _dist(areas_frac, 5),
        "depth_coverage": _dist(cover), "mask_depth_coverage": _dist(mask_cover),
        "units": {"mask_area_px": "pixels", "mask_area_fraction": "fraction of the image",
                  "depth_coverage": "fraction of pixels with depth > 0"},
    }

