"""The perception service: one :class:`~graspseg.plugin.GraspPerception` behind HTTP (FastAPI).

Endpoints (``docs/service.md`` has examples; ``/openapi.json`` and ``/docs`` describe them):

``GET /health``
    Status, version, backend, gripper, rig, queue depth, limits.
``GET /rig``, ``PUT /rig``, ``DELETE /rig``
    The camera rig (the rig YAML's fields, as JSON) used from the next request on.
``POST /perceive``
    ``multipart/form-data``: ``color`` (PNG/JPEG), ``depth`` (16-bit PNG), optional ``mask`` (PNG) and the
    JSON part ``request`` (:class:`~graspseg.service.models.PerceiveOptions`).
``POST /perceive/arrays``
    JSON with base64 raw arrays (:class:`~graspseg.service.models.PerceiveArraysRequest`).

Both perceive forms answer ``{"response": GraspResponse.to_dict(), "result": PerceptionResult.to_dict(...)}``.

Requests that reach the model (perceive, rig changes) wait in one bounded FIFO queue
(:class:`~graspseg.service.worker.ModelWorker`); a full queue is answered 503 with ``Retry-After`` at
once. Every refusal is ``{"error": <type>, "detail": <one line>}``: 400 unparseable, 401 token, 404/405,
413 too large (bytes or pixels), 422 invalid values, 503 busy, 500 anything unexpected (logged with its
traceback; the server goes on serving).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass

from .. import __version__
from ..core.camera import CameraRig
from ..core.errors import (
    ConfigError,
    GraspsegError,
    MissingDependencyError,
    NoGraspError,
    NoSupportPlaneError,
    SegmentationError,
)
from ..core.frame import RGBDFrame
from ..core.transform import Transform
from ..segment import Prompt
from . import codec
from .auth import bearer_matches, check_bind, check_token
from .errors import (
    AuthenticationError,
    MalformedRequestError,
    PayloadTooLargeError,
    QueueFullError,
    RequestSchemaError,
    ServiceClosedError,
)
from .worker import ModelWorker

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from pydantic import ValidationError
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as e:
    raise MissingDependencyError(getattr(e, "name", None) or "fastapi", "service",
                                 "the perception service (graspseg serve)") from e

from .models import (
    ErrorResponse,
    HealthResponse,
    PerceiveArraysRequest,
    PerceiveOptions,
    PerceiveResponse,
    RigResponse,
    RigSpec,
)

log = logging.getLogger(__name__)

#: Largest request body accepted, bytes: a 1920x1200 frame as raw arrays in base64 is about 22 MB.
DEFAULT_MAX_UPLOAD_BYTES = 32 * 1024 * 1024
#: Requests that may wait for the model while it works on one.
DEFAULT_MAX_QUEUE = 8
#: A body above the limit is still read (and dropped) up to this many bytes, so that the client, still
#: sending, sees the 413 instead of a reset connection; above it the connection is closed.
DRAIN_LIMIT_BYTES = 128 * 1024 * 1024
#: Paths served without a token: the API description only.
OPEN_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect"})

ERROR_RESPONSES = {code: {"model": ErrorResponse, "description": text} for code, text in (
    (400, "unparseable request (bad JSON, broken multipart, invalid base64)"),
    (401, "token missing or wrong"),
    (413, "upload above max_upload_bytes, or frame above limits.max_frame_pixels"),
    (422, "invalid values (wrong sizes or dtypes, no intrinsics, frames that do not chain, ...)"),
    (500, "unexpected server error (logged with its traceback)"),
    (503, "the model's queue is full or the server is stopping (Retry-After)"),
)}


# --------------------------------------------------------------------------------------------------
# errors → HTTP
# --------------------------------------------------------------------------------------------------
def one_line(text: object, limit: int = 600) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def status_for(e: BaseException) -> int:
    """The HTTP status a failed request is answered with."""
    if isinstance(e, MalformedRequestError):
        return 400
    if isinstance(e, AuthenticationError):
        return 401
    if isinstance(e, PayloadTooLargeError):
        return 413
    if isinstance(e, QueueFullError | ServiceClosedError):
        return 503
    if isinstance(e, GraspsegError) and isinstance(e, ValueError | KeyError):
        return 422
    if isinstance(e, SegmentationError | NoSupportPlaneError | NoGraspError):
        return 422  # a valid request whose frame shows nothing to grasp: the reason is the answer
    return 500


def error_response(e: BaseException) -> JSONResponse:
    """``{"error": type, "detail": one line}`` with the status of :func:`status_for`."""
    status = status_for(e)
    headers = {}
    if isinstance(e, QueueFullError):
        headers["Retry-After"] = str(e.retry_after_s)
    elif isinstance(e, ServiceClosedError):
        headers["Retry-After"] = "5"
    if status == 500 and not isinstance(e, GraspsegError):
        detail = f"internal error {type(e).__name__}: {one_line(e) or 'no message'} (the server log has the traceback)"
        if isinstance(e, MemoryError):
            detail = "the server ran out of memory on this request; send a smaller frame"
    else:
        detail = one_line(e)
    if status == 500:
        log.error("request failed: %s", detail, exc_info=(type(e), e, e.__traceback__))
    else:
        log.info("request refused (%d %s): %s", status, type(e).__name__, detail)
    return JSONResponse({"error": type(e).__name__, "detail": detail}, status, headers=headers)


def _validation_detail(errors: list, where: str) -> str:
    """One line from pydantic's error list: ``<where>.<field>: <message> (got <value>)``."""
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    path = ".".join([where, *loc]) if loc else where
    got = ""
    if "input" in first and first.get("type") not in ("missing",):
        text = json.dumps(first["input"], default=str)
        got = f" (got {text if len(text) <= 60 else text[:57] + '...'})"
    more = f"; and {len(errors) - 1} more problem(s)" if len(errors) > 1 else ""
    return one_line(f"{path}: {first.get('msg', 'invalid')}{got}{more}")


