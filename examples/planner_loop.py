"""A planner's loop around graspseg: ask for a grasp, refuse it when its margin is too thin, re-prompt.

A controller that places the fingers to within ``--min-margin-mm`` cannot use a grasp whose worst-case margin
(how far the fingers may be off before the grasp fails, after the mask's boundary error is accounted for) is
below that. The loop

1. plans on the frame with the click (default: the bundled sample frame, click 352,280 on the mug);
2. takes the accepted grasp with the largest worst-case margin;
3. if there is none, or its margin is below ``--min-margin-mm``, re-prompts: the same click at another
   granularity (``part``, ``group``), then clicks a few pixels around the first one;
4. when every attempt failed, says it would move the camera (closer, or to another side) and capture again,
   and exits with status 2;
5. otherwise prints the grasp as a ``moveit_msgs/msg/Grasp``-shaped JSON object on stdout (and writes it to
   ``--out``), ready for ``rosidl_runtime_py.set_message_fields`` or a MoveIt bridge.

Progress goes to stderr; stdout carries only the JSON. Runs on a CPU in a few seconds::

    python examples/planner_loop.py --min-margin-mm 1.0
    python examples/planner_loop.py --min-margin-mm 20 ; echo $?      # re-prompts, then "would move the camera", 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from graspseg import ros
from graspseg.capture import load_frame_folder
from graspseg.plugin import GraspPlanningPlugin
from graspseg.segment import Prompt

SAMPLE_FRAME = Path(__file__).resolve().parents[1] / "graspseg" / "data" / "sample_frame"
#: Exit status when no attempt gave a grasp the controller tolerates.
EXIT_MOVE_CAMERA = 2


def attempts(u: float, v: float, step_px: float) -> list[tuple[float, float, str | None]]:
    """(u, v, granularity) to try in order: the click as given, other granularities, then nearby clicks."""
    out: list[tuple[float, float, str | None]] = [(u, v, None), (u, v, "part"), (u, v, "group")]
    out += [(u + du, v + dv, None) for du, dv in ((step_px, 0), (-step_px, 0), (0, step_px), (0, -step_px))]
    return out


def say(text: str) -> None:
    print(f"planner: {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frame", type=Path, default=SAMPLE_FRAME, help="frame folder (default: the bundled sample)")
    p.add_argument("--point", default="352,280", help="click U,V in pixels (default 352,280, the sample's mug)")
    p.add_argument("--gripper", default="franka_hand", help="franka_hand, robotiq_2f85, generic or a YAML path")
    p.add_argument("--min-margin-mm", type=float, default=2.0,
                   help="smallest worst-case margin the controller tolerates, millimetres")
    p.add_argument("--max-attempts", type=int, default=5, help="prompts to try before asking to move the camera")
    p.add_argument("--step-px", type=float, default=12.0, help="pixel offset of the re-prompt clicks")
    p.add_argument("--out", type=Path, help="also write the MoveIt-shaped grasp JSON here")
    args = p.parse_args(argv)
    try:
        u, v = (float(x) for x in args.point.split(","))
    except ValueError:
        p.error(f"--point must be U,V in pixels, got {args.point!r}")
    if args.max_attempts < 1:
        p.error("--max-attempts must be at least 1")

    frame = load_frame_folder(args.frame)
    perception = GraspPlanningPlugin(gripper=args.gripper)
    for i, (pu, pv, gran) in enumerate(attempts(u, v, args.step_px)[: args.max_attempts], 1):
        label = f"attempt {i}: click ({pu:g}, {pv:g}), granularity {gran or 'default'}"
        try:
            response = perception.plan(frame, Prompt.from_point(pu, pv), granularity=gran)
        except ValueError as e:  # graspseg's input errors (a click off the object or off the image) are ValueErrors
            say(f"{label}: {e}; re-prompting")
            continue
        if response.status != "ok":
            say(f"{label}: no grasp ({response.suggestion or response.rejected_counts}); re-prompting")
            continue
        best = max(response.grasps, key=lambda g: (g.worst_case_margin_mm, g.score))
        if best.worst_case_margin_mm < args.min_margin_mm:
            say(f"{label}: rejected, worst-case margin {best.worst_case_margin_mm:.2f} mm is below the "
                f"{args.min_margin_mm:g} mm the controller tolerates; re-prompting")
            continue
        rank = response.grasps.index(best)
        say(f"{label}: accepted grasp {rank} in {response.frame}, worst-case margin "
            f"{best.worst_case_margin_mm:.2f} mm >= {args.min_margin_mm:g} mm, opening {best.opening_m * 1e3:.1f} mm")
        grasp = ros.moveit_grasp(best, perception.gripper, grasp_id=f"{frame.frame_id or 'frame'}_{rank}",
                                 stamp_s=frame.timestamp_s)
        out = {"schema": "graspseg.planner_loop", "attempt": i, "frame": response.frame,
               "worst_case_margin_mm": best.worst_case_margin_mm, "min_margin_mm": args.min_margin_mm,
               "moveit_grasp": grasp}
        text = json.dumps(out, indent=1)
        if args.out:
            args.out.write_text(text + "\n")
        print(text)
        return 0
    say(f"no grasp with a worst-case margin of at least {args.min_margin_mm:g} mm after "
        f"{min(args.max_attempts, len(attempts(u, v, args.step_px)))} prompts: would move the camera (closer to "
        "the object, or to another side of it) and capture a new frame")
    return EXIT_MOVE_CAMERA


if __name__ == "__main__":
    sys.exit(main())
