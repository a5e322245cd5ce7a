"""Put ``graspseg eval segment`` and ``graspseg bench quality`` side by side on the same frames.

Both score the 1-click ``whole`` candidate with the functions of :mod:`graspseg.eval.metrics`; this prints
their per-set figures (and every object's IoU) next to each other with the largest difference, as JSON::

    graspseg eval segment --data ../shared/data/real --out /tmp/ev > /tmp/ev.json
    graspseg bench quality --synthetic 0 --no-baselines --repeat 1 --quiet > /tmp/bq.json
    python examples/eval_vs_bench_quality.py /tmp/ev.json /tmp/bq.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: (eval segment summary key, bench quality key) of the same 1-click figure.
PAIRS = (("mean_iou_1click", "mean_iou"), ("mean_boundary_f_2px", "mean_boundary_f"),
         ("mean_boundary_f_davis", "mean_boundary_f_davis"), ("mean_boundary_iou", "mean_boundary_iou"),
         ("median_signed_offset_px", "median_signed_offset_px"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eval_json", type=Path, help="stdout of graspseg eval segment")
    ap.add_argument("bench_json", type=Path, help="stdout of graspseg bench quality")
    ap.add_argument("--objects", type=Path, help="eval segment's objects.json (default: beside summary.json of "
                    "the eval output folder)")
    args = ap.parse_args()
    ev = json.loads(args.eval_json.read_text())
    bq = json.loads(args.bench_json.read_text())["real"]
    out, worst = {}, 0.0
    for name, cell in bq["sets"].items():
        mine = ev["sets"].get(name)
        if mine is None:
            continue
        row = {}
        for a, b in PAIRS:
            x, y = mine.get(a), cell.get(b)
            row[a] = {"eval_segment": x, "bench_quality": y}
            if x is not None and y is not None:
                worst = max(worst, abs(x - y))
        row["objects"] = {"eval_segment": mine["objects"], "bench_quality": cell["objects"]}
        out[name] = row
    objects = args.objects or Path(ev["out"]) / "objects.json"
    per_object, matched = 0.0, 0
    if objects.is_file():
        rows = {(r["set"], r["sample"].split("/")[-1], r["category"]): r for r in
                json.loads(objects.read_text())["objects"]}
        for name, cell in bq["sets"].items():
            for f in cell.get("frames_detail", []):
                for o in f.get("objects", []):
                    r = rows.get((name, f["frame"], o["object"]))
                    if r is not None and o.get("iou") is not None:
                        per_object = max(per_object, abs(r["iou_1click"] - o["iou"]))
                        matched += 1
    print(json.dumps({"sets": out, "max_abs_difference_of_set_means": round(worst, 6),
                      "objects_matched": matched, "max_abs_difference_per_object_iou": round(per_object, 6)},
                     indent=2))


if __name__ == "__main__":
    main()
