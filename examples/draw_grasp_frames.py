"""Draw the grasp frame on every shipped gripper: ``docs/img/grasp_frame_<name>.png``.

Each picture is :func:`graspseg.viz.gripper_frame.draw_gripper_frame` at the gripper's largest opening: the
finger and palm boxes the collision model uses, the grasp frame at the fingertip centre, the robot's TCP frame
(``graspseg.plugin.grasp_from_tcp``) and the model's numbers. Regenerate after editing a gripper YAML.

Run:  .venv/bin/python examples/draw_grasp_frames.py [--out-dir docs/img] [--gripper NAME ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from graspseg.grasp.gripper import GRIPPER_DIR, load_gripper
from graspseg.viz.gripper_frame import draw_gripper_frame


def shipped_grippers() -> list[str]:
    """Names of the gripper YAMLs shipped in ``graspseg/grasp/grippers/`` (not third-party entry points)."""
    return sorted(p.stem for p in GRIPPER_DIR.glob("*.yaml"))


def write_grasp_frames(out_dir: str | Path, names: list[str] | None = None) -> list[Path]:
    """Write ``grasp_frame_<name>.png`` for each gripper into ``out_dir``; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names or shipped_grippers():
        gripper = load_gripper(name)
        path = out_dir / f"grasp_frame_{gripper.name}.png"
        Image.fromarray(draw_gripper_frame(gripper)).save(path, optimize=True)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(Path(__file__).resolve().parent.parent / "docs" / "img"))
    parser.add_argument("--gripper", action="append", help="a gripper name or YAML path (default: every shipped one)")
    args = parser.parse_args(argv)
    for path in write_grasp_frames(args.out_dir, args.gripper):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