def _validate(model, data: object, where: str):
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise RequestSchemaError(_validation_detail(e.errors(), where)) from None


# --------------------------------------------------------------------------------------------------
# the ASGI guard: token and body size before anything else
# --------------------------------------------------------------------------------------------------
async def _send_json(send, status: int, doc: dict, headers: list | None = None) -> None:
    body = json.dumps(doc).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class _Guard:
    """Reads the whole body (up to the limit), then checks the token, then the size; replays the body."""

    def __init__(self, app, *, token: str | None, max_upload_bytes: int) -> None:
        self.app, self.token, self.max_upload_bytes = app, token, max_upload_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length")
        try:
            declared_n = int(declared) if declared is not None else None
        except ValueError:
            await _send_json(send, 400, {"error": "MalformedRequestError",
                                         "detail": f"Content-Length {declared[:40]!r} is not a number of bytes"})
            return
        chunks: list[bytes] = []
        total = 0
        if declared_n is None or declared_n <= DRAIN_LIMIT_BYTES:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                data = msg.get("body", b"")
                total += len(data)
                if total <= self.max_upload_bytes:
                    chunks.append(data)
                if not msg.get("more_body", False) or total > DRAIN_LIMIT_BYTES:
                    break
        size = max(total, declared_n or 0)
        close = [(b"connection", b"close")] if size > DRAIN_LIMIT_BYTES or total < (declared_n or 0) else []
        if self.token is not None and scope.get("path") not in OPEN_PATHS \
                and not bearer_matches(headers.get("authorization"), self.token):
            given = "no Authorization header" if "authorization" not in headers else "a wrong or malformed token"
            await _send_json(send, 401, {"error": "AuthenticationError",
                                         "detail": f"this server needs 'Authorization: Bearer <token>'; the request "
                                                   f"had {given} (PerceptionClient(token=...), curl -H)"},
                             [(b"www-authenticate", b"Bearer"), *close])
            return
        if size > self.max_upload_bytes:
            await _send_json(send, 413, {"error": "PayloadTooLargeError",
                                         "detail": f"the request body is {size} bytes, above the server's limit of "
                                                   f"{self.max_upload_bytes} bytes; send a smaller frame (PNG "
                                                   f"rather than raw arrays) or start the server with a larger "
                                                   f"--max-upload-bytes"}, close)
            return
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# --------------------------------------------------------------------------------------------------
# the app
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    frame: RGBDFrame
    prompt: Prompt
    base_from_tcp: Transform | None
    options: PerceiveOptions


