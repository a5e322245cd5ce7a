"""Bad-input cases for every loader in core/capture and every ``graspseg-calibrate`` sub-command.

Each :class:`Case` runs one real entry point (``Transform.from_dict``, ``CameraRig.from_dict``,
``load_frame_folder``, ``calibration.cli.main``, ``create_segmenter``, ...) on one broken input and
names the error the user must get: the error class (or exit code 2 for the command line) and a regular
expression its message must match. The tests (``tests/*/test_sweep_*.py``) assert exactly that;
``tests/sweep_report.py`` runs the same cases and counts clear refusals, tracebacks and silent
acceptances (it also runs against an older checkout, to count what the sweep found before the fix).

Only entry points that exist in every version are called here, so that the same cases can be run
against the code before and after the fix.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE_FRAME = REPO / "graspseg" / "data" / "sample_frame"
GOOD_TCP = {"xyz_m": [0.0, 0.0325, 0.045], "quat_xyzw": [0.0, 0.0, 0.0, 1.0]}
GOOD_INTR = {"width": 640, "height": 480, "fx": 615.0, "fy": 615.0, "cx": 319.5, "cy": 239.5}


@dataclass(frozen=True)
class Case:
    """One broken input.

    Attributes
    ----------
    id : str
        Test id, ``<entry point>-<what is broken>``.
    run : callable(Context) -> object
        Calls the entry point; for command-line cases returns the exit code.
    error : str
        Name of the graspseg error class expected, or ``"exit2"`` for a command line that must return 2
        with one line on stderr.
    match : str
        Regular expression the message (or the stderr line) must match.
    """

    id: str
    run: Callable
    error: str
    match: str
    tags: tuple = field(default=())


class Context:
    """Data the cases share, built once in ``root`` (frame folders, calibration views, checkpoints)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._calib: Path | None = None
        self._ckpt: Path | None = None
        self._n = 0

    def new_dir(self, name: str) -> Path:
        self._n += 1
        p = self.root / f"{self._n:03d}_{name}"
        p.mkdir(parents=True)
        return p

    # --- frame folders ---------------------------------------------------------------------------
    def frame(self, name: str, camera: dict | None = None, drop: tuple = (), files: dict | None = None,
              camera_text: str | bytes | None = None) -> Path:
        """A copy of the sample frame with camera.json fields replaced / removed and files replaced."""
        d = self.new_dir(name) / "frame"
        shutil.copytree(SAMPLE_FRAME, d)
        cam = json.loads((d / "camera.json").read_text())
        cam.update(camera or {})
        for k in drop:
            cam.pop(k, None)
        (d / "camera.json").write_text(json.dumps(cam))
        if camera_text is not None:
            (d / "camera.json").write_bytes(camera_text if isinstance(camera_text, bytes) else camera_text.encode())
        for rel, content in (files or {}).items():
            p = d / rel
            if content is None:
                p.unlink() if p.is_file() else shutil.rmtree(p)
            elif isinstance(content, bytes):
                p.write_bytes(content)
            elif isinstance(content, np.ndarray) and rel.endswith(".npy"):
                np.save(p, content)
            elif isinstance(content, np.ndarray):
                import cv2

                cv2.imwrite(str(p), content)
            else:
                p.write_text(content)
        return d

    # --- calibration data -------------------------------------------------------------------------
    @property
    def calib(self) -> Path:
        """Ten rendered ChArUco views + poses.jsonl, shuffled.jsonl, intrinsics.json, rig.yaml, two_views/."""
        if self._calib is None:
            from calibration.formats import write_poses_jsonl
            from calibration.synthetic import make_hand_eye_dataset, render_board_view
            from graspseg.capture.images import write_png
            from graspseg.core.camera import CameraRig
            from graspseg.core.io import atomic_write_json

            ds = make_hand_eye_dataset(11, n_poses=10)
            out = self.new_dir("calib")
            rng = np.random.default_rng(5)
            for k, c in enumerate(ds.camera_from_board):
                write_png(out / f"view_{k:02d}.png", render_board_view(ds.board, ds.intrinsics, c, rng=rng))
            write_poses_jsonl(out / "poses.jsonl", ds.base_from_tcp)
            perm = [3, 7, 0, 9, 1, 5, 8, 2, 6, 4]
            write_poses_jsonl(out / "shuffled.jsonl", [ds.base_from_tcp[i] for i in perm])
            swapped = list(ds.base_from_tcp)
            swapped[2], swapped[5] = swapped[5], swapped[2]
            write_poses_jsonl(out / "swapped.jsonl", swapped)
            atomic_write_json(out / "intrinsics.json", ds.intrinsics.to_dict())
            CameraRig(ds.intrinsics, ds.tcp_from_camera, depth_scale=1e-3).save_yaml(out / "rig.yaml")
            two = out / "two_views"
            two.mkdir()
            for k in range(2):
                shutil.copy(out / f"view_{k:02d}.png", two / f"view_{k:02d}.png")
            write_poses_jsonl(two / "poses.jsonl", ds.base_from_tcp[:2])
            self._calib = out
        return self._calib

    # --- a tiny transformers checkpoint -------------------------------------------------------------
    @property
    def checkpoint(self) -> Path:
        """A tiny randomly initialised SAM checkpoint (config.json + model.safetensors)."""
        if self._ckpt is None:
            from graspseg.segment.backends.hf_testing import sam_config, save_checkpoint

            self._ckpt = save_checkpoint("SamModel", sam_config(), self.new_dir("sam_ckpt") / "sam")
        return self._ckpt

    def broken_checkpoint(self, name: str, mutate: Callable[[Path], None]) -> Path:
        d = self.new_dir(name) / "ckpt"
        shutil.copytree(self.checkpoint, d)
        mutate(d)
        return d


# ==================================================================================================
# core: Transform.from_dict
# ==================================================================================================
def _eye(t=(0.0, 0.0, 0.0)):
    m = np.eye(4)
    m[:3, 3] = t
    return m.tolist()


def _transform(d, to="tcp", frm="camera_color_optical"):
    def run(ctx):
        from graspseg.core.transform import Transform

        return Transform.from_dict(d, to_frame=to, from_frame=frm)

    return run


def _nan_matrix():
    m = _eye()
    m[0][3] = float("nan")
    return m


def _scaled():
    m = np.eye(4)
    m[:3, :3] *= 1.5
    return m.tolist()


