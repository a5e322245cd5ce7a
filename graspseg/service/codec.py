"""Bytes on the wire ↔ graspseg objects, for the service and its client (numpy, OpenCV, Pillow only).

Two ways to send a frame:

* **PNG/JPEG files** in a ``multipart/form-data`` body: ``color`` (8-bit PNG or JPEG, RGB), ``depth``
  (16-bit single-channel PNG of raw units, metres = raw × ``depth_scale``), optional ``mask`` (PNG, non-zero
  = object, a coarse-mask prompt) and the JSON part ``request``;
* **raw arrays** in JSON: ``{"data_b64": base64 of the C-order little-endian bytes, "shape": [H, W(, 3)],
  "dtype": "uint8" | "uint16" | "float32"}``.

Image sizes are read from the file header or the declared shape and checked against
``limits.max_frame_pixels`` *before* anything is decoded (:class:`PayloadTooLargeError`).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import secrets
from dataclasses import dataclass
from email.message import Message

import cv2
import numpy as np

from ..capture.frame_folder import MIN_MAX_DEPTH_M
from ..core.camera import CameraIntrinsics, check_depth_scale
from ..core.errors import InputError, ShapeError, UnitsError
from ..core.frame import RGBDFrame
from ..core.transform import BASE, TCP, Transform
from .errors import MalformedRequestError, PayloadTooLargeError

#: dtype names accepted for raw arrays → the little-endian numpy dtype.
ARRAY_DTYPES = {"uint8": np.dtype("<u1"), "uint16": np.dtype("<u2"), "float32": np.dtype("<f4")}
#: Multipart parts: the frame's files and the JSON request.
PART_NAMES = ("color", "depth", "mask", "request")


# --------------------------------------------------------------------------------------------------
# multipart/form-data
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """One part of a ``multipart/form-data`` body."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str = ""


def _header_params(value: str, header: str = "content-type") -> Message:
    m = Message()
    m[header] = value
    return m


def parse_multipart(body: bytes, content_type: str) -> dict[str, Part]:
    """Split a fully received ``multipart/form-data`` body into its parts, by name (RFC 7578).

    Raises
    ------
    MalformedRequestError
        Not multipart, no boundary, a part without a name, a repeated name, or a body that does not end
        with the closing boundary.
    """
    ctype = _header_params(content_type or "")
    if ctype.get_content_type() != "multipart/form-data":
        raise MalformedRequestError(
            f"content type is {content_type or 'missing'!r}; POST /perceive takes multipart/form-data with the parts "
            "color, depth and request (curl -F color=@color.png -F depth=@depth.png -F request=@request.json), "
            "or use POST /perceive/arrays for JSON"
        )
    boundary = ctype.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 200:
        raise MalformedRequestError("multipart/form-data content type has no boundary parameter")
    delim = b"--" + boundary.encode("latin-1")
    pos = body.find(delim)
    if pos < 0 or (pos > 0 and body[pos - 2:pos] != b"\r\n"):
        raise MalformedRequestError("multipart body does not contain its boundary; the body is not the one announced")
    pos += len(delim)
    parts: dict[str, Part] = {}
    while True:
        if body[pos:pos + 2] == b"--":
            return parts
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            raise MalformedRequestError("multipart body is cut short or malformed after a boundary")
        start = eol + 2
        end = body.find(b"\r\n" + delim, start)
        if end < 0:
            raise MalformedRequestError("multipart body does not end with its closing boundary (cut short?)")
        raw = body[start:end]
        if raw.startswith(b"\r\n"):
            head, data = b"", raw[2:]
        else:
            split = raw.find(b"\r\n\r\n")
            if split < 0:
                raise MalformedRequestError("a multipart part has no blank line between its headers and its data")
            head, data = raw[:split], raw[split + 4:]
        headers = _part_headers(head)
        disp = _header_params(headers.get("content-disposition", ""), "content-disposition")
        name = disp.get_param("name", header="content-disposition")
        if disp.get_content_disposition() != "form-data" or not isinstance(name, str) or not name:
            raise MalformedRequestError("a multipart part has no Content-Disposition: form-data; name=\"...\" header")
        if name in parts:
            raise MalformedRequestError(f"multipart part {name!r} appears twice; send each part once")
        filename = disp.get_param("filename", header="content-disposition")
        parts[name] = Part(name, data, filename if isinstance(filename, str) else None,
                           headers.get("content-type", ""))
        pos = end + 2 + len(delim)


