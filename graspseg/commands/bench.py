"""``graspseg bench <name>``: benchmarks that print their figures as JSON."""

from __future__ import annotations

import importlib

#: Benchmark modules under ``graspseg.bench``; each exposes ``register(bench_subparsers)``.
BENCH_MODULES: tuple[str, ...] = ("latency", "sam_latency", "sim", "quality", "service", "analyze", "capture", "loop")


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks that print numbers (latency, quality, simulated grasping)")
    bench_sub = parser.add_subparsers(dest="bench", metavar="BENCH")
    for name in BENCH_MODULES:
        importlib.import_module(f"graspseg.bench.{name}").register(bench_sub)
    parser.set_defaults(func=lambda args: parser.print_help() or 1)