TRANSFORM_CASES = [
    Case("transform-quat-3-numbers", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": [0, 0, 1]}),
         "ShapeError", r"quat_xyzw has shape \(3,\), expected 4"),
    Case("transform-quat-5-numbers", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": [0, 0, 0, 1, 0]}),
         "ShapeError", r"quat_xyzw has shape \(5,\), expected 4"),
    Case("transform-quat-empty", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": []}),
         "ShapeError", r"quat_xyzw has shape \(0,\)"),
    Case("transform-quat-string", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": "0 0 0 1"}),
         "ConfigError", r"quat_xyzw is '0 0 0 1' \(str\); expected a list of 4 numbers in a unit quaternion"),
    Case("transform-quat-null", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": None}),
         "ConfigError", r"quat_xyzw is None"),
    Case("transform-quat-nan", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": [0, 0, 0, float("nan")]}),
         "UnitsError", r"quat_xyzw contains NaN"),
    Case("transform-quat-norm-2", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": [0, 0, 0, 2]}),
         "UnitsError", r"has norm 2.0000; a rotation quaternion has norm 1"),
    Case("transform-quat-zero", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": [0, 0, 0, 0]}),
         "UnitsError", r"has norm 0.0000"),
    Case("transform-quat-strings-inside", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": ["0", "0", "0", "1"]}),
         "ConfigError", r"quat_xyzw .*non-numeric|quat_xyzw .*dtype"),
    Case("transform-quat-bools", _transform({"xyz_m": [0, 0, 0.05], "quat_xyzw": [False, False, False, True]}),
         "ConfigError", r"quat_xyzw .*dtype bool"),
    Case("transform-quat-wxyz-only", _transform({"xyz_m": [0, 0, 0.05], "quat_wxyz": [1, 0, 0, 0]}),
         "UnitsError", r"'quat_wxyz' is w-first"),
    Case("transform-xyz-2-numbers", _transform({"xyz_m": [0, 0.05], "quat_xyzw": [0, 0, 0, 1]}),
         "ShapeError", r"xyz_m has shape \(2,\), expected 3"),
    Case("transform-xyz-string", _transform({"xyz_m": "0 0 0.05", "quat_xyzw": [0, 0, 0, 1]}),
         "ConfigError", r"xyz_m is '0 0 0.05' \(str\)"),
    Case("transform-xyz-inf", _transform({"xyz_m": [0, 0, float("inf")], "quat_xyzw": [0, 0, 0, 1]}),
         "UnitsError", r"xyz_m contains NaN or inf"),
    Case("transform-xyz-nested", _transform({"xyz_m": [[0, 0, 0.05]], "quat_xyzw": [0, 0, 0, 1]}),
         "ShapeError", r"xyz_m has shape \(1, 3\), expected 3"),
    Case("transform-xyz-mapping", _transform({"xyz_m": {"x": 0, "y": 0, "z": 0.05}, "quat_xyzw": [0, 0, 0, 1]}),
         "ConfigError", r"xyz_m is \{.*\(dict\)"),
    Case("transform-tcp-from-camera-mm", _transform({"xyz_m": [0, 32.5, 45], "quat_xyzw": [0, 0, 0, 1]}),
         "UnitsError", r"55.509 m long, more than the plausible 0.5 m — millimetres\?.*\[0.0, 0.0325, 0.045\] m"),
    Case("transform-tcp-from-camera-cm", _transform({"xyz_m": [0, 3.25, 4.5], "quat_xyzw": [0, 0, 0, 1]}),
         "UnitsError", r"millimetres\?.*as centimetres it would be \[0.0, 0.0325, 0.045\] m"),
    Case("transform-tcp-from-camera-mm-matrix", _transform({"matrix": _eye((0, 32.5, 45))}),
         "UnitsError", r"tcp_from_camera_color_optical translation .* millimetres\?"),
    Case("transform-base-from-tcp-cm", _transform({"xyz_m": [45, 0, 30], "quat_xyzw": [0, 0, 0, 1]}, "base", "tcp"),
         "UnitsError", r"base_from_tcp translation \[45.0, 0.0, 30.0\] is 54.083 m long, more than the plausible 3 m"),
    Case("transform-base-from-tcp-mm", _transform({"matrix": _eye((450, 0, 300))}, "base", "tcp"),
         "UnitsError", r"base_from_tcp translation .*(millimetres|exceeds 100 m)"),
    Case("transform-bad-override", _transform({**GOOD_TCP, "max_translation_m": "lots"}),
         "ConfigError", r"max_translation_m is 'lots'"),
    Case("transform-bad-allow-flag", _transform({**GOOD_TCP, "allow_implausible": "yes"}),
         "ConfigError", r"allow_implausible is 'yes'; expected true or false"),
    Case("transform-matrix-string", _transform({"matrix": "[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]"}),
         "ConfigError", r"matrix is '\[\[1,0,0,0\].*\(str\); expected a 4x4 list of numbers"),
    Case("transform-matrix-null", _transform({"matrix": None}), "ConfigError", r"matrix is None"),
    Case("transform-matrix-3x3", _transform({"matrix": np.eye(3).tolist()}),
         "ShapeError", r"matrix has shape \(3, 3\), expected 4x4"),
    Case("transform-matrix-flat-16", _transform({"matrix": np.eye(4).ravel().tolist()}),
         "ShapeError", r"matrix has shape \(16,\), expected 4x4"),
    Case("transform-matrix-ragged", _transform({"matrix": [[1, 0, 0, 0], [0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}),
         "ConfigError", r"matrix is .*ragged or non-numeric"),
    Case("transform-matrix-nan", _transform({"matrix": _nan_matrix()}), "UnitsError", r"matrix contains NaN or inf"),
    Case("transform-matrix-scaled", _transform({"matrix": _scaled()}), "UnitsError", r"is not a rigid transform"),
    Case("transform-matrix-last-row", _transform({"matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]}),
         "UnitsError", r"last row is \[0.0, 0.0, 1.0, 1.0\], expected \[0, 0, 0, 1\]"),
    Case("transform-matrix-string-entry", _transform({"matrix": [[1, 0, 0, "x"], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}),
         "ConfigError", r"matrix is .*(non-numeric|dtype)"),
    Case("transform-no-keys", _transform({"translation": [0, 0, 0]}), "UnitsError", r"needs 'matrix' \(4x4\) or 'xyz_m'"),
    Case("transform-not-mapping-list", _transform([0, 0, 0, 0, 0, 0, 1]), "UnitsError", r"must be a mapping.*got list"),
    Case("transform-not-mapping-string", _transform("identity"), "UnitsError", r"must be a mapping.*got str"),
    Case("transform-wrong-frames", _transform({**GOOD_TCP, "to_frame": "world", "from_frame": "camera_color_optical"}),
         "ConfigError", r"to_frame is 'world' but 'tcp' is expected here"),
    Case("transform-frame-not-string", _transform({**GOOD_TCP, "to_frame": 5}, None, "camera_color_optical"),
         "ConfigError", r"to_frame/from_frame must be frame names \(strings\), got 5"),
]


# ==================================================================================================
# core: CameraIntrinsics.from_dict / from_json
# ==================================================================================================
def _intr(**over):
    drop = [k for k, v in over.items() if v is _DROP]
    d = {**GOOD_INTR, **{k: v for k, v in over.items() if v is not _DROP}}
    for k in drop:
        d.pop(k)

    def run(ctx):
        from graspseg.core.camera import CameraIntrinsics

        return CameraIntrinsics.from_dict(d, source="camera.json")

    return run


_DROP = object()

INTRINSICS_CASES = [
    Case("intrinsics-fx-1.93", _intr(fx=1.93, fy=1.93), "UnitsError",
         r"fx = 1.93 px is implausible for a 640 px image: it gives a 179.3 deg field of view"),
    Case("intrinsics-fx-metres", _intr(fx=0.0019, fy=0.0019), "UnitsError", r"fx = 0.0019 px is implausible"),
    Case("intrinsics-fx-huge", _intr(fx=1e6, fy=1e6), "UnitsError", r"fx = 1e\+06 px is implausible.*0.0 deg"),
    Case("intrinsics-fy-only-small", _intr(fy=20.0), "UnitsError", r"fy = 20 px is implausible for a 480 px image"),
    Case("intrinsics-aspect", _intr(fx=900.0, fy=300.0), "UnitsError", r"differ by a factor 3.00"),
    Case("intrinsics-cx-outside", _intr(cx=3200.0), "UnitsError", r"principal point \(cx, cy\) = \(3200, 239.5\) px lies outside"),
    Case("intrinsics-cy-negative", _intr(cy=-10.0), "UnitsError", r"principal point .* lies outside the 640x480 image"),
    Case("intrinsics-fx-string", _intr(fx="615"), "ConfigError", r"fx is '615' \(str\); expected a number in pixels"),
    Case("intrinsics-fx-null", _intr(fx=None), "ConfigError", r"fx is None \(NoneType\); expected a number in pixels"),
    Case("intrinsics-fx-bool", _intr(fx=True), "ConfigError", r"fx is True \(bool\)"),
    Case("intrinsics-fx-list", _intr(fx=[615.0]), "ConfigError", r"fx is \[615.0\] \(list\)"),
    Case("intrinsics-fx-nan", _intr(fx=float("nan")), "UnitsError", r"fx is nan; expected a finite number in pixels"),
    Case("intrinsics-fx-zero", _intr(fx=0.0), "UnitsError", r"focal lengths must be positive pixels"),
    Case("intrinsics-fx-negative", _intr(fx=-615.0), "UnitsError", r"focal lengths must be positive pixels"),
    Case("intrinsics-width-string", _intr(width="640"), "ConfigError", r"width is '640'; expected a whole number of pixels"),
    Case("intrinsics-width-fraction", _intr(width=640.5), "ConfigError", r"width is 640.5; expected a whole number"),
    Case("intrinsics-width-zero", _intr(width=0), "UnitsError", r"image size must be positive pixels, got 0x480"),
    Case("intrinsics-height-null", _intr(height=None), "ConfigError", r"height is None; expected a whole number"),
    Case("intrinsics-missing-fy", _intr(fy=_DROP), "ConfigError", r"missing field 'fy'"),
    Case("intrinsics-missing-size", _intr(width=_DROP, height=_DROP), "ConfigError", r"missing field 'width', 'height'"),
    Case("intrinsics-distortion-string", _intr(distortion_k1_k2_p1_p2_k3="0 0 0 0 0"), "ConfigError",
         r"distortion_k1_k2_p1_p2_k3 is '0 0 0 0 0' \(str\)"),
    Case("intrinsics-distortion-nan", _intr(distortion_k1_k2_p1_p2_k3=[0, float("nan"), 0, 0, 0]), "UnitsError",
         r"distortion_k1_k2_p1_p2_k3 contains NaN"),
    Case("intrinsics-distortion-2d", _intr(distortion_k1_k2_p1_p2_k3=[[0, 0, 0, 0, 0]]), "ShapeError",
         r"distortion_k1_k2_p1_p2_k3 has shape \(1, 5\)"),
    Case("intrinsics-distortion-20", _intr(distortion_k1_k2_p1_p2_k3=[0.0] * 20), "ShapeError",
         r"distortion has 20 coefficients; OpenCV models have at most 14"),
    Case("intrinsics-K-2x2", _intr(fx=_DROP, fy=_DROP, cx=_DROP, cy=_DROP, K=[[1, 0], [0, 1]]), "ShapeError",
         r"K has shape \(2, 2\), expected 3x3"),
    Case("intrinsics-K-string", _intr(fx=_DROP, fy=_DROP, cx=_DROP, cy=_DROP, K="eye(3)"), "ConfigError",
         r"K is 'eye\(3\)' \(str\)"),
    Case("intrinsics-bad-allow-flag", _intr(fx=1.93, fy=1.93, allow_implausible=1), "ConfigError",
         r"allow_implausible is 1; expected true or false"),
]


def _intr_not_mapping(ctx):
    from graspseg.core.camera import CameraIntrinsics

    return CameraIntrinsics.from_dict([640, 480, 615, 615, 320, 240], source="camera.json")


def _intr_json(content: bytes | None, directory: bool = False):
    def run(ctx):
        from graspseg.core.camera import CameraIntrinsics

        d = ctx.new_dir("intr_json")
        p = d / "intrinsics.json"
        if directory:
            p.mkdir()
        elif content is not None:
            p.write_bytes(content)
        return CameraIntrinsics.from_json(p)

    return run


INTRINSICS_CASES += [
    Case("intrinsics-not-mapping", _intr_not_mapping, "ConfigError", r"expected a mapping of intrinsics, got list"),
    Case("intrinsics-json-missing", _intr_json(None), "ConfigError", r"intrinsics file .* does not exist"),
    Case("intrinsics-json-directory", _intr_json(None, directory=True), "ConfigError", r"is a directory"),
    Case("intrinsics-json-binary", _intr_json(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01"), "ConfigError",
         r"not a text file \(binary or not UTF-8\)"),
    Case("intrinsics-json-malformed", _intr_json(b'{"width": 640,'), "ConfigError", r"is not valid JSON"),
    Case("intrinsics-json-empty", _intr_json(b""), "ConfigError", r"is not valid JSON"),
]


# ==================================================================================================
# core: CameraRig.from_dict / load_yaml
# ==================================================================================================
def _rig_dict(**over):
    d = {"schema_version": 1, "name": "d405", "intrinsics": dict(GOOD_INTR), "depth_scale": 1e-4,
         "depth_range_m": [0.07, 2.0], "tcp_from_camera": dict(GOOD_TCP)}
    for k, v in over.items():
        if v is _DROP:
            d.pop(k)
        else:
            d[k] = v
    return d


def _rig(**over):
    d = _rig_dict(**over)

    def run(ctx):
        from graspseg.core.camera import CameraRig

        return CameraRig.from_dict(d, source="rig.yaml")

    return run


RIG_CASES = [
    Case("rig-depth-scale-null", _rig(depth_scale=None), "ConfigError",
         r"depth_scale is None \(NoneType\); expected a number in metres per raw depth unit; D405: 0.0001"),
    Case("rig-depth-scale-string", _rig(depth_scale="0.001"), "ConfigError", r"depth_scale is '0.001' \(str\)"),
    Case("rig-depth-scale-zero", _rig(depth_scale=0), "UnitsError", r"depth_scale must be a positive number.*got 0"),
    Case("rig-depth-scale-negative", _rig(depth_scale=-1e-3), "UnitsError", r"depth_scale must be a positive number"),
    Case("rig-depth-scale-nan", _rig(depth_scale=float("nan")), "UnitsError", r"depth_scale is nan; expected a finite"),
    Case("rig-depth-scale-10", _rig(depth_scale=10), "UnitsError", r"depth_scale 10.0 m per unit is implausible"),
    Case("rig-depth-scale-list", _rig(depth_scale=[1e-3]), "ConfigError", r"depth_scale is \[0.001\] \(list\)"),
    Case("rig-missing-depth-scale", _rig(depth_scale=_DROP), "ConfigError", r"missing field\(s\) \['depth_scale'\]"),
    Case("rig-missing-intrinsics", _rig(intrinsics=_DROP), "ConfigError", r"missing field\(s\) \['intrinsics'\]"),
    Case("rig-tcp-mm", _rig(tcp_from_camera={"xyz_m": [0, 32.5, 45], "quat_xyzw": [0, 0, 0, 1]}), "UnitsError",
         r"rig.yaml: rig 'd405': tcp_from_camera_color_optical translation \[0.0, 32.5, 45.0\].*millimetres\?.*"
         r"max_tcp_from_camera_m"),
    Case("rig-tcp-quat-3", _rig(tcp_from_camera={"xyz_m": [0, 0.03, 0.04], "quat_xyzw": [0, 0, 1]}), "ShapeError",
         r"rig.yaml: tcp_from_camera: tcp_from_camera_color_optical quat_xyzw has shape \(3,\)"),
    Case("rig-tcp-matrix-string", _rig(tcp_from_camera={"matrix": "eye(4)"}), "ConfigError",
         r"tcp_from_camera_color_optical matrix is 'eye\(4\)' \(str\)"),
    Case("rig-tcp-not-mapping", _rig(tcp_from_camera=[0, 0.03, 0.04]), "UnitsError", r"must be a mapping.*got list"),
    Case("rig-tcp-wrong-frames", _rig(tcp_from_camera={**GOOD_TCP, "to_frame": "base", "from_frame": "tcp"}),
         "ConfigError", r"to_frame is 'base' but 'tcp' is expected"),
    Case("rig-depth-range-reversed", _rig(depth_range_m=[2.0, 0.07]), "UnitsError", r"depth_range_m must be 0 <= near < far"),
    Case("rig-depth-range-one", _rig(depth_range_m=[0.07]), "ShapeError", r"depth_range_m has shape \(1,\), expected 2"),
    Case("rig-depth-range-string", _rig(depth_range_m="0.07-2"), "ConfigError", r"depth_range_m is '0.07-2' \(str\)"),
    Case("rig-depth-range-mm", _rig(depth_range_m=[70, 2000]), "UnitsError", r"far limit 2000.0 m is implausible"),
    Case("rig-schema-2", _rig(schema_version=2), "ConfigError", r"schema_version 2 is not supported"),
    Case("rig-units-mm", _rig(units={"length": "mm"}), "UnitsError", r"units.length is 'mm'; rig files are in metres"),
    Case("rig-extra-list", _rig(extra=[1, 2]), "ConfigError", r"extra is list; expected a mapping"),
    Case("rig-name-mapping", _rig(name={"serial": 1}), "ConfigError", r"name is \{'serial': 1\}; expected a string"),
    Case("rig-unknown-field", _rig(tcp_from_cam=GOOD_TCP), "ConfigError", r"unknown field\(s\) \['tcp_from_cam'\]"),
    Case("rig-bound-string", _rig(max_tcp_from_camera_m="far"), "ConfigError", r"max_tcp_from_camera_m is 'far'"),
    Case("rig-bound-negative", _rig(max_tcp_from_camera_m=-1), "UnitsError", r"max_tcp_from_camera_m must be > 0 m"),
    Case("rig-allow-flag-string", _rig(allow_implausible="true"), "ConfigError", r"allow_implausible is 'true'; expected true or false"),
    Case("rig-intrinsics-fx-1.93", _rig(intrinsics={**GOOD_INTR, "fx": 1.93, "fy": 1.93}), "UnitsError",
         r"rig 'd405' intrinsics: fx = 1.93 px is implausible.*allow_implausible: true"),
    Case("rig-intrinsics-null-fx", _rig(intrinsics={**GOOD_INTR, "fx": None}), "ConfigError",
         r"rig.yaml: intrinsics: fx is None"),
    Case("rig-intrinsics-string", _rig(intrinsics="d405"), "ConfigError", r"expected a mapping of intrinsics, got str"),
]


def _rig_not_mapping(ctx):
    from graspseg.core.camera import CameraRig

    return CameraRig.from_dict(["intrinsics"], source="rig.yaml")


def _rig_file(content: bytes | None, directory: bool = False):
    def run(ctx):
        from graspseg.core.camera import CameraRig

        p = ctx.new_dir("rig_file") / "rig.yaml"
        if directory:
            p.mkdir()
        elif content is not None:
            p.write_bytes(content)
        return CameraRig.load_yaml(p)

    return run


RIG_CASES += [
    Case("rig-not-mapping", _rig_not_mapping, "ConfigError", r"a rig file must be a mapping, got list"),
    Case("rig-file-missing", _rig_file(None), "ConfigError", r"rig file .* does not exist"),
    Case("rig-file-directory", _rig_file(None, directory=True), "ConfigError", r"rig file .* is a directory"),
    Case("rig-file-binary", _rig_file(bytes(range(256))), "ConfigError", r"not a text file"),
    Case("rig-file-bad-yaml", _rig_file(b"intrinsics: [1, 2\n"), "ConfigError", r"is not valid YAML"),
    Case("rig-file-empty", _rig_file(b""), "ConfigError", r"a rig file must be a mapping, got NoneType"),
]


# ==================================================================================================
# core: RGBDFrame arrays
# ==================================================================================================
def _frame_arrays(color=None, depth=None, **kw):
    def run(ctx):
        from graspseg.core.camera import CameraIntrinsics
        from graspseg.core.frame import RGBDFrame

        c = np.zeros((48, 64, 3), np.uint8) if color is None else color
        z = np.full((48, 64), 0.5, np.float32) if depth is None else depth
        return RGBDFrame(c, z, kw.pop("intrinsics", CameraIntrinsics(64, 48, 60.0, 60.0, 31.5, 23.5)), **kw)

    return run


def _rig_object(**kw):
    def run(ctx):
        from graspseg.core.camera import CameraIntrinsics, CameraRig

        return CameraRig(kw.pop("intrinsics", CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5)), **kw)

    return run


_Z = np.full((48, 64), 0.5, np.float32)
FRAME_CASES = [
    Case("frame-depth-complex", _frame_arrays(depth=_Z.astype(np.complex64) + 1j), "UnitsError",
         r"depth_m has dtype complex64; depth is a real distance"),
    Case("frame-depth-bool", _frame_arrays(depth=_Z > 0), "UnitsError", r"depth_m has dtype bool"),
    Case("frame-depth-object", _frame_arrays(depth=_Z.astype(object)), "UnitsError", r"depth_m has dtype object"),
    Case("frame-depth-uint16", _frame_arrays(depth=(_Z * 1000).astype(np.uint16)), "UnitsError",
         r"integer dtype uint16: raw depth units must be converted to metres"),
    Case("frame-depth-nan", _frame_arrays(depth=np.where(_Z > 0, np.nan, 0).astype(np.float32)), "UnitsError",
         r"NaN/inf values; encode missing readings as 0"),
    Case("frame-depth-negative", _frame_arrays(depth=-_Z), "UnitsError", r"negative values"),
    Case("frame-depth-mm", _frame_arrays(depth=_Z * 1000), "UnitsError", r"depth reaches 500.0 m.*millimetres"),
    Case("frame-depth-3-channels", _frame_arrays(depth=np.stack([_Z] * 3, axis=2)), "ShapeError",
         r"depth must be an \(H, W\) image, got shape \(48, 64, 3\)"),
    Case("frame-depth-size", _frame_arrays(depth=_Z[:40]), "ShapeError", r"color is 64x48 but depth is 64x40"),
    Case("frame-color-5-channels", _frame_arrays(color=np.zeros((48, 64, 5), np.uint8)), "ShapeError",
         r"color must be an \(H, W, 3\) RGB image"),
    Case("frame-color-nan", _frame_arrays(color=np.full((48, 64, 3), np.nan, np.float32)), "UnitsError",
         r"color contains NaN or inf"),
    Case("frame-color-complex", _frame_arrays(color=np.zeros((48, 64, 3), np.complex64)), "ShapeError",
         r"color has dtype complex64"),
    Case("frame-intrinsics-dict", _frame_arrays(intrinsics=dict(GOOD_INTR)), "ConfigError",
         r"intrinsics must be a CameraIntrinsics, got dict"),
    Case("frame-timestamp-string", _frame_arrays(timestamp_s="now"), "ConfigError",
         r"timestamp_s is 'now' \(str\); expected a number in seconds"),
    Case("frame-pose-array", _frame_arrays(base_from_tcp=np.eye(4)), "ConfigError",
         r"base_from_tcp must be a Transform or None, got ndarray"),
    Case("frame-meta-list", _frame_arrays(meta=[1]), "ConfigError", r"meta must be a dict, got list"),
    Case("frame-color-ragged", _frame_arrays(color=[[1, 2], [3]]), "ShapeError", r"color and depth_m must be arrays"),
    Case("rig-object-intrinsics-dict", _rig_object(intrinsics=dict(GOOD_INTR)), "ConfigError",
         r"rig intrinsics must be a CameraIntrinsics, got dict"),
    Case("rig-object-transform-array", _rig_object(tcp_from_camera=np.eye(4)), "ConfigError",
         r"rig tcp_from_camera must be a Transform or None, got ndarray"),
    Case("rig-object-depth-scale-none", _rig_object(depth_scale=None), "ConfigError", r"depth scale is None"),
    Case("frame-color-strings", _frame_arrays(color=np.full((48, 64, 3), "a")), "ShapeError", r"color has dtype <U1"),
]


# ==================================================================================================
# core: config overrides and the segmenter registry
# ==================================================================================================
def _override(items):
    def run(ctx):
        from graspseg.pipeline import PipelineConfig

        return PipelineConfig().with_overrides(items)

    return run


def _config_file(text: bytes | None, directory: bool = False):
    def run(ctx):
        from graspseg.pipeline import PipelineConfig

        p = ctx.new_dir("config") / "pipeline.yaml"
        if directory:
            p.mkdir()
        elif text is not None:
            p.write_bytes(text)
        return PipelineConfig.from_yaml(p)

    return run


CONFIG_CASES = [
    Case("config-override-bad-yaml", _override(["grasp.friction_coefficient=[0.4,"]), "ConfigError",
         r"the value is not valid YAML"),
    Case("config-override-nan", _override(["grasp.friction_coefficient=.nan"]), "ConfigError",
         r"grasp.friction_coefficient: got NaN"),
    Case("config-override-no-equals", _override(["grasp.friction_coefficient"]), "ConfigError",
         r"must look like section.field=value"),
    Case("config-override-empty-part", _override({"grasp..friction_coefficient": 0.4}), "ConfigError",
         r"must look like section.field"),
    Case("config-override-unknown", _override(["grasp.friction=0.4"]), "ConfigError", r"unknown option 'friction'"),
    Case("config-override-string-for-float", _override(["grasp.friction_coefficient=high"]), "ConfigError",
         r"expected float, got 'high'"),
    Case("config-file-directory", _config_file(None, directory=True), "ConfigError", r"config file .* is a directory"),
    Case("config-file-binary", _config_file(b"\xff\xfe\x00garbage\x80"), "ConfigError", r"not a text file"),
    Case("config-file-int-keys", _config_file(b"1: 2\nsegment: {}\n"), "ConfigError", r"unknown option\(s\) \['1'\]"),
    Case("config-file-list", _config_file(b"- 1\n- 2\n"), "ConfigError", r"expected a mapping, got list"),
]


def _segmenter(name, **options):
    def run(ctx):
        from graspseg.segment import create_segmenter

        return create_segmenter(name, **options)

    return run


def _ckpt(mutate):
    def run(ctx):
        from graspseg.segment import create_segmenter

        return create_segmenter("sam", model=str(ctx.broken_checkpoint("ckpt", mutate)), device="cpu")

    return run


def _truncate(d: Path, keep: float = 0.5):
    p = d / "model.safetensors"
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * keep)])


def _header_only(d: Path):
    p = d / "model.safetensors"
    data = p.read_bytes()
    n = int.from_bytes(data[:8], "little")
    p.write_bytes(data[: 8 + n])


def _shard(d: Path):
    (d / "model.safetensors").rename(d / "model-00001-of-00002.safetensors")
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))


