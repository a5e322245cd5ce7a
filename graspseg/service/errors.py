"""Errors of the perception service: those the server answers with, and those its client raises.

All derive from :class:`~graspseg.core.errors.GraspsegError` and the matching builtin. The server maps
every error to an HTTP status and a body ``{"error": <type>, "detail": <one line>}``
(:func:`graspseg.service.server.status_for`); the client turns such an answer back into a
:class:`ServiceError` subclass carrying the server's ``status``, ``error`` and ``detail``.
"""

from __future__ import annotations

from ..core.errors import GraspsegError, InputError


# --- raised by the server, answered as 4xx / 5xx ------------------------------------------------------
class MalformedRequestError(InputError):
    """The request cannot be parsed at all: bad JSON, a broken multipart body, invalid base64 (HTTP 400)."""


class PayloadTooLargeError(InputError):
    """An upload above the byte limit, or a frame above ``limits.max_frame_pixels`` (HTTP 413)."""


class AuthenticationError(GraspsegError, PermissionError):
    """A token is configured and the request carries none or another one (HTTP 401)."""


class QueueFullError(GraspsegError, RuntimeError):
    """Every place in the model's queue is taken (HTTP 503 with ``Retry-After``)."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = int(retry_after_s)


class ServiceClosedError(GraspsegError, RuntimeError):
    """The server is shutting down; the request was not run (HTTP 503)."""


# --- raised by the client -------------------------------------------------------------------------
class ServiceError(GraspsegError, RuntimeError):
    """The service answered with an error, or could not be reached.

    Attributes
    ----------
    status : int or None
        HTTP status (None when no answer came).
    error : str
        The server's error type (``"ConfigError"``, ``"QueueFullError"``...), or the client's.
    detail : str
        The server's one-line reason.
    url : str
    """

    def __init__(self, message: str, *, status: int | None = None, error: str = "", detail: str = "",
                 url: str = "") -> None:
        super().__init__(message)
        self.status, self.error, self.detail, self.url = status, error, detail, url


class ServiceRequestError(ServiceError, ValueError):
    """The server refused the request (HTTP 4xx): fix the request, the detail says how."""


class ServiceAuthError(ServiceRequestError):
    """HTTP 401: no token, or the wrong one (``PerceptionClient(token=...)``)."""


class ServicePayloadTooLargeError(ServiceRequestError):
    """HTTP 413: the upload or the frame is above the server's limits."""


class ServiceBusyError(ServiceError):
    """HTTP 503: the model's queue is full (or the server is stopping); retry after ``retry_after_s``."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class ServiceInternalError(ServiceError):
    """HTTP 5xx other than 503: the server failed on a valid request (its log has the traceback)."""


class ServiceConnectionError(ServiceError, ConnectionError):
    """No answer: the server is not running at that address, or did not answer within the timeout."""


class RequestSchemaError(InputError):
    """A request document has the wrong structure: a missing field, a wrong type, an unknown key (HTTP 422)."""
