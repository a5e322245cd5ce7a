"""Benchmarks that print numbers (``graspseg bench ...``): speed, segmentation quality, simulated grasping.

Each module here exposes ``register(bench_subparsers)``; :mod:`graspseg.commands.bench` lists them.
Benchmarks may import every stage, like the command line.
"""