SEGMENT_CASES = [
    Case("segmenter-sam2-without-model", _segmenter("sam2"), "ConfigError",
         r"segmenter 'sam2' needs option\(s\) \['model'\] \(on the command line: --model"),
    Case("segmenter-sam-without-model", _segmenter("sam", device="cpu"), "ConfigError",
         r"segmenter 'sam' needs option\(s\) \['model'\]"),
    Case("segmenter-grounded-without-detector", _segmenter("grounded"), "ConfigError",
         r"segmenter 'grounded' needs option\(s\) \['detector'\] \(on the command line: --detector"),
    Case("segmenter-grounded-unknown-option", _segmenter("grounded", detector="x", colour="red"), "ConfigError",
         r"segmenter 'grounded' has no option\(s\) \['colour'\]"),
    Case("segmenter-unknown-name", _segmenter("sam9"), "BackendNotFoundError", r"no segmenter named 'sam9'; available"),
    Case("segmenter-sam-model-none", _segmenter("sam", model=None), "ConfigError",
         r"sam: the checkpoint is None; pass a checkpoint directory .*--model DIR"),
    Case("segmenter-sam2-model-number", _segmenter("sam2", model=5), "ConfigError", r"sam2: the checkpoint is 5"),
    Case("segmenter-sam-model-missing-dir", _segmenter("sam", model="/nonexistent/sam-vit-b"), "ConfigError",
         r"checkpoint directory '/nonexistent/sam-vit-b' does not exist"),
    Case("segmenter-sam-mask-threshold-string", _segmenter("sam", model="x", mask_threshold="high"), "ConfigError",
         r"sam: option mask_threshold is 'high'; expected a number"),
    Case("segmenter-sam-prompt-logit-zero", _segmenter("sam", model="x", mask_prompt_logit=0), "ConfigError",
         r"option mask_prompt_logit = 0 is out of range; expected a number > 0"),
    Case("segmenter-sam-compile-string", _segmenter("sam", model="x", compile="yes"), "ConfigError",
         r"sam: option compile is 'yes'; expected true or false"),
    Case("segmenter-sam-automask-list", _segmenter("sam", model="x", automask=[32]), "ConfigError",
         r"option automask is \[32\]; expected a mapping"),
    Case("segmenter-sam-unknown-option", _segmenter("sam", model="x", colour="red"), "ConfigError",
         r"segmenter 'sam' has no option\(s\) \['colour'\]; it takes: model, backend='sam', device='auto'"),
    Case("segmenter-sam3-unknown-option", _segmenter("sam3", model="x", box_threshold=0.3), "ConfigError",
         r"segmenter 'sam3' has no option\(s\) \['box_threshold'\]"),
    Case("segmenter-sam3-max-instances-fraction", _segmenter("sam3", model="x", max_instances=2.5), "ConfigError",
         r"sam3: option max_instances is 2.5; expected an integer"),
    Case("segmenter-sam3-score-null", _segmenter("sam3", model="x", score_threshold=None), "ConfigError",
         r"sam3: option score_threshold is None"),
    Case("segmenter-sam3-mask-threshold-1", _segmenter("sam3", model="x", mask_threshold=1.0), "ConfigError",
         r"mask_threshold is a probability in \(0, 1\)"),
    Case("segmenter-grounded-max-instances-string", _segmenter("grounded", detector="x", max_instances="3"),
         "ConfigError", r"grounded: option max_instances is '3'; expected an integer >= 1"),
    Case("segmenter-grounded-max-instances-0", _segmenter("grounded", detector="x", max_instances=0),
         "ConfigError", r"option max_instances = 0 is out of range"),
    Case("segmenter-grounded-detector-unknown-option", _segmenter("grounded", detector="x",
                                                                  detector_options={"foo": 1}),
         "ConfigError", r"grounded detector has no option\(s\) \['foo'\]; it takes: model"),
    Case("segmenter-grounded-box-threshold-2", _segmenter("grounded", detector="x",
                                                          detector_options={"box_threshold": 2}),
         "ConfigError", r"option box_threshold = 2 is out of range; expected a number >= 0 and <= 1"),
    Case("segmenter-grounded-detector-none", _segmenter("grounded", detector=None), "ConfigError",
         r"detector must be a checkpoint path"),
    Case("segmenter-grounded-segmenter-options-list", _segmenter("grounded", detector="x", segmenter_options=[1]),
         "ConfigError", r"option segmenter_options is \[1\]; expected a mapping"),
    Case("segmenter-rgbd-unknown-option", _segmenter("rgbd", colour="red"), "ConfigError",
         r"unknown rgbd segmenter option\(s\) \['colour'\]"),
    Case("checkpoint-truncated-half", _ckpt(_truncate), "ConfigError",
         r"model.safetensors' is truncated: its tensors need \d+ bytes of data but only \d+ follow"),
    Case("checkpoint-truncated-header", _ckpt(lambda d: _truncate(d, 0.0001)), "ConfigError",
         r"declares a \d+-byte header but the file has \d+ bytes|too short for a safetensors file|no readable"),
    Case("checkpoint-header-only", _ckpt(_header_only), "ConfigError", r"is truncated: its tensors need"),
    Case("checkpoint-empty-weights", _ckpt(lambda d: (d / "model.safetensors").write_bytes(b"")), "ConfigError",
         r"is 0 bytes, too short for a safetensors file"),
    Case("checkpoint-garbage-weights", _ckpt(lambda d: (d / "model.safetensors").write_bytes(b"\x10" * 64)), "ConfigError",
         r"declares a \d+-byte header but the file has 64 bytes"),
    Case("checkpoint-json-as-weights", _ckpt(lambda d: (d / "model.safetensors").write_bytes(
        (20).to_bytes(8, "little") + b"not json at all!!!!!" + b"\0" * 8)), "ConfigError",
         r"no readable safetensors header"),
    Case("checkpoint-missing-shard", _ckpt(_shard), "ConfigError", r"lacks the shard model-00002-of-00002.safetensors"),
    Case("checkpoint-config-not-json", _ckpt(lambda d: (d / "config.json").write_text("{model_type: sam")), "ConfigError",
         r"cannot read .*config.json"),
]


