"""``graspseg serve``: the perception service over HTTP (see ``docs/service.md``).

Prints one JSON line on stdout once it accepts connections (``{"url", "openapi", "docs", "auth", "pid"}``),
then serves until interrupted. Loopback (127.0.0.1) by default; any other address needs a token
(``--token-file FILE`` or ``$GRASPSEG_SERVICE_TOKEN``) or is refused before anything loads (exit 2).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from ..core.errors import ConfigError
from .perceive import _add_pipeline_args, build_pipeline


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve perceive/plan over HTTP to a planner (docs/service.md)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; others need a token)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 = any free port, printed)")
    p.add_argument("--token-file", type=Path,
                   help="file whose first line is the bearer token (default: $GRASPSEG_SERVICE_TOKEN, else none)")
    p.add_argument("--max-queue", type=int, default=None,
                   help="requests that may wait for the model while it works on one (default 8); more get 503")
    p.add_argument("--max-upload-bytes", type=int, default=None,
                   help="largest request body in bytes (default 33554432 = 32 MiB); larger ones get 413")
    _add_pipeline_args(p)
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until stopped (Ctrl-C: exit 130, as every command); 2 when refused (bind without token, port in use,
    bad config)."""
    from ..service.auth import check_bind, load_token

    token = load_token(args.token_file)
    check_bind(args.host, token)  # before the model loads: a refusal costs nothing
    if getattr(args, "tcp_pose", None) is not None:
        raise ConfigError("--tcp-pose does not apply to serve: send each frame's base_from_tcp in its request")
    from ..plugin import GraspPerception
    from ..service.server import (
        DEFAULT_MAX_QUEUE,
        DEFAULT_MAX_UPLOAD_BYTES,
        bind_socket,
        create_app,
        make_server,
        socket_url,
    )

    pipeline = build_pipeline(args)
    perception = GraspPerception(pipeline.config, rig=pipeline.rig, segmenter=pipeline.segmenter)
    app = create_app(perception, token=token,
                     max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES if args.max_upload_bytes is None else args.max_upload_bytes,
                     max_queue=DEFAULT_MAX_QUEUE if args.max_queue is None else args.max_queue)
    sock = bind_socket(args.host, args.port, token=token)
    url = socket_url(sock)

    def announce() -> None:
        print(json.dumps({"url": url, "openapi": f"{url}/openapi.json", "docs": f"{url}/docs",
                          "auth": token is not None, "pid": os.getpid()}), flush=True)
        print(f"graspseg serve: listening on {url} (backend {perception.config.segment.backend}, gripper "
              f"{perception.gripper.name}, rig {'set' if perception.rig else 'none'}); Ctrl-C stops",
              file=sys.stderr, flush=True)

    verbose = getattr(args, "verbose", 0) or 0
    level = "debug" if verbose >= 2 else "info" if verbose == 1 else "warning"
    server = make_server(app, log_level=level, access_log=verbose >= 1, on_started=announce)
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR if getattr(args, "quiet", False) else
                                                 getattr(logging, level.upper()))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        raise ConfigError(f"the service did not start on {url}; rerun with -v for uvicorn's reason")
    return 0
