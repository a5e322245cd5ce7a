"""Calibration of the boundary-error default ``k``: the segmenter's measured rim error on annotated data.

The grasp stage widens its margins by the expected mask boundary error ``k`` (pixels). The pipeline picks it
in one place (:meth:`graspseg.pipeline.Pipeline.boundary_error`), the first that is set of: the ``perceive``
argument, the config's ``boundary_error_px``, ``grasp.boundary_error_px``, and the segmenter's own estimate
(:func:`graspseg.segment.uncertainty.boundary_error_details`: a measurement shipped in a SAM checkpoint, else
the soft-mask and candidate cues). :func:`measure_boundary_error` measures the error the segmenter really makes
with the one-click protocol (the first click of :func:`graspseg.eval.first_click`, the ``whole`` candidate):
the 90th percentile of the absolute rim offsets. It is written to either place the pipeline reads::

    graspseg eval boundary-error --data DATA --out k.yaml     # k.yaml (boundary_error_px) + k.json
    graspseg perceive --config k.yaml ...                      # margins use the measured k
    graspseg finetune ... --out CKPT                           # CKPT/graspseg_boundary_error.json
    graspseg perceive --segment.backend=sam --segment.options.model=CKPT ...   # k from the checkpoint
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, InputError
from .datasets import Sample
from .segmentation import MIN_AREA_PX, Evaluation, evaluate_dataset, rim_offset_distribution

log = logging.getLogger(__name__)

#: Which statistic of the distribution becomes ``boundary_error_px``.
K_STATISTIC = "abs_p90_px"
#: Objects whose one-click mask has a lower IoU are wrong-object failures, not boundary errors (the COCO
#: matching threshold); they are counted, and left out of ``boundary_error_px``.
MIN_IOU = 0.5


def boundary_error_from_evaluation(ev: Evaluation, *, min_iou: float = MIN_IOU, granularity: str = "whole") -> dict:
    """The boundary-error result of an :class:`~graspseg.eval.segmentation.Evaluation`'s 1-click masks.

    Returns
    -------
    dict
        ``boundary_error_px`` (the p90 of the absolute rim offsets, :func:`graspseg.eval.rim_offsets_px`, pooled
        over every predicted rim pixel of the objects whose 1-click IoU is at least ``min_iou``), that
        ``distribution`` (:func:`graspseg.eval.segmentation.rim_offset_distribution`), ``distribution_all``
        (every object), ``sets`` (per set), ``excluded_objects`` and ``per_object`` rows (set, sample, category,
        object_id, iou, used, signed / absolute median, absolute p90, rim pixels).
    """
    if not 0 <= min_iou < 1:
        raise InputError(f"min_iou must be in [0, 1), got {min_iou}")
    used, by_set, per_object = [], {}, []
    for row, off in zip(ev.rows, ev.rim_offsets_px, strict=True):
        ok = row["iou_1click"] >= min_iou
        if ok:
            used.append(off)
            by_set.setdefault(row["set"], []).append(off)
        a = np.abs(off)
        per_object.append({
            "set": row["set"], "sample": row["sample"], "category": row["category"], "object_id": row["object_id"],
            "iou": row["iou_1click"], "used": bool(ok),
            "signed_median_px": round(float(np.median(off)), 3) if off.size else None,
            "abs_median_px": round(float(np.median(a)), 3) if off.size else None,
            "abs_p90_px": round(float(np.percentile(a, 90)), 3) if off.size else None,
            "rim_pixels": int(off.size),
        })
    dist = rim_offset_distribution(used)
    if not dist["rim_pixels"]:
        raise InputError(f"no one-click mask reached IoU {min_iou} (the right object) among {len(ev.rows)} objects; "
                         "the boundary error of a segmenter that misses every object is not a boundary error — "
                         "check the backend, or lower min_iou")
    return {"boundary_error_px": dist[K_STATISTIC], "statistic": K_STATISTIC, "granularity": granularity,
            "protocol": "one click at the interior point farthest from the true boundary", "min_iou": min_iou,
            "excluded_objects": sum(not r["used"] for r in per_object), "distribution": dist,
            "distribution_all": rim_offset_distribution(list(ev.rim_offsets_px)),
            "sets": {name: rim_offset_distribution(v) for name, v in sorted(by_set.items())},
            "per_object": per_object, "units": {"offsets": "px (> 0: predicted rim outside the true outline)"}}


def measure_boundary_error(segmenter, dataset: Sequence[Sample], *, granularity: str = "whole",
                           min_area_px: int = MIN_AREA_PX, min_iou: float = MIN_IOU,
                           set_frame: Callable[[Sample], None] | None = None,
                           progress: Callable[[int, int], None] | None = None) -> dict:
    """The segmenter's rim offsets (px) on every annotated instance of ``dataset``, one click each.

    :func:`graspseg.eval.evaluate_dataset` with a one-click budget, then
    :func:`boundary_error_from_evaluation`.

    Parameters
    ----------
    segmenter : Segmenter
    dataset : Dataset or sequence of Sample
        With instance masks (ground truth).
    granularity : str
        The candidate taken (``whole``: the grasp stage's default).
    min_area_px : int
        Smaller instances are skipped (as ``graspseg eval segment`` and ``bench quality`` do).
    min_iou : float
        Masks below this IoU took the wrong object (a merge with a neighbour, a part): they are reported
        (``excluded_objects``, ``distribution_all``) but not used for ``boundary_error_px``.
    set_frame : callable, optional
        As in :func:`graspseg.eval.evaluate_dataset`.
    """
    if not 0 <= min_iou < 1:
        raise InputError(f"min_iou must be in [0, 1), got {min_iou}")
    ev = evaluate_dataset(segmenter, dataset, max_clicks=1, granularity=granularity, min_area_px=min_area_px,
                          worst=0, set_frame=set_frame,
                          progress=None if progress is None else (lambda k, n, *_: progress(k, n)))
    return boundary_error_from_evaluation(ev, min_iou=min_iou, granularity=granularity)


def write_checkpoint_boundary_error(result: dict, checkpoint_dir: str | Path, *, reference_long_side_px: float,
                                    data: str = "") -> Path:
    """Write ``result`` into a SAM checkpoint directory as ``graspseg_boundary_error.json`` (atomically).

    The SAM backend loading that directory puts ``p90_px`` × ``max(H, W) / reference_long_side_px`` in every
    :class:`~graspseg.segment.MaskSet`'s ``details["calibrated_boundary_error_px"]``, which
    :func:`graspseg.segment.uncertainty.boundary_error_details` takes as the expected boundary error (the
    pipeline's ``k`` when the config sets none).

    Parameters
    ----------
    result : dict
        Of :func:`boundary_error_from_evaluation` / :func:`measure_boundary_error`.
    reference_long_side_px : float
        Longest image side of the measured images, pixels (the error in pixels scales with the image).
    """
    from ..core.io import atomic_write_json
    from ..segment.backends.sam import BOUNDARY_CALIBRATION_FILE

    if not reference_long_side_px > 0:
        raise InputError(f"reference_long_side_px must be > 0 pixels, got {reference_long_side_px}")
    doc = {
        "schema_version": 1, "units": {"distance": "px", "image_size": "px"},
        "what": "absolute distance of the predicted mask rim to the true outline (graspseg.eval.rim_offsets_px), "
                f"1-click {result['granularity']} candidate, objects with IoU >= {result['min_iou']}",
        "p90_px": float(result["boundary_error_px"]), "statistic": result["statistic"],
        "median_px": result["distribution"]["abs_median_px"], "mean_px": result["distribution"]["abs_mean_px"],
        "reference_long_side_px": float(reference_long_side_px), "data": data,
        "excluded_objects": result["excluded_objects"], "distribution": result["distribution"],
        "scaling": "the SAM backend scales p90_px by max(H, W) / reference_long_side_px of the frame it segments",
    }
    path = Path(checkpoint_dir) / BOUNDARY_CALIBRATION_FILE
    atomic_write_json(path, doc)
    return path


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

    ``base_config``: a pipeline YAML whose other settings are kept. (A SAM checkpoint carries its own
    measurement instead: :func:`write_checkpoint_boundary_error`.)
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