# ==================================================================================================
# capture: frame folders, camera.json, depth files, masks
# ==================================================================================================
def _folder(**kw):
    def run(ctx):
        from graspseg.capture import load_frame_folder

        return load_frame_folder(ctx.frame("frame", **kw))

    return run


def _png16_rgb():
    return np.full((480, 640, 3), 1000, np.uint16)


def _depth_npy(arr):
    return _folder(files={"depth.png": None, "depth.npy": arr})


_D = np.full((480, 640), 5000, np.uint16)  # 0.5 m at the sample frame's 1e-4 m per unit


def _npy_bytes(arr, keep: float) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    b = buf.getvalue()
    return b[: int(len(b) * keep)]


def _objects(entries):
    return _folder(files={"objects.json": json.dumps(entries)})


def _ground_truth(**kw):
    def run(ctx):
        from graspseg.capture import load_ground_truth

        return load_ground_truth(ctx.frame("gt", **kw), (480, 640))

    return run


def _frame_files(depth_scale, intrinsics=None):
    def run(ctx):
        from graspseg.capture import frame_from_files

        return frame_from_files(SAMPLE_FRAME / "color.png", SAMPLE_FRAME / "depth.png", depth_scale=depth_scale,
                                intrinsics=intrinsics or (SAMPLE_FRAME / "camera.json"))

    return run


