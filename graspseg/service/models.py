"""The service's request and response documents as pydantic models (they make its OpenAPI description).

The models check the *structure* (types, lengths, names; strict: ``"5"`` is not 5, ``true`` is not 1);
the values are then checked where the rest of graspseg checks them (:meth:`CameraIntrinsics.from_dict`,
:meth:`Transform.from_dict`, :meth:`CameraRig.from_dict`, :class:`Prompt`), so a request is refused with
the same reasons as the same data in a file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ..core.errors import MissingDependencyError

try:
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as e:  # pragma: no cover - pydantic comes with fastapi
    raise MissingDependencyError("pydantic", "service", "the perception service (graspseg serve)") from e

from ..segment.types import POLICIES

Granularity = Literal[POLICIES]  # type: ignore[valid-type]
Number = float  # strict: ints are accepted for floats, strings and booleans are not
Row4 = Annotated[list[Number], Field(min_length=4, max_length=4)]
PointUV = Annotated[list[Number], Field(min_length=2, max_length=2, description="(u, v) pixels, u = column")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Open(BaseModel):
    """A document whose further keys are judged by the graspseg reader it goes to (with its own message)."""

    model_config = ConfigDict(strict=True, extra="allow")


class Intrinsics(_Open):
    """Colour-camera intrinsics, as in a frame folder's ``camera.json`` (extra keys such as ``source`` ignored)."""

    width: int = Field(gt=0, description="pixels")
    height: int = Field(gt=0, description="pixels")
    fx: Number | None = Field(None, description="pixels")
    fy: Number | None = Field(None, description="pixels")
    cx: Number | None = Field(None, description="pixels")
    cy: Number | None = Field(None, description="pixels")
    K: Annotated[list[Annotated[list[Number], Field(min_length=3, max_length=3)]],
                 Field(min_length=3, max_length=3)] | None = Field(None, description="3x3 camera matrix instead of fx..cy")
    distortion_k1_k2_p1_p2_k3: Annotated[list[Number], Field(max_length=14)] | None = None


class Pose(_Open):
    """A rigid transform: ``matrix`` (4x4, metres) or ``xyz_m`` + ``quat_xyzw``; frames optional."""

    matrix: Annotated[list[Row4], Field(min_length=4, max_length=4)] | None = None
    xyz_m: Annotated[list[Number], Field(min_length=3, max_length=3)] | None = None
    quat_xyzw: Annotated[list[Number], Field(min_length=4, max_length=4)] | None = None
    to_frame: str | None = None
    from_frame: str | None = None


class PromptSpec(_Strict):
    """What to grasp: clicks and/or a box and/or a phrase (a coarse mask travels as the ``mask`` part/array)."""

    points_uv: Annotated[list[PointUV], Field(max_length=64)] = Field(default_factory=list)
    point_labels: Annotated[list[Literal[0, 1]], Field(max_length=64)] | None = Field(
        None, description="1 = on the object (default), 0 = not on it; one per point")
    box_xyxy: Row4 | None = Field(None, description="x0, y0, x1, y1 pixels")
    text: Annotated[str, Field(max_length=200)] | None = Field(None, description="text-capable backends only")


class PerceiveOptions(_Strict):
    """The JSON part ``request`` of ``POST /perceive`` (and the fields ``POST /perceive/arrays`` shares)."""

    intrinsics: Intrinsics | None = Field(None, description="required: the colour camera of this frame")
    depth_scale: Number | None = Field(
        None, description="metres per raw depth unit (D405 0.0001, D435 0.001); required with 16-bit depth")
    prompt: PromptSpec
    base_from_tcp: Pose | None = Field(None, description="the robot's TCP pose at capture (base <- tcp)")
    granularity: Granularity | None = Field(None, description="default: the server's config (whole)")
    max_grasps: int = Field(5, ge=1, le=100)
    compact: bool = Field(True, description="result: accepted grasps only, no per-candidate pixel data")
    top_k: int | None = Field(None, ge=1, le=1000, description="grasps listed in result (default 5 compact)")
    frame_id: Annotated[str, Field(max_length=200)] = ""
    timestamp_s: Number = 0.0


class ArraySpec(_Strict):
    """A raw array: base64 of its C-order little-endian bytes."""

    data_b64: str
    shape: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=3)]
    dtype: Literal["uint8", "uint16", "float32"]


class PerceiveArraysRequest(PerceiveOptions):
    """``POST /perceive/arrays``: colour (H, W, 3) uint8 RGB; depth (H, W) float32 metres or uint16 + depth_scale."""

    color: ArraySpec
    depth: ArraySpec
    mask: ArraySpec | None = Field(None, description="(H, W) uint8 coarse-mask prompt, non-zero = object")


class RigSpec(_Open):
    """A camera rig, the same fields as the rig YAML written by ``graspseg-calibrate``."""

    intrinsics: Intrinsics
    depth_scale: Number
    tcp_from_camera: Pose | None = Field(None, description="tcp <- camera_color_optical (hand-eye calibration)")
    depth_range_m: Annotated[list[Number], Field(min_length=2, max_length=2)] | None = None
    name: str | None = None


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer."""

    error: str = Field(description="the error's type, e.g. ConfigError, PayloadTooLargeError, QueueFullError")
    detail: str = Field(description="one line: what was wrong and how to fix it")


class QueueState(BaseModel):
    depth: int = Field(description="requests waiting for the model")
    max: int = Field(description="waiting requests admitted; one more is answered 503")
    busy: bool = Field(description="the model is working on a request")


class RigState(BaseModel):
    set: bool
    name: str | None = None
    hand_eye_calibrated: bool = False
    image_size_wh: list[int] | None = None


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str
    backend: str
    gripper: str
    rig: RigState
    queue: QueueState
    limits: dict[str, int]
    auth: bool


class RigResponse(BaseModel):
    rig: dict[str, Any] | None = Field(description="the rig in use (CameraRig.to_dict), null when none")
    hand_eye_calibrated: bool


class PerceiveResponse(BaseModel):
    """``response``: graspseg/schemas/grasp_response.schema.json; ``result``: perception_result.schema.json."""

    response: dict[str, Any]
    result: dict[str, Any]