def _part_headers(head: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.split(b"\r\n"):
        if not line.strip():
            continue
        key, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise MalformedRequestError(f"malformed multipart part header {line[:60]!r}")
        out[key.strip().lower()] = value.strip()
    return out


def build_multipart(parts: list[Part]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its content type (the boundary is random and checked absent)."""
    while True:
        boundary = "graspseg-" + secrets.token_hex(16)
        delim = b"--" + boundary.encode()
        if not any(delim in p.data for p in parts):
            break
    chunks = []
    for p in parts:
        disp = f'form-data; name="{p.name}"' + (f'; filename="{p.filename}"' if p.filename else "")
        head = f"Content-Disposition: {disp}\r\n" + (f"Content-Type: {p.content_type}\r\n" if p.content_type else "")
        chunks += [delim, b"\r\n", head.encode(), b"\r\n", p.data, b"\r\n"]
    chunks += [delim, b"--\r\n"]
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def parse_json(data: bytes, what: str) -> object:
    """``json.loads`` with :class:`MalformedRequestError` naming ``what`` and the position."""
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise MalformedRequestError(f"{what} is not UTF-8 text; send JSON") from None
    except json.JSONDecodeError as e:
        raise MalformedRequestError(f"{what} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None


# --------------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------------
def check_frame_size(max_frame_pixels: int, width: int, height: int, what: str = "frame") -> None:
    """Refuse a ``width`` × ``height`` image above ``max_frame_pixels`` (:class:`PayloadTooLargeError`)."""
    if width * height > max_frame_pixels:
        raise PayloadTooLargeError(
            f"{what} is {width}x{height} = {width * height} pixels, above the server's limits.max_frame_pixels = "
            f"{max_frame_pixels}; downscale it (and its intrinsics) or start the server with "
            f"--limits.max_frame_pixels={width * height}"
        )


def image_size(data: bytes, what: str) -> tuple[int, int]:
    """(width, height) from an image file's header, without decoding its pixels."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format not in ("PNG", "JPEG"):
                raise InputError(f"the {what} part is a {im.format} image; send PNG (or JPEG for colour)")
            return im.size
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise InputError(f"the {what} part ({len(data)} bytes) is not a readable PNG/JPEG image") from None


def _imdecode(data: bytes, what: str) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"the {what} part ({len(data)} bytes) is not a readable PNG/JPEG image (corrupt or cut short?)")
    return img


def decode_color(data: bytes, max_frame_pixels: int) -> np.ndarray:
    """An 8-bit PNG/JPEG as (H, W, 3) RGB uint8 (grey repeated, alpha dropped), size checked first."""
    check_frame_size(max_frame_pixels, *image_size(data, "color"), "color image")
    img = _imdecode(data, "color")
    if img.dtype != np.uint8:
        raise InputError(f"the color image is {img.dtype}; expected 8-bit RGB (PNG or JPEG)")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def decode_depth(data: bytes, max_frame_pixels: int) -> np.ndarray:
    """A 16-bit single-channel PNG of raw depth units as (H, W) uint16, size checked first."""
    check_frame_size(max_frame_pixels, *image_size(data, "depth"), "depth image")
    img = _imdecode(data, "depth")
    if img.ndim != 2:
        raise InputError(f"the depth image has {img.shape[2]} channels; expected a single-channel 16-bit PNG of raw "
                         "depth units (a colour image sent as depth?)")
    if img.dtype != np.uint16:
        raise InputError(f"the depth image is {img.dtype}; expected a 16-bit PNG of raw depth units (0 = no reading), "
                         "with depth_scale in the request")
    return img


def decode_mask(data: bytes, max_frame_pixels: int) -> np.ndarray:
    """A mask PNG (any non-zero pixel in any channel is inside) as (H, W) bool."""
    check_frame_size(max_frame_pixels, *image_size(data, "mask"), "mask image")
    img = _imdecode(data, "mask")
    if img.ndim == 3:
        img = img[:, :, :3].max(axis=2)
    return img > 0


#: PNG writer settings of :func:`encode_png`: ``0`` stores the pixels uncompressed and unfiltered (about
#: 1 ms for 640x480, the right choice on loopback or a wired link); 1-9 trade time for bytes.
FAST_PNG_COMPRESSION = 0


def encode_png(image: np.ndarray, compression: int = FAST_PNG_COMPRESSION) -> bytes:
    """PNG bytes of an (H, W, 3) RGB uint8, (H, W) uint16 or (H, W) bool image."""
    img = np.asarray(image)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)  # OpenCV writes BGR
    if not 0 <= int(compression) <= 9:
        raise InputError(f"PNG compression must be 0 (none, fastest) to 9 (smallest), got {compression}")
    params = [cv2.IMWRITE_PNG_COMPRESSION, int(compression)]
    if int(compression) == 0:
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img), params)
    if not ok:
        raise InputError(f"cannot encode an image of shape {img.shape} and dtype {img.dtype} as PNG")
    return buf.tobytes()


def depth_to_raw(depth_m: np.ndarray, depth_scale: float) -> np.ndarray:
    """Depth in metres as raw uint16 units of ``depth_scale`` m (the inverse of ``raw * depth_scale``)."""
    s = check_depth_scale(depth_scale)
    raw = np.rint(np.asarray(depth_m, np.float32) / np.float32(s))  # exact for depth made as raw * scale
    if raw.size and raw.max() > np.iinfo(np.uint16).max:
        raise UnitsError(f"depth reaches {float(np.max(depth_m)):.2f} m, beyond the {65535 * s:.2f} m that 16 bits of "
                         f"{s:g} m hold; use a coarser depth_scale (e.g. 0.001)")
    return raw.astype(np.uint16)


