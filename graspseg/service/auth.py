"""Who may talk to the service: loopback by default, a bearer token for anything else.

A server bound to a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``) is reachable from this
machine only; binding any other address without a token is refused at start
(:func:`check_bind`). With a token every request but the API description (``/openapi.json``,
``/docs``) must carry ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from ..core.errors import ConfigError

log = logging.getLogger(__name__)

#: Environment variable holding the token when no ``--token-file`` is given.
TOKEN_ENV = "GRASPSEG_SERVICE_TOKEN"
#: Shortest token accepted (characters): a guessable token protects nothing.
MIN_TOKEN_LENGTH = 16
_TOKEN_FIX = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``); False for anything else."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve to anything


def check_token(token: str | None, *, source: str = "token") -> str | None:
    """Validate a token (None = no token): at least :data:`MIN_TOKEN_LENGTH` printable characters, no spaces."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise ConfigError(f"{source} must be a string, got {type(token).__name__}")
    if len(token) < MIN_TOKEN_LENGTH or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(f"{source} must be at least {MIN_TOKEN_LENGTH} printable characters without spaces, "
                          f"got {len(token)} characters; {_TOKEN_FIX}")
    return token


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback ``host`` without a token (:class:`ConfigError`)."""
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(f"host must be an address such as 127.0.0.1, got {host!r}")
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host!r} without a token: anyone who reaches that address could drive the "
            f"robot's perception. Bind 127.0.0.1 (the default), or give a token with --token-file FILE or "
            f"{TOKEN_ENV} ({_TOKEN_FIX})"
        )


def load_token(token_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The token from ``token_file`` (its first line, stripped), else from ``$GRASPSEG_SERVICE_TOKEN``, else None."""
    environ = os.environ if environ is None else environ
    if token_file is not None:
        path = Path(token_file)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ConfigError(f"token file {path} does not exist; write the token into it ({_TOKEN_FIX})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"token file {path} cannot be read as text: {e}") from None
        lines = text.strip().splitlines()
        if not lines:
            raise ConfigError(f"token file {path} is empty; write the token into it ({_TOKEN_FIX})")
        try:
            if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warning("token file %s is readable by other users; chmod 600 it", path)
        except OSError:
            pass
        return check_token(lines[0].strip(), source=f"token in {path}")
    value = environ.get(TOKEN_ENV)
    if value is None or value.strip() == "":
        return None
    return check_token(value.strip(), source=f"${TOKEN_ENV}")


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <token>`` (compared in constant time)."""
    if not authorization:
        return False
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8"))
