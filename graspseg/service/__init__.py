"""The perception service: ``graspseg serve`` (FastAPI, extra ``graspseg[service]``) and its client.

The client (:class:`PerceptionClient`) and the errors need only the standard library and graspseg's own
dependencies; :func:`create_app` and :class:`ServerThread` import FastAPI and uvicorn when first used and
raise :class:`~graspseg.core.errors.MissingDependencyError` naming ``graspseg[service]`` when they are absent.
See ``docs/service.md``.
"""

from __future__ import annotations

from .client import PerceptionClient
from .errors import (
    ServiceAuthError,
    ServiceBusyError,
    ServiceConnectionError,
    ServiceError,
    ServiceInternalError,
    ServicePayloadTooLargeError,
    ServiceRequestError,
)

_SERVER_NAMES = ("create_app", "ServerThread", "bind_socket", "make_server")

__all__ = ["PerceptionClient", "ServiceAuthError", "ServiceBusyError", "ServiceConnectionError", "ServiceError",
           "ServiceInternalError", "ServicePayloadTooLargeError", "ServiceRequestError", *_SERVER_NAMES]


def __getattr__(name: str):
    if name in _SERVER_NAMES:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