CAPTURE_CASES = [
    Case("camera.json-depth-scale-null", _folder(camera={"depth_scale": None}), "ConfigError",
         r"camera.json: depth_scale is None \(NoneType\); expected a number in metres per raw depth unit"),
    Case("camera.json-depth-scale-string", _folder(camera={"depth_scale": "0.0001"}), "ConfigError",
         r"depth_scale is '0.0001' \(str\)"),
    Case("camera.json-depth-scale-zero", _folder(camera={"depth_scale": 0}), "UnitsError",
         r"depth_scale must be a positive number of metres per raw unit"),
    Case("camera.json-depth-scale-huge", _folder(camera={"depth_scale": 1000}), "UnitsError",
         r"depth_scale 1000.0 m per unit is implausible"),
    Case("camera.json-depth-scale-mm-file", _folder(camera={"depth_scale": 1}), "UnitsError",
         r"reaches \d+\.\d m at depth_scale 1 m per unit.*millimetres stored"),
    Case("camera.json-depth-scale-missing", _folder(drop=("depth_scale",)), "ConfigError", r"missing 'depth_scale'"),
    Case("camera.json-fx-1.93", _folder(camera={"fx": 1.93, "fy": 1.93}), "UnitsError",
         r"camera.json: fx = 1.93 px is implausible for a 640 px image.*allow_implausible"),
    Case("camera.json-fx-null", _folder(camera={"fx": None}), "ConfigError", r"camera.json: fx is None"),
    Case("camera.json-fx-string", _folder(camera={"fx": "616.4"}), "ConfigError", r"fx is '616.4' \(str\)"),
    Case("camera.json-width-string", _folder(camera={"width": "640"}), "ConfigError", r"width is '640'"),
    Case("camera.json-cx-outside", _folder(camera={"cx": 6400.0}), "UnitsError", r"principal point .* lies outside"),
    Case("camera.json-size-other-resolution", _folder(camera={"width": 1280, "height": 720}), "ShapeError",
         r"frame is 640x480 but the intrinsics are for 1280x720"),
    Case("camera.json-missing-fx", _folder(drop=("fx",)), "ConfigError", r"missing field 'fx'"),
    Case("camera.json-timestamp-string", _folder(camera={"timestamp_s": "now"}), "ConfigError",
         r"timestamp_s is 'now' \(str\); expected a number in seconds"),
    Case("camera.json-pose-mm", _folder(camera={"base_from_tcp": {"xyz_m": [450, 0, 300], "quat_xyzw": [0, 0, 0, 1]}}),
         "UnitsError", r"base_from_tcp translation \[450.0, 0.0, 300.0\].*millimetres\?"),
    Case("camera.json-pose-cm", _folder(camera={"base_from_tcp": {"xyz_m": [45, 0, 30], "quat_xyzw": [0, 0, 0, 1]}}),
         "UnitsError", r"more than the plausible 3 m — millimetres\?.*as centimetres"),
    Case("camera.json-pose-quat-3", _folder(camera={"base_from_tcp": {"xyz_m": [0.4, 0, 0.3], "quat_xyzw": [0, 0, 1]}}),
         "ShapeError", r"base_from_tcp quat_xyzw has shape \(3,\)"),
    Case("camera.json-pose-string", _folder(camera={"base_from_tcp": "home"}), "UnitsError",
         r"base_from_tcp: a transform must be a mapping"),
    Case("camera.json-list", _folder(camera_text="[640, 480]"), "ConfigError", r"expected a JSON object .* got list"),
    Case("camera.json-empty", _folder(camera_text=""), "ConfigError", r"is not valid JSON"),
    Case("camera.json-binary", _folder(camera_text=b"\x89PNG\r\n\x1a\n\xff\xd8"), "ConfigError", r"not a text file"),
    Case("camera.json-missing", _folder(files={"camera.json": None}), "InputError", r"camera file .* does not exist"),
    Case("color-missing", _folder(files={"color.png": None}), "InputError", r"colour image .* does not exist"),
    Case("color-corrupt", _folder(files={"color.png": b"\x89PNG garbage"}), "InputError", r"not a readable PNG/JPEG"),
    Case("color-16-bit", _folder(files={"color.png": _png16_rgb()}), "InputError", r"has dtype uint16; expected 8-bit RGB"),
    Case("depth-png-8-bit", _folder(files={"depth.png": np.full((480, 640), 50, np.uint8)}), "InputError",
         r"depth image .* is uint8; expected a 16-bit PNG"),
    Case("depth-png-rgb", _folder(files={"depth.png": _png16_rgb()}), "InputError", r"has 3 channels; expected a single-channel"),
    Case("depth-png-corrupt", _folder(files={"depth.png": b"nonsense"}), "InputError", r"not a readable 16-bit PNG"),
    Case("depth-png-size", _folder(files={"depth.png": np.full((240, 320), 5000, np.uint16)}), "InputError",
         r"colour .* is 640x480 but depth .* is 320x240"),
    Case("depth-npy-complex", _depth_npy(_D.astype(np.complex128) + 1j), "InputError",
         r"depth .*depth.npy is complex \(complex128\); depth is a real distance"),
    Case("depth-npy-complex-zero-imag", _depth_npy(_D.astype(np.complex64)), "InputError", r"is complex \(complex64\)"),
    Case("depth-npy-nan", _depth_npy(np.where(_D > 0, np.nan, 0.0)), "UnitsError", r"has 307200 NaN/inf values"),
    Case("depth-npy-inf", _depth_npy(np.full((480, 640), np.inf)), "UnitsError", r"NaN/inf values"),
    Case("depth-npy-negative", _depth_npy(-_D.astype(np.int32)), "UnitsError", r"negative values"),
    Case("depth-npy-bool", _depth_npy(_D > 0), "InputError", r"has dtype bool; expected raw integer units"),
    Case("depth-npy-strings", _depth_npy(np.full((480, 640), "1")), "InputError", r"has dtype <U1"),
    Case("depth-npy-structured", _depth_npy(np.zeros((480, 640), dtype=[("z", "f4"), ("c", "f4")])), "InputError",
         r"has dtype \[\('z'"),
    Case("depth-npy-object", _depth_npy(_D.astype(object)), "InputError", r"cannot read depth .*(pickle|allow_pickle)"),
    Case("depth-npy-3d", _depth_npy(np.stack([_D] * 3, axis=2)), "InputError", r"has shape \(480, 640, 3\); expected"),
    Case("depth-npy-1d", _depth_npy(_D.ravel()), "InputError", r"has shape \(307200,\); expected a non-empty \(H, W\)"),
    Case("depth-npy-empty", _depth_npy(np.zeros((0, 640), np.uint16)), "InputError", r"has shape \(0, 640\)"),
    Case("depth-npy-truncated", _folder(files={"depth.png": None, "depth.npy": _npy_bytes(_D, 0.5)}), "InputError",
         r"cannot read depth .*depth.npy"),
    Case("depth-npy-not-npy", _folder(files={"depth.png": None, "depth.npy": b"depth values\n1 2 3\n"}), "InputError",
         r"cannot read depth .*depth.npy"),
    Case("depth-npy-metres-with-raw-scale", _depth_npy(np.full((480, 640), 0.5, np.float32)), "UnitsError",
         r"reaches only 0.050 mm at depth_scale 0.0001 m per unit.*needs depth_scale 1"),
    Case("frame-files-depth-scale-zero", _frame_files(0.0), "UnitsError", r"depth scale must be a positive number"),
    Case("frame-files-depth-scale-none", _frame_files(None), "ConfigError", r"depth scale is None"),
    Case("frame-files-depth-scale-string", _frame_files("0.001"), "ConfigError", r"depth scale is '0.001'"),
    Case("frame-files-intrinsics-dir", _frame_files(1e-4, SAMPLE_FRAME), "ConfigError",
         r"intrinsics file .* is a directory"),
    Case("objects.json-not-list", _ground_truth(files={"objects.json": json.dumps({"id": 1})}), "ConfigError",
         r"objects.json: expected a JSON list of objects, got dict"),
    Case("objects.json-missing-mask", _ground_truth(files={"objects.json": json.dumps([{"id": 1, "name": "mug"}])}),
         "ConfigError", r"objects.json\[0\]: each object needs 'id' \(int\), 'name' and 'mask'"),
    Case("objects.json-id-string", _ground_truth(files={"objects.json": json.dumps(
        [{"id": "one", "name": "mug", "mask": "masks/1_mug.png"}])}), "ConfigError", r"id is 'one'; expected an integer"),
    Case("objects.json-mask-missing-file", _ground_truth(files={"objects.json": json.dumps(
        [{"id": 1, "name": "mug", "mask": "masks/nope.png"}])}), "InputError", r"mask .*nope.png does not exist"),
    Case("objects.json-pose-3x3", _ground_truth(files={"objects.json": json.dumps(
        [{"id": 1, "name": "mug", "mask": "masks/1_mug.png", "camera_from_object": np.eye(3).tolist()}])}),
         "ShapeError", r"camera_from_object: camera_color_optical_from_object matrix has shape \(3, 3\)"),
    Case("mask-wrong-size", _ground_truth(files={"objects.json": json.dumps(
        [{"id": 1, "name": "mug", "mask": "small.png"}]), "small.png": np.full((10, 10), 255, np.uint8)}),
         "InputError", r"mask .*small.png is 10x10 but the frame is 640x480"),
]