# --------------------------------------------------------------------------------------------------
# raw arrays
# --------------------------------------------------------------------------------------------------
def encode_array(a: np.ndarray) -> dict:
    """``{"data_b64", "shape", "dtype"}`` of an array (uint8, uint16, float32, or bool as uint8)."""
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    name = {np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "uint16", np.dtype(np.float32): "float32"}.get(a.dtype)
    if name is None:
        raise ShapeError(f"arrays are sent as uint8, uint16 or float32, got {a.dtype}")
    data = np.ascontiguousarray(a, dtype=ARRAY_DTYPES[name]).tobytes()
    return {"data_b64": base64.b64encode(data).decode("ascii"), "shape": list(a.shape), "dtype": name}


def array_hw(spec: dict, what: str) -> tuple[int, int]:
    """The (width, height) an array declares, before its data is decoded."""
    shape = spec["shape"]
    if len(shape) not in (2, 3) or any(int(n) < 1 for n in shape):
        raise ShapeError(f"{what} shape {list(shape)} must be [H, W] or [H, W, C] with positive sizes")
    return int(shape[1]), int(shape[0])


def decode_array(spec: dict, what: str, *, dtypes: tuple[str, ...], shapes: str,
                 channels: tuple[int, ...] | None = None) -> np.ndarray:
    """Decode ``{"data_b64", "shape", "dtype"}``; the byte count must equal the declared shape × dtype."""
    dtype_name, shape = spec["dtype"], [int(n) for n in spec["shape"]]
    if dtype_name not in dtypes:
        raise ShapeError(f"{what} has dtype {dtype_name!r}; expected {' or '.join(dtypes)} ({shapes})")
    array_hw(spec, what)
    if channels is None and len(shape) != 2:
        raise ShapeError(f"{what} shape {shape} must be [H, W] ({shapes})")
    if channels is not None and (len(shape) != 3 or shape[2] not in channels):
        raise ShapeError(f"{what} shape {shape} must be [H, W, 3] ({shapes})")
    try:
        data = base64.b64decode(spec["data_b64"], validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequestError(f"{what}.data_b64 is not valid base64 (standard alphabet, padded)") from None
    dtype = ARRAY_DTYPES[dtype_name]
    want = int(np.prod(shape)) * dtype.itemsize
    if len(data) != want:
        raise ShapeError(f"{what} holds {len(data)} bytes but shape {shape} of {dtype_name} needs {want}; send the "
                         "C-order (row-major) little-endian bytes of exactly that array")
    return np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


# --------------------------------------------------------------------------------------------------
# frames, prompts, poses
# --------------------------------------------------------------------------------------------------
def build_frame(color: np.ndarray, depth: np.ndarray, *, intrinsics: dict | None, depth_scale: float | None,
                frame_id: str = "", timestamp_s: float = 0.0) -> RGBDFrame:
    """An :class:`RGBDFrame` from decoded images: raw integer depth with ``depth_scale``, or float32 metres.

    Raises
    ------
    ConfigError, ShapeError, UnitsError
        No intrinsics or depth scale, images and intrinsics of different sizes, implausible values.
    """
    if intrinsics is None:
        raise InputError("the request has no intrinsics; a frame needs the colour camera's width, height, fx, fy, "
                         "cx, cy (pixels), e.g. the frame folder's camera.json")
    intr = CameraIntrinsics.from_dict(intrinsics, source="intrinsics")
    if np.issubdtype(depth.dtype, np.integer):
        if depth_scale is None:
            raise InputError("raw integer depth needs depth_scale (metres per raw unit: D405 0.0001, D435 0.001) "
                             "in the request")
        s = check_depth_scale(depth_scale, field="depth_scale")
        valid = depth[depth > 0]
        if valid.size and float(valid.max()) * s < MIN_MAX_DEPTH_M:
            raise UnitsError(f"depth reaches only {float(valid.max()) * s * 1000:.3f} mm at depth_scale {s:g} m per unit; "
                             "nothing is that close to a camera: the depth scale is too small")
        return RGBDFrame.from_raw_depth(color, depth, s, intr, frame_id=frame_id, timestamp_s=timestamp_s)
    if depth_scale is not None and depth_scale != 1:
        raise UnitsError(f"depth is float32 metres but depth_scale {depth_scale!r} was given; leave depth_scale out "
                         "(or send uint16 raw units with it)")
    return RGBDFrame(color, depth, intr, timestamp_s, None, frame_id)


def build_pose(d: dict | None) -> Transform | None:
    """``base_from_tcp`` from ``{"matrix": 4x4}`` or ``{"xyz_m", "quat_xyzw"}`` (None stays None)."""
    if d is None:
        return None
    return Transform.from_dict(d, to_frame=BASE, from_frame=TCP, source="base_from_tcp")


def pose_to_dict(t: Transform) -> dict:
    return {"matrix": t.matrix.tolist(), "to_frame": t.to_frame, "from_frame": t.from_frame}
