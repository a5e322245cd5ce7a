"""The command line on frames a robot setup really produces and the segmenter cannot answer with an object:
a table filling the view, a click on the table, depth in 0.1 mm units (1280x720, D405) decoded at the wrong
scale. Each gets a one-line reason (exit 2) or an explained empty result, never a mask of the table."""

import json

import pytest

from graspseg.capture.frame_folder import save_frame_folder
from graspseg.cli import main


@pytest.fixture(scope="module")
def empty_table_dir(tmp_path_factory, empty_table_720p):
    return save_frame_folder(empty_table_720p, tmp_path_factory.mktemp("frames") / "empty_table", depth_scale=1e-4)


def test_segment_all_on_an_empty_table_explains_its_empty_result(empty_table_dir, tmp_path, capsys):
    assert json.loads((empty_table_dir / "camera.json").read_text())["depth_scale"] == 1e-4
    assert main(["segment-all", "--frame", str(empty_table_dir), "--out", str(tmp_path / "all")]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    why = "no object found: the support plane covers 100% of the view; nothing rises above it"
    assert summary["objects"] == 0 and summary["explanation"] == why
    assert summary["support_px"] > 0.95 * 1280 * 720
    assert err.strip() == f"graspseg segment-all: {why}"
    doc = json.loads((tmp_path / "all" / "segment_all.json").read_text())
    assert doc["objects"] == [] and doc["explanation"] == why
    assert (tmp_path / "all" / "support.png").is_file() and (tmp_path / "all" / "overlay.png").is_file()


@pytest.mark.parametrize("command", ["perceive", "segment"])
def test_a_click_on_the_table_exits_2_with_one_line(command, empty_table_dir, tmp_path, capsys):
    rc = main([command, "--frame", str(empty_table_dir), "--point", "640,360", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert err.startswith(f"graspseg {command}: error: no region found under the prompt")
    assert "it lies on the support plane (the table), not on an object above it; click on an object" in err
    assert not (tmp_path / "o").exists()


def test_0_1_mm_depth_decoded_as_millimetres_names_the_depth_scale(tmp_path, capsys):
    from graspseg.sim.synthetic import make_scene, sensor_noise

    scene = make_scene("single", seed=3, width=1280, height=720, distance_m=0.25, tilt_deg=20,
                       noise=sensor_noise("d405"))
    folder = save_frame_folder(scene.frame, tmp_path / "d405", depth_scale=1e-4, objects=scene.objects)
    cam = json.loads((folder / "camera.json").read_text())
    (folder / "camera.json").write_text(json.dumps({**cam, "depth_scale": 0.001}))  # the D435's scale, 10x too far
    (obj,) = scene.objects
    from graspseg.eval import first_click

    u, v = first_click(obj.mask)
    rc = main(["perceive", "--frame", str(folder), "--point", f"{u},{v}", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "lie outside the depth range 0.07-2 m" in err
    assert err.endswith("or check the depth scale: readings 10x too far are 0.1 mm units (D405: depth_scale 0.0001) "
                        "decoded as millimetres (at least 10 points needed)")


def test_plan_and_perceive_from_python_raise_the_typed_error_on_a_click_on_the_table(empty_table_720p):
    from graspseg.core.errors import SegmentationError
    from graspseg.plugin import GraspPerception
    from graspseg.segment import Prompt

    perception = GraspPerception()
    for call in (perception.plan, perception.perceive, perception.pipeline.perceive):
        with pytest.raises(SegmentationError, match=r"lies on the support plane \(the table\), not on an object"):
            call(empty_table_720p, Prompt.from_point(900, 500))