def _job(options: PerceiveOptions, color, depth, mask) -> _Job:
    intrinsics = None if options.intrinsics is None else options.intrinsics.model_dump(exclude_none=True)
    frame = codec.build_frame(color, depth, intrinsics=intrinsics, depth_scale=options.depth_scale,
                              frame_id=options.frame_id, timestamp_s=options.timestamp_s)
    prompt = Prompt.from_dict(options.prompt.model_dump(), mask)
    pose = None if options.base_from_tcp is None else codec.build_pose(options.base_from_tcp.model_dump(exclude_none=True))
    return _Job(frame, prompt, pose, options)


def _prepare_multipart(body: bytes, content_type: str, max_px: int) -> _Job:
    parts = codec.parse_multipart(body, content_type)
    unknown = sorted(set(parts) - set(codec.PART_NAMES))
    if unknown:
        raise RequestSchemaError(f"unknown multipart part(s) {unknown}; POST /perceive takes color, depth, request "
                                 "and optionally mask")
    missing = [n for n in ("color", "depth", "request") if n not in parts]
    if missing:
        raise RequestSchemaError(f"multipart part(s) {missing} missing; POST /perceive needs color (PNG/JPEG), depth "
                                 "(16-bit PNG) and request (JSON with intrinsics, depth_scale and prompt)")
    options = _validate(PerceiveOptions, codec.parse_json(parts["request"].data, "the 'request' part"), "request")
    color = codec.decode_color(parts["color"].data, max_px)
    depth = codec.decode_depth(parts["depth"].data, max_px)
    mask = codec.decode_mask(parts["mask"].data, max_px) if "mask" in parts else None
    return _job(options, color, depth, mask)


def _prepare_arrays(req: PerceiveArraysRequest, max_px: int) -> _Job:
    specs = {"color": req.color, "depth": req.depth, "mask": req.mask}
    for what, spec in specs.items():
        if spec is not None:
            codec.check_frame_size(max_px, *codec.array_hw(spec.model_dump(), what), f"{what} array")
    color = codec.decode_array(req.color.model_dump(), "color", dtypes=("uint8",), shapes="(H, W, 3) RGB uint8",
                               channels=(3,))
    depth = codec.decode_array(req.depth.model_dump(), "depth", dtypes=("float32", "uint16"),
                               shapes="(H, W) float32 metres, or uint16 raw units with depth_scale")
    mask = None
    if req.mask is not None:
        mask = codec.decode_array(req.mask.model_dump(), "mask", dtypes=("uint8",),
                                  shapes="(H, W) uint8, non-zero = object") > 0
    return _job(req, color, depth, mask)


