"""A client for the perception service, on the standard library only (``urllib``): no extra to install.

>>> client = PerceptionClient("http://127.0.0.1:8765")                          # doctest: +SKIP
>>> client.set_rig(CameraRig.load_yaml("rig.yaml"))                             # doctest: +SKIP
>>> doc = client.perceive(frame, Prompt.from_point(352, 280), base_from_tcp=pose)  # doctest: +SKIP
>>> doc["response"]["status"], doc["response"]["grasps"][0]["tcp_target"]       # doctest: +SKIP

Every error answer of the server raises a :class:`~graspseg.service.errors.ServiceError` subclass carrying
the server's ``status``, ``error`` (its type) and ``detail`` (its one-line reason).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from ..core.camera import CameraRig
from ..core.errors import InputError
from ..core.frame import RGBDFrame
from ..core.transform import Transform
from ..segment import Prompt
from . import codec
from .auth import check_token
from .errors import (
    ServiceAuthError,
    ServiceBusyError,
    ServiceConnectionError,
    ServiceError,
    ServiceInternalError,
    ServicePayloadTooLargeError,
    ServiceRequestError,
)

#: Depth scale used to send a frame whose own is unknown (float depth): 0.1 mm, up to 6.5 m.
FALLBACK_DEPTH_SCALE = 1e-4


class PerceptionClient:
    """Talk to ``graspseg serve`` at ``base_url``.

    Parameters
    ----------
    base_url : str
        e.g. ``http://127.0.0.1:8765`` (the ``url`` the server printed).
    token : str, optional
        Sent as ``Authorization: Bearer <token>``.
    timeout_s : float
        Seconds to wait for each answer (queueing included).
    png_compression : int
        0 (default: stored, fastest, right on loopback or a wired link) to 9 (smallest, slowest).

    One client may be used from several threads: each call opens its own connection.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout_s: float = 30.0,
                 png_compression: int = codec.FAST_PNG_COMPRESSION) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InputError(f"base_url must start with http:// or https://, got {base_url!r} "
                             "(e.g. http://127.0.0.1:8765)")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s > 0:
            raise InputError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        if not isinstance(png_compression, int) or not 0 <= png_compression <= 9:
            raise InputError(f"png_compression must be an integer 0 (none) to 9 (smallest), got {png_compression!r}")
        self.base_url = base_url.rstrip("/")
        self.token = check_token(token, source="token")
        self.timeout_s = float(timeout_s)
        self.png_compression = png_compression

    # --- endpoints ------------------------------------------------------------------------------------
    def health(self) -> dict:
        """``GET /health``: status, version, backend, gripper, rig, queue depth, limits."""
        return self._request("GET", "/health")

    def get_rig(self) -> dict:
        """``GET /rig``: ``{"rig": <rig dict or None>, "hand_eye_calibrated": bool}``."""
        return self._request("GET", "/rig")

    def set_rig(self, rig: CameraRig | dict | str | Path | None) -> dict:
        """``PUT /rig`` (a :class:`CameraRig`, its dict, or a rig YAML path); None forgets the rig (``DELETE``)."""
        if rig is None:
            return self._request("DELETE", "/rig")
        if isinstance(rig, str | Path):
            rig = CameraRig.load_yaml(rig)
        if isinstance(rig, CameraRig):
            rig = rig.to_dict()
        if not isinstance(rig, dict):
            raise InputError(f"rig must be a CameraRig, a dict, a rig YAML path or None, got {type(rig).__name__}")
        return self._request("PUT", "/rig", json.dumps(rig).encode(), "application/json")

    def perceive(self, frame: RGBDFrame, prompt: Prompt, *, base_from_tcp: Transform | None = None,
                 granularity: str | None = None, max_grasps: int = 5, compact: bool = True,
                 top_k: int | None = None, encoding: str = "png") -> dict:
        """Grasps for one frame: ``{"response": GraspResponse dict, "result": PerceptionResult dict}``.

        Parameters
        ----------
        frame : RGBDFrame
            Its depth travels as 16-bit PNG at the frame's own depth scale (``frame.meta["depth_scale"]``,
            exact), else at 0.1 mm.
        prompt : Prompt
            Points, box, text and a coarse mask (sent as the ``mask`` part).
        base_from_tcp : Transform, optional
            The TCP pose at capture; defaults to ``frame.base_from_tcp``.
        encoding : {"png", "arrays"}
            ``png``: ``POST /perceive`` (multipart PNG files); ``arrays``: ``POST /perceive/arrays`` (base64
            raw arrays, depth as float32 metres).
        """
        if not isinstance(frame, RGBDFrame):
            raise InputError(f"frame must be an RGBDFrame, got {type(frame).__name__}")
        if not isinstance(prompt, Prompt):
            raise InputError(f"prompt must be a graspseg Prompt (Prompt.from_point(u, v), ...), got "
                             f"{type(prompt).__name__}")
        pose = base_from_tcp if base_from_tcp is not None else frame.base_from_tcp
        options: dict = {"intrinsics": frame.intrinsics.to_dict(), "prompt": prompt.to_dict(),
                         "max_grasps": max_grasps, "compact": compact, "frame_id": frame.frame_id,
                         "timestamp_s": frame.timestamp_s}
        if pose is not None:
            options["base_from_tcp"] = codec.pose_to_dict(pose)
        if granularity is not None:
            options["granularity"] = granularity
        if top_k is not None:
            options["top_k"] = top_k
        if encoding == "arrays":
            options["color"] = codec.encode_array(frame.color)
            options["depth"] = codec.encode_array(frame.depth_m)
            if prompt.mask is not None:
                options["mask"] = codec.encode_array(prompt.mask)
            return self._request("POST", "/perceive/arrays", json.dumps(options).encode(), "application/json")
        if encoding != "png":
            raise InputError(f"encoding must be 'png' or 'arrays', got {encoding!r}")
        scale = (frame.meta or {}).get("depth_scale") or FALLBACK_DEPTH_SCALE
        options["depth_scale"] = float(scale)
        parts = [codec.Part("color", codec.encode_png(frame.color, self.png_compression), "color.png", "image/png"),
                 codec.Part("depth", codec.encode_png(codec.depth_to_raw(frame.depth_m, scale), self.png_compression),
                            "depth.png", "image/png"),
                 codec.Part("request", json.dumps(options).encode(), None, "application/json")]
        if prompt.mask is not None:
            parts.append(codec.Part("mask", codec.encode_png(prompt.mask, self.png_compression), "mask.png",
                                    "image/png"))
        body, content_type = codec.build_multipart(parts)
        return self._request("POST", "/perceive", body, content_type)

    # --- transport ------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> dict:
        url = self.base_url + path
        req = urllib.request.Request(url, data=body, method=method)
        req.add_header("Accept", "application/json")
        if content_type:
            req.add_header("Content-Type", content_type)
        if self.token is not None:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            with e:
                raise _error_from_answer(e.code, e.read(), e.headers, url) from None
        except TimeoutError:
            raise ServiceConnectionError(f"{method} {url}: no answer within {self.timeout_s:g} s; the server may be "
                                         "overloaded (raise timeout_s) or stuck", url=url) from None
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ServiceConnectionError(f"{method} {url}: cannot reach the service ({reason}); is 'graspseg serve' "
                                         "running at that address?", url=url) from None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServiceError(f"{method} {url}: the answer is not JSON ({raw[:80]!r}); is this a graspseg service?",
                               url=url) from None


def _error_from_answer(status: int, raw: bytes, headers, url: str) -> ServiceError:
    """The typed error for an error answer, with the server's type and one-line detail."""
    try:
        doc = json.loads(raw)
        error, detail = str(doc.get("error", "")), str(doc.get("detail", ""))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        error, detail = "", " ".join(raw[:200].decode("utf-8", "replace").split())
    detail = detail or f"HTTP {status}"
    kw = {"status": status, "error": error, "detail": detail, "url": url}
    message = f"service answered {status}{f' {error}' if error else ''}: {detail}"
    if status == 401:
        return ServiceAuthError(message, **kw)
    if status == 413:
        return ServicePayloadTooLargeError(message, **kw)
    if 400 <= status < 500:
        return ServiceRequestError(message, **kw)
    if status == 503:
        retry = headers.get("Retry-After") if headers is not None else None
        try:
            retry_s = float(retry) if retry is not None else None
        except ValueError:
            retry_s = None
        return ServiceBusyError(message, retry_after_s=retry_s, **kw)
    return ServiceInternalError(message, **kw)
