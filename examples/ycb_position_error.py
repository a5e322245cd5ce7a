"""Object position error of ``perceive`` against ground-truth poses (frame folders with objects.json).

One click per object at the interior point farthest from its true boundary; the estimated object centre
(``shape.camera_from_object``, completed against the support plane) is compared with the pose origin (the
model centre). Prints JSON: per-object errors in mm and the median, for each granularity policy asked.

    python examples/ycb_position_error.py --data ../shared/data/real/ycb_video --granularity whole auto
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from graspseg.capture import load_frame_folder
from graspseg.capture.images import read_mask
from graspseg.core.io import read_json
from graspseg.eval import first_click
from graspseg.pipeline import Pipeline
from graspseg.segment import Prompt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder of frame folders with objects.json")
    ap.add_argument("--granularity", nargs="+", default=["whole"], choices=("part", "whole", "group", "auto"))
    args = ap.parse_args()
    out = {}
    for policy in args.granularity:
        pipe = Pipeline()
        errors = []
        for folder in sorted(p for p in args.data.iterdir() if (p / "objects.json").is_file()):
            frame = load_frame_folder(folder)
            for obj in read_json(folder / "objects.json", "objects.json"):
                if obj.get("camera_from_object") is None:
                    continue
                gt = read_mask(folder / obj["mask"])
                u, v = first_click(gt)
                res = pipe.perceive(frame, Prompt.from_point(u, v), granularity=policy)
                est = res.shape.camera_from_object.matrix[:3, 3]
                true = np.asarray(obj["camera_from_object"], float)[:3, 3]
                errors.append({"frame": folder.name, "object": obj["name"],
                               "error_mm": round(float(np.linalg.norm(est - true) * 1e3), 1)})
        out[policy] = {"median_mm": statistics.median(e["error_mm"] for e in errors),
                       "max_mm": max(e["error_mm"] for e in errors), "n": len(errors), "objects": errors}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
