"""``graspseg devices``: the RealSense cameras connected (name, serial, firmware, USB type, optionally modes)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("devices", help="list connected RealSense cameras (serial, firmware, USB type, modes)")
    p.add_argument("--modes", action="store_true", help="also list every stream mode (stream, format, size, fps)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..capture.realsense import CHECK_HARDWARE, list_devices

    devices = list_devices(modes=args.modes)
    print(json.dumps({"count": len(devices), "devices": devices}, indent=2))
    if not args.quiet:
        if not devices:
            print(f"graspseg devices: no RealSense camera found; {CHECK_HARDWARE}", file=sys.stderr)
        for d in devices:
            line = f"{d['name']}  serial {d['serial']}  firmware {d['firmware']}  USB {d['usb_type']}"
            print(line + (f"  WARNING: {d['warning']}" if d.get("warning") else ""), file=sys.stderr)
    return 0