# ==================================================================================================
# graspseg-calibrate: every sub-command
# ==================================================================================================
def _cli(*argv, setup: Callable | None = None):
    """``calibration.cli.main(argv)``; ``{calib}`` / ``{tmp}`` in arguments name the shared folders."""

    def run(ctx):
        from calibration.cli import main

        tmp = ctx.new_dir("cli")
        if setup is not None:
            setup(tmp)
        needs_calib = any("{calib}" in a for a in argv)
        calib = str(ctx.calib) if needs_calib else ""
        args = [a.replace("{calib}", calib).replace("{tmp}", str(tmp)) for a in argv]
        return main(["--quiet", *args])

    return run


def _write(name: str, content):
    def setup(tmp: Path):
        p = tmp / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif isinstance(content, (dict, list)):
            p.write_text(json.dumps(content))
        else:
            p.write_text(content)

    return setup


def _yaml(name: str, d):
    def setup(tmp: Path):
        import yaml

        (tmp / name).write_text(yaml.safe_dump(d))

    return setup


def _a_file(tmp: Path):
    (tmp / "afile").write_text("x")


def _poses_lines(lines):
    return _write("poses.jsonl", "\n".join(lines) + "\n")


_HE = ("hand-eye", "--images", "{calib}", "--intrinsics", "{calib}/intrinsics.json", "--rig-out", "{tmp}/rig.yaml")
_HE_POSES = (*_HE, "--poses", "{calib}/poses.jsonl")
_CHECK = ("check", "--rig", "{calib}/rig.yaml", "--images", "{calib}", "--poses", "{calib}/poses.jsonl",
          "--plots", "{tmp}/plots")
_IMPORT = ("import", "--intrinsics", "{calib}/intrinsics.json", "--rig-out", "{tmp}/rig.yaml")
_STATIC_OK = "0 0.0325 0.045 0 0 0 1 tool0 camera_color_optical_frame"
_RIG_MM = {"schema_version": 1, "intrinsics": GOOD_INTR, "depth_scale": 0.001,
           "tcp_from_camera": {"xyz_m": [0, 32.5, 45], "quat_xyzw": [0, 0, 0, 1]}}
