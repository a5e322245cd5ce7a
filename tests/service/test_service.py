"""The perception service run for real on loopback: answers, refusals, tokens, queueing, concurrency."""

import base64
import json
import threading
import time
import urllib.request

import numpy as np
import pytest

from graspseg.capture import load_frame_folder
from graspseg.core import BASE, CAMERA, TCP, CameraRig, ConfigError, InputError, Transform
from graspseg.plugin import GraspPerception
from graspseg.schemas import validate
from graspseg.segment import Prompt
from graspseg.service import (
    PerceptionClient,
    ServiceAuthError,
    ServiceBusyError,
    ServicePayloadTooLargeError,
    ServiceRequestError,
    codec,
)
from graspseg.service.server import ServerThread, bind_socket, create_app

pytest.importorskip("fastapi")

MUG = Prompt.from_point(352, 280)
TOKEN = "t" * 12 + "0123456789abcdef"
BASE_FROM_TCP = Transform.from_xyz_quat_xyzw([0.5, 0.0, 0.6], [1.0, 0.0, 0.0, 0.0], BASE, TCP)


@pytest.fixture(scope="module")
def frame(sample_frame_dir):
    return load_frame_folder(sample_frame_dir)


@pytest.fixture(scope="module")
def perception():
    return GraspPerception()


@pytest.fixture(scope="module")
def server(perception):
    with ServerThread(perception, max_upload_bytes=8 * 1024 * 1024) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    return PerceptionClient(server.url, timeout_s=60)


