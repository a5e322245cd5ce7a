"""Calibration of the boundary-error default ``k``: the segmenter's measured rim error on annotated data.

The grasp stage widens its margins by the expected mask boundary error ``k`` (pixels): the pipeline takes
``boundary_error_px`` from its config (:class:`graspseg.pipeline.PipelineConfig`) and, when that is null, the
segmenter's own per-mask estimate. :func:`measure_boundary_error` measures the error the segmenter really
makes with the one-click protocol (the first click of :func:`graspseg.eval.first_click`, the ``whole``
candidate) and :func:`write_boundary_error_config` writes a pipeline config setting ``boundary_error_px`` to
the 90th percentile of the absolute rim offsets, with the full distribution beside it::

    graspseg eval boundary-error --data DATA --out k.yaml     # k.yaml + k.json
    graspseg perceive --config k.yaml ...                      # margins use the measured k
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, InputError
from .clicks import simulate_clicks
from .datasets import Dataset
from .metrics import mask_iou, rim_offsets_px
from .segmentation import MIN_AREA_PX, rim_offset_distribution

log = logging.getLogger(__name__)

#: Which statistic of the distribution becomes ``boundary_error_px``.
K_STATISTIC = "abs_p90_px"


#: Objects whose one-click mask has a lower IoU are wrong-object failures, not boundary errors (the COCO
#: matching threshold); they are counted, and left out of ``boundary_error_px``.
MIN_IOU = 0.5


def measure_boundary_error(segmenter, dataset: Dataset, *, granularity: str = "whole", min_area_px: int = MIN_AREA_PX,
                           min_iou: float = MIN_IOU, progress: Callable[[int, int], None] | None = None) -> dict:
    """The segmenter's rim offsets (px) on every annotated instance of ``dataset``, one click each.

    Parameters
    ----------
    segmenter : Segmenter
    dataset : Dataset
        With instance masks (ground truth).
    granularity : str
        The candidate taken (``whole``: the grasp stage's default).
    min_area_px : int
        Smaller instances are skipped (as ``graspseg eval segment`` and ``bench quality`` do).
    min_iou : float
        Masks below this IoU took the wrong object (a merge with a neighbour, a part): they are reported
        (``excluded_objects``, ``distribution_all``) but not used for ``boundary_error_px``.

    Returns
    -------
    dict
        ``boundary_error_px`` (the p90 of the absolute offsets pooled over every predicted rim pixel of the
        objects at or above ``min_iou``), that ``distribution``
        (:func:`graspseg.eval.segmentation.rim_offset_distribution`), ``distribution_all`` (every object),
        ``sets`` (the distribution per set), and ``per_object`` rows (sample, category, object_id, iou,
        signed / absolute median, absolute p90, used).
    """
    if len(dataset) == 0:
        raise InputError(f"data set {dataset.name} is empty; the boundary error needs annotated instances")
    if not 0 <= min_iou < 1:
        raise InputError(f"min_iou must be in [0, 1), got {min_iou}")
    offsets, used, per_object, by_set = [], [], [], {}
    for k, sample in enumerate(dataset):
        todo = [i for i in sample.instances if i.area_px >= min_area_px]
        if todo:
            segmenter.set_frame(sample.frame)
        for inst in todo:
            trace = simulate_clicks(segmenter, inst.mask, max_clicks=1, granularity=granularity)
            off = rim_offsets_px(trace.first_mask, inst.mask)
            iou = mask_iou(trace.first_mask, inst.mask)
            ok = iou >= min_iou
            offsets.append(off)
            if ok:
                used.append(off)
                by_set.setdefault(sample.set_name, []).append(off)
            a = np.abs(off)
            per_object.append({
                "set": sample.set_name, "sample": sample.name, "category": inst.category,
                "object_id": inst.object_id, "iou": round(iou, 4), "used": bool(ok),
                "signed_median_px": round(float(np.median(off)), 3) if off.size else None,
                "abs_median_px": round(float(np.median(a)), 3) if off.size else None,
                "abs_p90_px": round(float(np.percentile(a, 90)), 3) if off.size else None,
                "rim_pixels": int(off.size),
            })
        if progress is not None:
            progress(k, len(dataset))
    if not per_object:
        raise InputError(f"data set {dataset.name} has no annotated instance of at least {min_area_px} pixels; "
                         "the boundary error cannot be measured")
    dist = rim_offset_distribution(used)
    if not dist["rim_pixels"]:
        raise InputError(f"data set {dataset.name}: no one-click mask reached IoU {min_iou} (the right object); "
                         "the boundary error of a segmenter that misses every object is not a boundary error — "
                         "check the backend, or lower min_iou")
    return {"boundary_error_px": dist[K_STATISTIC], "statistic": K_STATISTIC, "granularity": granularity,
            "protocol": "one click at the interior point farthest from the true boundary", "min_iou": min_iou,
            "excluded_objects": sum(not r["used"] for r in per_object), "distribution": dist,
            "distribution_all": rim_offset_distribution(offsets),
            "sets": {name: rim_offset_distribution(v) for name, v in sorted(by_set.items())},
            "per_object": per_object, "units": {"offsets": "px (> 0: predicted rim outside the true outline)"}}


def boundary_error_config_text(result: dict, *, base_config: dict | None = None, source: str = "") -> str:
    """YAML text of a pipeline config setting ``boundary_error_px`` from ``result``, the distribution in comments.

    ``base_config`` (a pipeline config mapping) is kept with only ``boundary_error_px`` replaced.
    """
    import yaml

    d = result["distribution"]
    lines = [
        "# graspseg boundary-error calibration (graspseg eval boundary-error)",
        f"# {source}".rstrip() if source else "#",
        f"# {d['objects']} objects, {d['rim_pixels']} rim pixels, {result['protocol']}, "
        f"granularity {result['granularity']}",
        f"# left out: {result['excluded_objects']} objects whose mask took the wrong object (IoU < {result['min_iou']}); "
        f"with them p90 would be {result['distribution_all']['abs_p90_px']} px",
        f"# |rim offset| px: median {d['abs_median_px']}, p90 {d['abs_p90_px']}, p95 {d['abs_p95_px']}, "
        f"mean {d['abs_mean_px']}",
        f"# signed rim offset px (> 0 outside): median {d['signed_median_px']}, p10 {d['signed_p10_px']}, "
        f"p90 {d['signed_p90_px']}",
        *(f"# set {name}: |rim offset| median {v['abs_median_px']} px, p90 {v['abs_p90_px']} px"
          for name, v in result.get("sets", {}).items()),
        f"# boundary_error_px = the {result['statistic']} above; use it with: graspseg perceive --config THIS_FILE",
    ]
    cfg = dict(base_config or {})
    cfg["boundary_error_px"] = float(result["boundary_error_px"])
    return "\n".join(lines) + "\n" + yaml.safe_dump(cfg, sort_keys=False)


def write_boundary_error_config(result: dict, path: str | Path, *, base_config: str | Path | None = None,
                                source: str = "") -> tuple[Path, Path]:
    """Write ``path`` (YAML: ``boundary_error_px: <p90>``) and the distribution as ``path`` with ``.json``.

    A fine-tuned checkpoint directory can hold the same file (``boundary_error.yaml``) so that the margins
    use the error the tuned model makes. ``base_config``: a pipeline YAML whose other settings are kept.
    Both files are written atomically; the YAML is checked to load as a pipeline config.

    Returns
    -------
    (yaml_path, json_path)
    """
    from ..core.io import atomic_write_json, atomic_write_text, read_yaml

    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise InputError(f"--out {path}: the boundary-error config is a YAML file; give a path ending in .yaml")
    if path.is_dir():
        raise InputError(f"--out {path} is a folder; give the path of a .yaml file")
    base = None
    if base_config is not None:
        base = read_yaml(base_config, "pipeline config")
        if base is None:
            base = {}
        if not isinstance(base, dict):
            raise ConfigError(f"pipeline config {base_config}: expected a mapping of sections, got "
                              f"{type(base).__name__}")
    text = boundary_error_config_text(result, base_config=base, source=source)
    side = path.with_suffix(".json")
    atomic_write_json(side, {"schema_version": 1, **result})
    atomic_write_text(path, text)
    return path, side