_CALIB_MM = {"parameters": {"calibration_type": "eye_in_hand"},
             "transform": {"translation": {"x": 0, "y": 32.5, "z": 45}, "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}}}

CLI_CASES = [
    # board
    Case("calibrate-board-dpi-0", _cli("board", "--out", "{tmp}/b.png", "--dpi", "0"), "exit2",
         r"argument --dpi: 0 dpi is out of range; expected >= 50 dpi and <= 2400 dpi"),
    Case("calibrate-board-dpi-negative", _cli("board", "--out", "{tmp}/b.png", "--dpi", "-300"), "exit2",
         r"argument --dpi: -300 dpi is out of range"),
    Case("calibrate-board-dpi-nan", _cli("board", "--out", "{tmp}/b.png", "--dpi", "nan"), "exit2",
         r"argument --dpi: 'nan' is not a finite number"),
    Case("calibrate-board-dpi-word", _cli("board", "--out", "{tmp}/b.png", "--dpi", "high"), "exit2",
         r"argument --dpi: 'high' is not a number"),
    Case("calibrate-board-dpi-huge", _cli("board", "--out", "{tmp}/b.png", "--dpi", "1e7"), "exit2",
         r"argument --dpi: 1e7 dpi is out of range"),
    Case("calibrate-board-margin-negative", _cli("board", "--out", "{tmp}/b.png", "--margin-mm", "-5"), "exit2",
         r"argument --margin-mm: -5 mm is out of range; expected >= 0 mm"),
    Case("calibrate-board-square-0", _cli("board", "--out", "{tmp}/b.png", "--square-mm", "0"), "exit2",
         r"argument --square-mm: 0 mm is out of range"),
    Case("calibrate-board-square-metres", _cli("board", "--out", "{tmp}/b.png", "--square-mm", "0.04"), "exit2",
         r"argument --square-mm: 0.04 mm is out of range; expected >= 2 mm"),
    Case("calibrate-board-marker-too-big", _cli("board", "--out", "{tmp}/b.png", "--marker-mm", "45"), "exit2",
         r"marker_length_m=0.045 must be positive and smaller than square_length_m=0.04"),
    Case("calibrate-board-squares-1", _cli("board", "--out", "{tmp}/b.png", "--squares-x", "1"), "exit2",
         r"argument --squares-x: 1 is out of range; expected >= 3"),
    Case("calibrate-board-squares-fraction", _cli("board", "--out", "{tmp}/b.png", "--squares-y", "4.5"), "exit2",
         r"argument --squares-y: '4.5' is not an integer"),
    Case("calibrate-board-dictionary", _cli("board", "--out", "{tmp}/b.png", "--dictionary", "DICT_9X9"), "exit2",
         r"unknown ArUco dictionary 'DICT_9X9'"),
    Case("calibrate-board-out-svg", _cli("board", "--out", "{tmp}/b.svg"), "exit2", r"--out must end in .pdf or .png"),
    Case("calibrate-board-out-dir", _cli("board", "--out", "{tmp}/d.png", setup=lambda t: (t / "d.png").mkdir()),
         "exit2", r"--out .*d.png is a directory"),
    Case("calibrate-board-out-under-file", _cli("board", "--out", "{tmp}/afile/b.png", setup=_a_file), "exit2",
         r"cannot access .*afile.*(Not a directory|File exists)"),
    Case("calibrate-board-json-missing", _cli("board", "--out", "{tmp}/b.png", "--board", "{tmp}/nope.json"), "exit2",
         r"board file .*nope.json does not exist"),
    Case("calibrate-board-json-binary", _cli("board", "--out", "{tmp}/b.png", "--board", "{tmp}/b.json",
                                             setup=_write("b.json", b"\xff\xd8\xff\xe0binary")), "exit2",
         r"board file .* is not a text file"),
    Case("calibrate-board-json-dir", _cli("board", "--out", "{tmp}/b.png", "--board", "{tmp}"), "exit2",
         r"board file .* is a directory"),
    Case("calibrate-board-json-list", _cli("board", "--out", "{tmp}/b.png", "--board", "{tmp}/b.json",
                                           setup=_write("b.json", [7, 5])), "exit2",
         r"a board definition must be a mapping, got list"),
    Case("calibrate-board-json-string-squares", _cli("board", "--out", "{tmp}/b.png", "--board", "{tmp}/b.json",
                                                     setup=_write("b.json", {"squares_x": "seven"})), "exit2",
         r"board squares_x is 'seven' \(str\); expected a number"),
    Case("calibrate-board-json-null-length", _cli("board", "--out", "{tmp}/b.png", "--board", "{tmp}/b.json",
                                                  setup=_write("b.json", {"square_length_m": None})), "exit2",
         r"board square_length_m is None"),
    Case("calibrate-board-unknown-flag", _cli("board", "--out", "{tmp}/b.png", "--colour", "red"), "exit2",
         r"unrecognized arguments: --colour red"),
    Case("calibrate-no-command", _cli(), "exit2", r"required: command|the following arguments are required"),
    # bench
    Case("calibrate-bench-trials-0", _cli("bench", "--trials", "0"), "exit2", r"argument --trials: 0 is out of range; expected >= 1"),
    Case("calibrate-bench-trials-negative", _cli("bench", "--trials", "-3"), "exit2", r"argument --trials: -3 is out of range"),
    Case("calibrate-bench-trials-word", _cli("bench", "--trials", "many"), "exit2", r"argument --trials: 'many' is not an integer"),
    Case("calibrate-bench-poses-2", _cli("bench", "--poses", "2"), "exit2", r"argument --poses: 2 is out of range; expected >= 5"),
    Case("calibrate-bench-poses-0", _cli("bench", "--poses", "0"), "exit2", r"argument --poses: 0 is out of range"),
    Case("calibrate-bench-seed-negative", _cli("bench", "--seed", "-1"), "exit2", r"argument --seed: -1 is out of range"),
    # intrinsics
    Case("calibrate-intrinsics-no-folder", _cli("intrinsics", "--images", "{tmp}/nope"), "exit2",
         r"image folder .*nope does not exist"),
    Case("calibrate-intrinsics-empty-folder", _cli("intrinsics", "--images", "{tmp}"), "exit2", r"no images \(.png"),
    Case("calibrate-intrinsics-folder-is-file", _cli("intrinsics", "--images", "{tmp}/afile", setup=_a_file), "exit2",
         r"image folder .*afile does not exist"),
    Case("calibrate-intrinsics-corrupt-image", _cli("intrinsics", "--images", "{tmp}",
                                                    setup=_write("v.png", b"\x89PNG broken")), "exit2",
         r"cannot read colour image .*v.png"),
    Case("calibrate-intrinsics-check-binary", _cli("intrinsics", "--images", "{calib}", "--check", "{tmp}/i.json",
                                                   setup=_write("i.json", b"\x00\xff\xfe\x80")), "exit2",
         r"intrinsics file .* is not a text file"),
    Case("calibrate-intrinsics-check-dir", _cli("intrinsics", "--images", "{calib}", "--check", "{tmp}"), "exit2",
         r"intrinsics file .* is a directory"),
    Case("calibrate-intrinsics-check-fx-1.93", _cli("intrinsics", "--images", "{calib}", "--check", "{tmp}/i.json",
                                                    setup=_write("i.json", {**GOOD_INTR, "fx": 1.93, "fy": 1.93})),
         "exit2", r"fx = 1.93 px is implausible for a 640 px image"),
    Case("calibrate-intrinsics-check-fx-string", _cli("intrinsics", "--images", "{calib}", "--check", "{tmp}/i.json",
                                                      setup=_write("i.json", {**GOOD_INTR, "fx": "615"})),
         "exit2", r"fx is '615' \(str\)"),
    Case("calibrate-intrinsics-camera-info-string-k", _cli(
        "intrinsics", "--images", "{calib}", "--check", "{tmp}/ci.yaml",
        setup=_yaml("ci.yaml", {"image_width": 640, "image_height": 480, "camera_matrix": {"data": "615 0 320"}})),
         "exit2", r"camera matrix is '615 0 320' \(str\)"),
    Case("calibrate-intrinsics-camera-info-width-string", _cli(
        "intrinsics", "--images", "{calib}", "--check", "{tmp}/ci.yaml",
        setup=_yaml("ci.yaml", {"image_width": "wide", "image_height": 480,
                                "camera_matrix": {"data": [615, 0, 320, 0, 615, 240, 0, 0, 1]}})),
         "exit2", r"width is 'wide' \(str\)"),
    Case("calibrate-intrinsics-max-rms-0", _cli("intrinsics", "--images", "{calib}", "--max-rms-px", "0"), "exit2",
         r"argument --max-rms-px: 0 is out of range; expected > 0"),
    Case("calibrate-intrinsics-gate", _cli("intrinsics", "--images", "{calib}", "--out", "{tmp}/intr.json",
                                           "--max-rms-px", "0.01"), "exit2",
         r"intrinsics calibration refused: reprojection RMS \d\.\d+ px \(limit --max-rms-px 0.01\); views above the "
         r"limit: \['view_\d\d.png'.*worst views: view_\d\d.png .*nothing written"),
    Case("calibrate-intrinsics-focal-unconstrained", _cli("intrinsics", "--images", "{calib}", "--out",
                                                          "{tmp}/intr.json", "--max-focal-std", "0.0001"), "exit2",
         r"the focal length is poorly constrained \(std fx 0.\d\d px, fy 0.\d\d px = 0.\d\d% > --max-focal-std 0.0001\)"),
    Case("calibrate-intrinsics-focal-std-0", _cli("intrinsics", "--images", "{calib}", "--max-focal-std", "0"),
         "exit2", r"argument --max-focal-std: 0 is out of range"),
    Case("calibrate-intrinsics-distortion-model", _cli("intrinsics", "--images", "{calib}", "--distortion", "fisheye"),
         "exit2", r"argument --distortion: invalid choice: 'fisheye'"),
    # hand-eye
    Case("calibrate-hand-eye-shuffled", _cli(*_HE, "--poses", "{calib}/shuffled.jsonl"), "exit2",
         r"hand-eye calibration refused, no rig written: reprojection RMS through the chain \d+\.\d+ px > --max-rms-px 2.*"
         r"worst views: view_\d\d.png \d+\.\d+ px"),
    Case("calibrate-hand-eye-swapped-pair", _cli(*_HE, "--poses", "{calib}/swapped.jsonl"), "exit2",
         r"hand-eye calibration refused.*outlier views: \['view_02.png', 'view_05.png'\] disagree with the other 8 "
         r"views \(which agree to 0.\d\d px\)"),
    Case("calibrate-hand-eye-square-30", _cli(*_HE_POSES, "--square-mm", "30", "--marker-mm", "22.5"), "exit2",
         r"hand-eye calibration refused.*board position spread in base \d+\.\d+ mm > --max-spread-mm 5.*--square-mm"),
    Case("calibrate-hand-eye-square-50", _cli(*_HE_POSES, "--square-mm", "50", "--marker-mm", "37.5"), "exit2",
         r"hand-eye calibration refused.*outlier views: none stand out \(all views disagree\); worst views: view_"),
    Case("calibrate-hand-eye-tight-gate", _cli(*_HE_POSES, "--max-rms-px", "0.05"), "exit2",
         r"hand-eye calibration refused.*> --max-rms-px 0.05"),
    Case("calibrate-hand-eye-depth-scale-0", _cli(*_HE_POSES, "--depth-scale", "0"), "exit2",
         r"argument --depth-scale: 0 m per unit is out of range; expected > 0 m per unit"),
    Case("calibrate-hand-eye-depth-scale-negative", _cli(*_HE_POSES, "--depth-scale", "-0.001"), "exit2",
         r"argument --depth-scale: -0.001 m per unit is out of range"),
    Case("calibrate-hand-eye-depth-scale-mm", _cli(*_HE_POSES, "--depth-scale", "1000"), "exit2",
         r"argument --depth-scale: 1000 m per unit is out of range; expected > 0 m per unit and <= 1 m per unit"),
    Case("calibrate-hand-eye-noise-0", _cli(*_HE_POSES, "--robot-noise-mm", "0"), "exit2",
         r"argument --robot-noise-mm: 0 is out of range"),
    Case("calibrate-hand-eye-poses-missing", _cli(*_HE, "--poses", "{tmp}/nope.jsonl"), "exit2",
         r"poses file .*nope.jsonl does not exist"),
    Case("calibrate-hand-eye-poses-dir", _cli(*_HE, "--poses", "{tmp}"), "exit2", r"poses file .* is a directory"),
    Case("calibrate-hand-eye-poses-binary", _cli(*_HE, "--poses", "{tmp}/p.jsonl",
                                                 setup=_write("p.jsonl", b"\x80\x81\xfe\xff")), "exit2",
         r"poses file .* is not a text file"),
    Case("calibrate-hand-eye-poses-not-json", _cli(*_HE, "--poses", "{tmp}/poses.jsonl",
                                                   setup=_poses_lines(["xyz 0 0 0"])), "exit2",
         r"poses.jsonl:1: not valid JSON"),
    Case("calibrate-hand-eye-poses-mm", _cli(*_HE, "--poses", "{tmp}/poses.jsonl", setup=_poses_lines(
        ['{"xyz_m": [400, 0, 300], "quat_xyzw": [0, 0, 0, 1]}'])), "exit2", r"poses.jsonl:1: .*millimetres"),
    Case("calibrate-hand-eye-poses-wxyz", _cli(*_HE, "--poses", "{tmp}/poses.jsonl", setup=_poses_lines(
        ['{"xyz_m": [0.4, 0, 0.3], "quat_wxyz": [1, 0, 0, 0]}'])), "exit2", r"got 'quat_wxyz'"),
    Case("calibrate-hand-eye-poses-quat-string", _cli(*_HE, "--poses", "{tmp}/poses.jsonl", setup=_poses_lines(
        ['{"xyz_m": [0.4, 0, 0.3], "quat_xyzw": "0 0 0 1"}'])), "exit2", r"poses.jsonl:1: .*quat_xyzw"),
    Case("calibrate-hand-eye-poses-xyz-null", _cli(*_HE, "--poses", "{tmp}/poses.jsonl", setup=_poses_lines(
        ['{"xyz_m": [0.4, null, 0.3], "quat_xyzw": [0, 0, 0, 1]}'])), "exit2", r"poses.jsonl:1: .*xyz"),
    Case("calibrate-hand-eye-poses-matrix-string", _cli(*_HE, "--poses", "{tmp}/poses.jsonl", setup=_poses_lines(
        ['{"base_from_tcp": "eye(4)"}'])), "exit2", r"poses.jsonl:1: .*base_from_tcp"),
    Case("calibrate-hand-eye-poses-count", _cli(*_HE, "--poses", "{tmp}/poses.jsonl", setup=_poses_lines(
        ['{"xyz_m": [0.4, 0, 0.3], "quat_xyzw": [0, 0, 0, 1]}'])), "exit2", r"10 images but 1 poses"),
    Case("calibrate-hand-eye-poses-empty", _cli(*_HE, "--poses", "{tmp}/poses.jsonl", setup=_poses_lines(["# none"])),
         "exit2", r"holds no poses"),
    Case("calibrate-hand-eye-intrinsics-fx-1.93", _cli(
        "hand-eye", "--images", "{calib}", "--poses", "{calib}/poses.jsonl", "--rig-out", "{tmp}/rig.yaml",
        "--intrinsics", "{tmp}/i.json", setup=_write("i.json", {**GOOD_INTR, "fx": 1.93, "fy": 1.93})),
         "exit2", r"fx = 1.93 px is implausible"),
    Case("calibrate-hand-eye-intrinsics-null", _cli(
        "hand-eye", "--images", "{calib}", "--poses", "{calib}/poses.jsonl", "--rig-out", "{tmp}/rig.yaml",
        "--intrinsics", "{tmp}/i.json", setup=_write("i.json", {**GOOD_INTR, "cx": None})), "exit2", r"cx is None"),
    Case("calibrate-hand-eye-no-intrinsics", _cli("hand-eye", "--images", "{calib}", "--poses", "{calib}/poses.jsonl",
                                                  "--rig-out", "{tmp}/rig.yaml"), "exit2", r"no intrinsics given"),
    Case("calibrate-hand-eye-rig-in-mm", _cli(
        "hand-eye", "--images", "{calib}", "--poses", "{calib}/poses.jsonl", "--rig-out", "{tmp}/out.yaml",
        "--rig", "{tmp}/rig.yaml", setup=_yaml("rig.yaml", _RIG_MM)), "exit2", r"rig.yaml.*millimetres\?"),
    Case("calibrate-hand-eye-rig-out-under-file", _cli(
        "hand-eye", "--images", "{calib}", "--poses", "{calib}/poses.jsonl", "--intrinsics", "{calib}/intrinsics.json",
        "--rig-out", "{tmp}/afile/rig.yaml", setup=_a_file), "exit2", r"cannot access .*afile"),
    # check
    Case("calibrate-check-two-views", _cli("check", "--rig", "{calib}/rig.yaml", "--images", "{calib}/two_views",
                                           "--poses", "{calib}/two_views/poses.jsonl", "--plots", "{tmp}/p"), "exit2",
         r"only 2 usable views of 2, need at least 5 for a hand-eye check"),
    Case("calibrate-check-min-views-1", _cli(*_CHECK, "--min-views", "1"), "exit2",
         r"argument --min-views: 1 is out of range; expected >= 3"),
    Case("calibrate-check-rig-missing", _cli("check", "--rig", "{tmp}/nope.yaml", "--images", "{calib}",
                                             "--poses", "{calib}/poses.jsonl"), "exit2", r"rig file .*nope.yaml does not exist"),
    Case("calibrate-check-rig-dir", _cli("check", "--rig", "{tmp}", "--images", "{calib}",
                                         "--poses", "{calib}/poses.jsonl"), "exit2", r"rig file .* is a directory"),
    Case("calibrate-check-rig-binary", _cli("check", "--rig", "{tmp}/r.yaml", "--images", "{calib}", "--poses",
                                            "{calib}/poses.jsonl", setup=_write("r.yaml", b"\x00\x01\xff")), "exit2",
         r"rig file .* is not a text file"),
    Case("calibrate-check-rig-mm", _cli("check", "--rig", "{tmp}/rig.yaml", "--images", "{calib}", "--poses",
                                        "{calib}/poses.jsonl", setup=_yaml("rig.yaml", _RIG_MM)), "exit2",
         r"translation \[0.0, 32.5, 45.0\] is 55.509 m long.*millimetres\?"),
    Case("calibrate-check-rig-depth-scale-null", _cli(
        "check", "--rig", "{tmp}/rig.yaml", "--images", "{calib}", "--poses", "{calib}/poses.jsonl",
        setup=_yaml("rig.yaml", {**_RIG_MM, "tcp_from_camera": GOOD_TCP, "depth_scale": None})), "exit2",
         r"depth_scale is None"),
    Case("calibrate-check-rig-quat-3", _cli(
        "check", "--rig", "{tmp}/rig.yaml", "--images", "{calib}", "--poses", "{calib}/poses.jsonl",
        setup=_yaml("rig.yaml", {**_RIG_MM, "tcp_from_camera": {"xyz_m": [0, 0.03, 0.04], "quat_xyzw": [0, 0, 1]}})),
         "exit2", r"quat_xyzw has shape \(3,\)"),
    Case("calibrate-check-max-spread-negative", _cli(*_CHECK, "--max-spread-mm", "-2"), "exit2",
         r"argument --max-spread-mm: -2 is out of range"),
    # export
    Case("calibrate-export-uncalibrated", _cli("export", "--rig", "{tmp}/rig.yaml", setup=_yaml(
        "rig.yaml", {**_RIG_MM, "tcp_from_camera": None})), "exit2", r"missing field 'tcp_from_camera'"),
    Case("calibrate-export-rig-mm", _cli("export", "--rig", "{tmp}/rig.yaml", setup=_yaml("rig.yaml", _RIG_MM)),
         "exit2", r"millimetres\?"),
    Case("calibrate-export-rig-bad-yaml", _cli("export", "--rig", "{tmp}/rig.yaml",
                                               setup=_write("rig.yaml", "tcp_from_camera: [1, 2\n")), "exit2",
         r"rig file .* is not valid YAML"),
    Case("calibrate-export-calib-under-file", _cli("export", "--rig", "{calib}/rig.yaml", "--calib",
                                                   "{tmp}/afile/x.calib", setup=_a_file), "exit2",
         r"cannot access .*afile"),
    # import
    Case("calibrate-import-static-mm", _cli(*_IMPORT, "--static", "0 32.5 45 0 0 0 1 tool0 camera"), "exit2",
         r"tcp_from_camera_color_optical translation \[0.0, 32.5, 45.0\] is 55.509 m long, more than the plausible "
         r"0.5 m — millimetres\?"),
    Case("calibrate-import-static-cm", _cli(*_IMPORT, "--static", "0 3.25 4.5 0 0 0 1 tool0 camera"), "exit2",
         r"as centimetres it would be \[0.0, 0.0325, 0.045\] m"),
    Case("calibrate-import-static-ros2-mm", _cli(*_IMPORT, "--static", "--x 0 --y 32.5 --z 45 --qx 0 --qy 0 --qz 0 "
                                                 "--qw 1 --frame-id tool0 --child-frame-id cam"), "exit2",
         r"millimetres\?"),
    Case("calibrate-import-static-6-numbers", _cli(*_IMPORT, "--static", "0 0 0.05 0 0 0 tool0 camera"), "exit2",
         r"has 6 numbers \(x y z yaw pitch roll\)"),
    Case("calibrate-import-static-garbage", _cli(*_IMPORT, "--static", "hello world"), "exit2",
         r"cannot read static_transform_publisher line"),
    Case("calibrate-import-static-zero-quat", _cli(*_IMPORT, "--static", "0 0 0.05 0 0 0 0 tool0 camera"), "exit2",
         r"has norm 0.0000"),
    Case("calibrate-import-static-nan", _cli(*_IMPORT, "--static", "0 nan 0.05 0 0 0 1 tool0 camera"), "exit2",
         r"xyz_m contains NaN"),
    Case("calibrate-import-static-rpy", _cli(*_IMPORT, "--static", "--x 0 --y 0 --z 0 --roll 0 --pitch 0 --yaw 0 "
                                                 "--frame-id a --child-frame-id b"), "exit2", r"roll/pitch/yaw"),
    Case("calibrate-import-depth-scale-0", _cli(*_IMPORT, "--static", _STATIC_OK, "--depth-scale", "0"), "exit2",
         r"argument --depth-scale: 0 m per unit is out of range"),
    Case("calibrate-import-depth-scale-word", _cli(*_IMPORT, "--static", _STATIC_OK, "--depth-scale", "d405"), "exit2",
         r"argument --depth-scale: 'd405' is not a number"),
    Case("calibrate-import-both", _cli(*_IMPORT, "--static", _STATIC_OK, "--calib", "{tmp}/x.calib"), "exit2",
         r"give exactly one of --calib FILE or --static"),
    Case("calibrate-import-neither", _cli(*_IMPORT), "exit2", r"give exactly one of --calib FILE or --static"),
    Case("calibrate-import-calib-mm", _cli(*_IMPORT, "--calib", "{tmp}/x.calib", setup=_yaml("x.calib", _CALIB_MM)),
         "exit2", r"millimetres"),
    Case("calibrate-import-calib-eye-on-base", _cli(*_IMPORT, "--calib", "{tmp}/x.calib", setup=_yaml(
        "x.calib", {**_CALIB_MM, "parameters": {"calibration_type": "eye_on_base"}})), "exit2", r"eye-on-base"),
    Case("calibrate-import-calib-string-xyz", _cli(*_IMPORT, "--calib", "{tmp}/x.calib", setup=_yaml(
        "x.calib", {**_CALIB_MM, "transform": {"translation": "0 0 0", "rotation": {"x": 0}}})), "exit2",
         r"transform lacks field|x.calib"),
    Case("calibrate-import-calib-binary", _cli(*_IMPORT, "--calib", "{tmp}/x.calib",
                                               setup=_write("x.calib", b"\xff\xfe\xfd")), "exit2",
         r"calibration file .* is not a text file"),
    Case("calibrate-import-calib-dir", _cli(*_IMPORT, "--calib", "{tmp}"), "exit2", r"calibration file .* is a directory"),
    Case("calibrate-import-intrinsics-fx-1.93", _cli(
        "import", "--static", _STATIC_OK, "--rig-out", "{tmp}/rig.yaml", "--intrinsics", "{tmp}/i.json",
        setup=_write("i.json", {**GOOD_INTR, "fx": 1.93, "fy": 1.93})), "exit2", r"fx = 1.93 px is implausible"),
    Case("calibrate-import-rig-out-dir", _cli(*_IMPORT[:-2], "--rig-out", "{tmp}", "--static", _STATIC_OK), "exit2",
         r"cannot access|is a directory"),
]

#: Every case of the sweep, by group.
GROUPS = {
    "transform": TRANSFORM_CASES,
    "intrinsics": INTRINSICS_CASES,
    "rig": RIG_CASES,
    "frame": FRAME_CASES,
    "config": CONFIG_CASES,
    "segment": SEGMENT_CASES,
    "capture": CAPTURE_CASES,
    "calibrate": CLI_CASES,
}
ALL_CASES = [c for cases in GROUPS.values() for c in cases]


def run_case(case: Case, ctx: Context) -> tuple[str, str]:
    """Run one case and classify it: ``("refused", message)``, ``("traceback", ...)`` or ``("silent", ...)``.

    A loader refuses with a :class:`~graspseg.core.errors.GraspsegError`; a command line refuses by
    returning 2 with exactly one line on stderr. Any other exception is a traceback; a result (or a
    command that exits 0 or 1 without refusing the input) is a silent acceptance.
    """
    import contextlib
    import io
    import traceback

    from graspseg.core.errors import GraspsegError

    err = io.StringIO()
    out = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            result = case.run(ctx)
    except GraspsegError as e:
        return "refused", f"{type(e).__name__}: {e}"
    except SystemExit as e:  # argparse before the fix: usage + error, exit 2
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        return ("refused" if e.code == 2 else "traceback"), " | ".join(lines)[-300:]
    except Exception as e:  # noqa: BLE001 - the sweep counts exactly these
        return "traceback", "".join(traceback.format_exception_only(type(e), e)).strip()
    if case.error == "exit2":
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        if result == 2 and "Traceback" not in err.getvalue():
            return "refused", " | ".join(lines)
        return "silent", f"exit {result}: {' | '.join(lines)[-200:]}"
    return "silent", f"returned {type(result).__name__}"


def assert_refused(case: Case, ctx: Context) -> None:
    """The test of one case: the named error class with a matching message, or exit 2 with one matching line."""
    import contextlib
    import io
    import re

    import pytest

    from graspseg.core import errors

    if case.error == "exit2":
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = case.run(ctx)
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        assert rc == 2, f"exit {rc}, stderr {lines}, stdout {out.getvalue()[-300:]}"
        assert len(lines) == 1, lines
        assert lines[0].startswith("graspseg-calibrate"), lines[0]
        assert re.search(case.match, lines[0]), lines[0]
    else:
        with pytest.raises(getattr(errors, case.error), match=case.match):
            case.run(ctx)