def _raw(server, method, path, body=b"", content_type="application/json", headers=None):
    req = urllib.request.Request(server.url + path, data=body if method != "GET" else None, method=method,
                                 headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _arrays_body(frame, **over):
    doc = {"intrinsics": frame.intrinsics.to_dict(), "prompt": {"points_uv": [[352.0, 280.0]]},
           "color": {"data_b64": base64.b64encode(frame.color.tobytes()).decode(), "shape": list(frame.color.shape),
                     "dtype": "uint8"},
           "depth": {"data_b64": base64.b64encode(frame.depth_m.astype("<f4").tobytes()).decode(),
                     "shape": list(frame.depth_m.shape), "dtype": "float32"}}
    doc.update(over)
    return json.dumps(doc).encode()


def _signature(doc):
    r = doc["result"]
    return (r["segmentation"]["mask_area_px"], r["grasps"]["n_accepted"], r["grasps"]["rejected_counts"],
            [g["grasp"]["matrix"] for g in doc["response"]["grasps"]])


def test_health_names_the_model_and_the_limits(client):
    h = client.health()
    assert h["status"] == "ok" and h["backend"] == "rgbd" and h["gripper"] == "franka_hand"
    assert h["limits"]["max_upload_bytes"] == 8 * 1024 * 1024 and h["queue"]["max"] >= 1 and h["auth"] is False


def test_png_and_array_uploads_equal_the_in_process_answer(client, frame, perception):
    local = perception.plan(frame, MUG)
    local_doc = {"response": local.to_dict(), "result": local.result.to_dict(compact=True)}
    png = client.perceive(frame, MUG)
    arrays = client.perceive(frame, MUG, encoding="arrays")
    for doc in (png, arrays):
        validate(doc["response"], "grasp_response")
        validate(doc["result"], "perception_result")
        assert doc["response"]["status"] == "ok"
    assert _signature(arrays) == _signature(json.loads(json.dumps(local_doc)))
    # the PNG path carries depth at 0.1 mm steps, exactly the sample's own depth scale
    assert _signature(png) == _signature(json.loads(json.dumps(local_doc)))


def test_a_rig_put_then_poses_come_back_in_base(server, frame):
    c = PerceptionClient(server.url, timeout_s=60)
    rig = CameraRig(frame.intrinsics, Transform.from_rt(np.eye(3), [0.0, 0.06, 0.02], TCP, CAMERA), depth_scale=1e-4)
    try:
        assert c.set_rig(rig)["hand_eye_calibrated"] is True
        doc = c.perceive(frame, MUG, base_from_tcp=BASE_FROM_TCP)
        assert doc["response"]["frame"] == BASE
        assert doc["response"]["grasps"][0]["tcp_target"]["frame_id"] == BASE
    finally:
        assert c.set_rig(None)["rig"] is None
    assert c.perceive(frame, MUG, base_from_tcp=BASE_FROM_TCP)["response"]["frame"] == CAMERA


@pytest.mark.parametrize("case, status, detail", [
    ("malformed_json", 400, "not valid JSON"),
    ("wrong_array_size", 422, "bytes"),
    ("no_intrinsics", 422, "intrinsics"),
    ("bad_dtype", 422, "dtype"),
    ("rig_frames_do_not_chain", 422, "tcp"),
    ("oversized", 413, "above the server's limit of 8388608 bytes"),
    ("prompt_outside", 422, "outside"),
    ("pose_frames_do_not_chain", 422, "to_frame is 'tcp' but 'base' is expected here"),
    ("too_many_pixels", 413, "above the server's limits.max_frame_pixels"),
    ("sizes_differ", 422, "color is 640x480 but depth is 320x240"),
    ("malformed_request_part", 400, "the 'request' part is not valid JSON"),
    ("not_multipart", 400, "POST /perceive takes multipart/form-data"),
    ("bad_base64", 400, "not valid base64"),
])
def test_bad_requests_get_a_4xx_with_the_reason_and_the_server_keeps_serving(server, frame, case, status, detail):
    if case == "malformed_json":
        got = _raw(server, "POST", "/perceive/arrays", b'{"intrinsics": ')
    elif case == "wrong_array_size":
        body = json.loads(_arrays_body(frame))
        body["depth"]["shape"] = [480, 641]
        got = _raw(server, "POST", "/perceive/arrays", json.dumps(body).encode())
    elif case == "no_intrinsics":
        body = json.loads(_arrays_body(frame))
        del body["intrinsics"]
        got = _raw(server, "POST", "/perceive/arrays", json.dumps(body).encode())
    elif case == "bad_dtype":
        body = json.loads(_arrays_body(frame))
        body["depth"]["dtype"] = "float64"
        got = _raw(server, "POST", "/perceive/arrays", json.dumps(body).encode())
    elif case == "rig_frames_do_not_chain":
        rig = {"intrinsics": frame.intrinsics.to_dict(), "depth_scale": 1e-4,
               "tcp_from_camera": {"matrix": np.eye(4).tolist(), "to_frame": "base", "from_frame": "camera_color_optical"}}
        got = _raw(server, "PUT", "/rig", json.dumps(rig).encode())
    elif case == "oversized":
        got = _raw(server, "POST", "/perceive/arrays", b" " * (9 * 1024 * 1024))
    elif case == "pose_frames_do_not_chain":
        pose = {"matrix": np.eye(4).tolist(), "to_frame": "tcp", "from_frame": "base"}
        got = _raw(server, "POST", "/perceive/arrays", _arrays_body(frame, base_from_tcp=pose))
    elif case == "too_many_pixels":  # refused from the declared shape, before any decoding
        body = json.loads(_arrays_body(frame))
        body["color"]["shape"] = [2000, 2000, 3]
        got = _raw(server, "POST", "/perceive/arrays", json.dumps(body).encode())
    elif case == "sizes_differ":
        body = json.loads(_arrays_body(frame))
        body["depth"] = {"data_b64": base64.b64encode(frame.depth_m[::2, ::2].astype("<f4").tobytes()).decode(),
                         "shape": [240, 320], "dtype": "float32"}
        got = _raw(server, "POST", "/perceive/arrays", json.dumps(body).encode())
    elif case == "malformed_request_part":
        parts = [codec.Part("color", codec.encode_png(frame.color), "c.png", "image/png"),
                 codec.Part("depth", codec.encode_png(codec.depth_to_raw(frame.depth_m, 1e-4)), "d.png", "image/png"),
                 codec.Part("request", b'{"intrinsics": ', None, "application/json")]
        got = _raw(server, "POST", "/perceive", *codec.build_multipart(parts))
    elif case == "not_multipart":
        got = _raw(server, "POST", "/perceive", _arrays_body(frame))
    elif case == "bad_base64":
        body = json.loads(_arrays_body(frame))
        body["color"]["data_b64"] = "@@@" + body["color"]["data_b64"][3:]
        got = _raw(server, "POST", "/perceive/arrays", json.dumps(body).encode())
    else:
        got = _raw(server, "POST", "/perceive/arrays", _arrays_body(frame, prompt={"points_uv": [[5000.0, 10.0]]}))
    code, doc = got
    assert code == status, doc
    assert set(doc) == {"error", "detail"} and detail in doc["detail"], doc
    assert "\n" not in doc["detail"]
    assert _raw(server, "GET", "/health")[0] == 200


def test_a_wrong_method_names_every_method_of_the_path(server):
    req = urllib.request.Request(server.url + "/rig", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=60)
    assert e.value.code == 405 and e.value.headers["Allow"] == "DELETE, GET, PUT"
    assert json.loads(e.value.read())["detail"] == "POST is not served at /rig; use DELETE or GET or PUT"


def test_client_errors_are_typed(server, frame):
    c = PerceptionClient(server.url, timeout_s=60)
    with pytest.raises(ServiceRequestError, match="outside"):
        c.perceive(frame, Prompt.from_point(5000, 10))
    with pytest.raises(InputError, match="base_url must start with http:// or https://"):
        PerceptionClient("127.0.0.1:8765")
    with pytest.raises(InputError, match="prompt must be a graspseg Prompt"):
        c.perceive(frame, (352, 280))


def test_a_token_is_required_and_checked(perception, frame):
    with ServerThread(perception, token=TOKEN) as s:
        code, doc = _raw(s, "GET", "/health")
        assert code == 401 and doc["error"]
        with pytest.raises(ServiceAuthError):
            PerceptionClient(s.url, token="w" * 20).health()
        assert PerceptionClient(s.url, token=TOKEN).health()["auth"] is True
        assert _raw(s, "GET", "/openapi.json")[0] == 200  # the description stays readable


def test_binding_beyond_loopback_needs_a_token(perception):
    with pytest.raises(ConfigError, match="refusing to serve on '0.0.0.0' without a token"):
        bind_socket("0.0.0.0", 0)
    with pytest.raises(ConfigError, match="at least 16 printable characters"):
        create_app(perception, token="short")


def test_four_concurrent_clients_are_all_answered_as_single_threaded(client, frame, perception):
    reference = _signature(client.perceive(frame, MUG))
    answers, errors = [], []

    def work():
        c = PerceptionClient(client.base_url, timeout_s=120)
        for _ in range(5):
            try:
                answers.append(_signature(c.perceive(frame, MUG)))
            except Exception as e:  # collected and asserted below
                errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(answers) == 20
    assert all(a == reference for a in answers)


class SlowPerception:
    """A stand-in that holds the model for a while, to fill the queue."""

    def __init__(self, inner):
        self.inner = inner

    def plan(self, *a, **kw):
        time.sleep(0.6)
        return self.inner.plan(*a, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_full_queue_answers_503_at_once_and_nothing_is_lost(perception, frame):
    with ServerThread(SlowPerception(perception), max_queue=1) as s:
        outcomes = []

        def work():
            try:
                PerceptionClient(s.url, timeout_s=60).perceive(frame, MUG)
                outcomes.append("ok")
            except ServiceBusyError as e:
                outcomes.append("busy")
                assert e.status == 503

        threads = [threading.Thread(target=work) for _ in range(5)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join()
    assert len(outcomes) == 5 and "busy" in outcomes and "ok" in outcomes


def test_oversized_client_upload_is_a_typed_error(perception, frame):
    with ServerThread(perception, max_upload_bytes=64 * 1024) as s:
        with pytest.raises(ServicePayloadTooLargeError, match="above the server.s limit of 65536 bytes"):
            PerceptionClient(s.url).perceive(frame, MUG)


def test_the_openapi_spec_yields_no_server_error(server):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    failures, calls = [], []

    def checker(operation):
        def check(case):
            response = case.call(base_url=server.url, timeout=60)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append((operation.label, response.status_code, response.text[:200]))
        return check

    for op in schema.get_all_operations():
        operation = op.ok()
        run = settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                       derandomize=True)(given(case=operation.as_strategy())(checker(operation)))
        run()
    assert len(calls) >= 30  # every operation was exercised
    assert not failures, failures[:3]


def test_graspseg_serve_announces_its_url_serves_and_stops_on_sigint(tmp_path):
    import signal
    import subprocess
    import sys

    # Ctrl-C reaches a foreground process; a test run started in the background ('make test &') passes an
    # ignored SIGINT to its children, so give the server the terminal's default disposition
    proc = subprocess.Popen([sys.executable, "-m", "graspseg.cli", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        announced = json.loads(proc.stdout.readline())
        assert announced["url"].startswith("http://127.0.0.1:") and announced["auth"] is False
        assert PerceptionClient(announced["url"]).health()["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, err  # the CLI's documented code for Ctrl-C
    refused = subprocess.run([sys.executable, "-m", "graspseg.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
                             capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                               "GRASPSEG_SERVICE_TOKEN": ""})
    assert refused.returncode == 2 and "without a token" in refused.stderr, refused.stderr


def test_graspseg_bench_service_prints_one_report(capsys):
    from graspseg.cli import main

    assert main(["bench", "service", "--repeat", "2", "--warmup", "0", "--requests", "6", "--clients", "3",
                 "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)  # stdout is exactly one JSON object
    c = report["concurrent"]
    assert (c["sent"], c["answered"], c["ok"], c["errors"], c["lost"], c["mismatched"]) == (6, 6, 6, 0, 0, 0)
    assert report["image_size_wh"] == [640, 480] and report["latency"]["in_process"]["n"] == 2
    o = report["overhead_ms"]["png"]
    assert set(o) == {"paired_median_ms", "median_difference_ms", "min_difference_ms"}
    assert set(report["isolated_ms"]) == {"png", "arrays", "health"} and report["isolated_ms"]["png"]["n"] == 2
    # too few repeats and requests to decide: no verdict rather than a lucky one
    assert report["met"] is None and all(t["met"] is None for t in report["targets"])
    assert report["targets"][0]["value"] == o["paired_median_ms"]
