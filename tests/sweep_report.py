"""Count what the bad-input sweep finds: clear refusals, tracebacks and silent acceptances.

Runs every case of ``tests/sweep_cases.py`` through its real entry point (``calibration.cli.main``,
the loaders) and prints one line per group plus the totals, then every case that was not a clear
refusal. Against this checkout::

    PYTHONPATH=. python tests/sweep_report.py

Against an older checkout (the cases only call entry points every version has)::

    PYTHONPATH=/path/to/old/checkout python tests/sweep_report.py

Exit status 1 when any case gave a traceback or was silently accepted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sweep_cases beside this file
from sweep_cases import GROUPS, Context, run_case  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--group", action="append", choices=sorted(GROUPS), help="only these groups (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="also list the refusals")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # library warnings would land in a case's captured stderr
    import graspseg

    print(f"graspseg from {Path(graspseg.__file__).parent}")
    totals: Counter = Counter()
    bad: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="graspseg_sweep_") as tmp:
        ctx = Context(Path(tmp))
        for group, cases in GROUPS.items():
            if args.group and group not in args.group:
                continue
            counts: Counter = Counter()
            for case in cases:
                kind, detail = run_case(case, ctx)
                counts[kind] += 1
                if kind != "refused" or args.verbose:
                    bad.append((kind, case.id, detail))
            totals.update(counts)
            print(f"{group:11s} cases {sum(counts.values()):4d}  refused {counts['refused']:4d}  "
                  f"tracebacks {counts['traceback']:4d}  silent {counts['silent']:4d}")
    print(f"{'TOTAL':11s} cases {sum(totals.values()):4d}  refused {totals['refused']:4d}  "
          f"tracebacks {totals['traceback']:4d}  silent {totals['silent']:4d}")
    for kind, cid, detail in bad:
        print(f"  {kind:9s} {cid}: {detail[:220]}")
    return 1 if totals["traceback"] or totals["silent"] else 0


if __name__ == "__main__":
    sys.exit(main())