def _finite(o):
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def _json_default(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def json_bytes(doc: dict) -> bytes:
    """Strict JSON (no NaN/Infinity tokens, which C++ and JavaScript readers refuse: they become null)."""
    try:
        return json.dumps(doc, default=_json_default, allow_nan=False).encode()
    except ValueError:
        return json.dumps(_finite(json.loads(json.dumps(doc, default=_json_default))), allow_nan=False).encode()


def _documents(response, options: PerceiveOptions) -> bytes:
    return json_bytes({"response": response.to_dict(),
                       "result": response.result.to_dict(compact=options.compact, top_k=options.top_k)})


def _rig_doc(rig: CameraRig | None) -> dict:
    return {"rig": None if rig is None else rig.to_dict(),
            "hand_eye_calibrated": rig is not None and rig.tcp_from_camera is not None}


def create_app(perception, *, token: str | None = None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               max_queue: int = DEFAULT_MAX_QUEUE) -> FastAPI:
    """The service's ASGI app around one perception object.

    Parameters
    ----------
    perception : GraspPerception
        Or any object with ``plan(frame, prompt, *, max_grasps, granularity, base_from_tcp)``,
        ``set_rig(rig)``, ``rig``, ``config`` (``segment.backend``, ``limits.max_frame_pixels``) and
        ``gripper.name``.
    token : str, optional
        When given, every request but ``/openapi.json`` and ``/docs`` needs ``Authorization: Bearer <token>``.
    max_upload_bytes : int
        Largest request body; larger ones are answered 413.
    max_queue : int
        Requests that may wait for the model while it works on one; one more is answered 503.
    """
    token = check_token(token)
    for name, value, low in (("max_upload_bytes", max_upload_bytes, 1024), ("max_queue", max_queue, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    worker = ModelWorker(max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(worker.close)

    app = FastAPI(title="graspseg perception service", version=__version__, lifespan=lifespan, redoc_url=None,
                  description="Grasp-planning perception for wrist RGB-D frames; see docs/service.md.")
    app.state.perception, app.state.worker, app.state.token = perception, worker, token

    def max_px() -> int:
        return int(perception.config.limits.max_frame_pixels)

    async def run_plan(job: _Job) -> Response:
        o = job.options

        def plan_and_serialise() -> bytes:  # on the model's thread: one thread hop less per request (~1 ms)
            response = perception.plan(job.frame, job.prompt, max_grasps=o.max_grasps, granularity=o.granularity,
                                       base_from_tcp=job.base_from_tcp)
            return _documents(response, o)

        body = await asyncio.wrap_future(worker.submit(plan_and_serialise))
        return Response(body, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):
        name = "".join(w.capitalize() for w in http.HTTPStatus(exc.status_code).phrase.split())
        headers = dict(getattr(exc, "headers", None) or {})
        detail = one_line(exc.detail)
        if exc.status_code == 405:  # one route per method: name every method of the path, not just one route's
            allowed = sorted({m for r in app.routes if getattr(r, "path", None) == request.url.path
                              for m in (getattr(r, "methods", None) or ())})
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not served at {request.url.path}; use {' or '.join(allowed)}"
        return JSONResponse({"error": name, "detail": detail}, exc.status_code, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            reason = (errors[0].get("ctx") or {}).get("error", "")
            return error_response(MalformedRequestError(f"the request body is not valid JSON: {reason}".rstrip(": ")))
        return error_response(RequestSchemaError(_validation_detail(errors, "body") if errors else "invalid request"))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):  # the endpoints catch their own; this is the backstop
        return error_response(exc)

    @app.get("/health", response_model=HealthResponse, responses=ERROR_RESPONSES, summary="Is it up, and how busy")
    async def health():
        rig = perception.rig
        return {"status": "ok", "version": __version__, "backend": str(perception.config.segment.backend),
                "gripper": str(perception.gripper.name),
                "rig": {"set": rig is not None, "name": None if rig is None else rig.name,
                        "hand_eye_calibrated": rig is not None and rig.tcp_from_camera is not None,
                        "image_size_wh": None if rig is None else list(rig.intrinsics.size)},
                "queue": {"depth": worker.depth, "max": worker.max_queue, "busy": worker.busy},
                "limits": {"max_upload_bytes": max_upload_bytes, "max_frame_pixels": max_px()},
                "auth": token is not None}

    @app.get("/rig", response_model=RigResponse, responses=ERROR_RESPONSES, summary="The rig in use")
    async def get_rig():
        return _rig_doc(perception.rig)

    @app.put("/rig", response_model=RigResponse, responses=ERROR_RESPONSES,
             summary="Use this camera rig (the rig YAML's fields) from the next request on")
    async def put_rig(body: RigSpec):
        try:
            rig = CameraRig.from_dict(body.model_dump(exclude_none=True), source="rig")
            await asyncio.wrap_future(worker.submit(lambda: perception.set_rig(rig)))
            return _rig_doc(rig)
        except Exception as e:
            return error_response(e)

    @app.delete("/rig", response_model=RigResponse, responses=ERROR_RESPONSES,
                summary="Forget the rig: poses in the camera frame from the next request on")
    async def delete_rig():
        try:
            await asyncio.wrap_future(worker.submit(lambda: perception.set_rig(None)))
            return _rig_doc(None)
        except Exception as e:
            return error_response(e)

    multipart_body = {"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["color", "depth", "request"], "properties": {
            "color": {"type": "string", "format": "binary", "description": "8-bit PNG or JPEG, RGB"},
            "depth": {"type": "string", "format": "binary",
                      "description": "16-bit single-channel PNG of raw units (metres = raw x depth_scale)"},
            "mask": {"type": "string", "format": "binary", "description": "optional coarse-mask prompt PNG"},
            "request": {"$ref": "#/components/schemas/PerceiveOptions"}}},
        "encoding": {"request": {"contentType": "application/json"}, "depth": {"contentType": "image/png"},
                     "color": {"contentType": "image/png, image/jpeg"}, "mask": {"contentType": "image/png"}},
    }}}}

    @app.post("/perceive", response_model=PerceiveResponse, responses=ERROR_RESPONSES, openapi_extra=multipart_body,
              summary="Grasps for one frame sent as PNG/JPEG files (multipart/form-data)")
    async def perceive(request: Request):
        try:
            worker.check_capacity()
            body = await request.body()
            job = await run_in_threadpool(_prepare_multipart, body, request.headers.get("content-type", ""), max_px())
            return await run_plan(job)
        except Exception as e:
            return error_response(e)

    @app.post("/perceive/arrays", response_model=PerceiveResponse, responses=ERROR_RESPONSES,
              summary="Grasps for one frame sent as base64 raw arrays (JSON)")
    async def perceive_arrays(body: PerceiveArraysRequest):
        try:
            worker.check_capacity()
            job = await run_in_threadpool(_prepare_arrays, body, max_px())
            return await run_plan(job)
        except Exception as e:
            return error_response(e)

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            extra = PerceiveOptions.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in extra.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas["PerceiveOptions"] = extra
            if token is not None:
                doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
                for path_item in doc.get("paths", {}).values():
                    for op in path_item.values():
                        op["security"] = [{"bearer": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    app.add_middleware(_Guard, token=token, max_upload_bytes=max_upload_bytes)
    return app


# --------------------------------------------------------------------------------------------------
# serving
# --------------------------------------------------------------------------------------------------
def bind_socket(host: str = "127.0.0.1", port: int = 0, *, token: str | None = None) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (0 = a free port); refuses non-loopback without a token."""
    check_bind(host, token)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be 0 (any free port) to 65535, got {port!r}")
    h = host.strip().strip("[]")
    try:
        family, _, _, _, addr = socket.getaddrinfo(h, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise ConfigError(f"cannot resolve host {host!r}: {e.strerror}; give an address such as 127.0.0.1") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app, *, log_level: str = "warning", access_log: bool = False, on_started=None):
    """A ``uvicorn.Server`` for ``app`` (run it with ``server.run(sockets=[sock])``).

    ``on_started()`` is called once it accepts connections. uvicorn logs through the standard ``logging``
    configuration (``log_config=None``): nothing of it goes to stdout.
    """
    try:
        import uvicorn
    except ImportError as e:
        raise MissingDependencyError("uvicorn", "service", "the perception service (graspseg serve)") from e

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_started is not None:
                on_started()

    config = uvicorn.Config(app, log_config=None, log_level=log_level, access_log=access_log, lifespan="on",
                            timeout_graceful_shutdown=10)
    return _Server(config)


class ServerThread:
    """The service on loopback in a background thread (tests, benchmarks, embedding in a Python program).

    >>> with ServerThread(perception) as server:            # doctest: +SKIP
    ...     PerceptionClient(server.url).health()
    """

    def __init__(self, perception, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 startup_timeout_s: float = 30.0, **app_kw) -> None:
        self.sock = bind_socket(host, port, token=token)
        self.url = socket_url(self.sock)
        self.app = create_app(perception, token=token, **app_kw)
        self._started = threading.Event()
        self.server = make_server(self.app, on_started=self._started.set)
        self._thread = threading.Thread(target=self._serve, name="graspseg-service", daemon=True)
        self._timeout_s = startup_timeout_s
        self._error: BaseException | None = None

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as e:  # reported by start()
            self._error = e
        finally:
            self._started.set()

    def start(self) -> ServerThread:
        self._thread.start()
        t0 = time.monotonic()
        while not self._started.wait(0.05):
            if time.monotonic() - t0 > self._timeout_s:
                raise ServiceClosedError(f"the service did not start within {self._timeout_s:.0f} s")
        if self._error is not None or not self.server.started:
            raise ServiceClosedError(f"the service failed to start: {self._error!r}")
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout_s)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
