"""Show that a change leaves the evaluation's numbers alone: snapshot `evaluate` of one run, then compare.

    python scripts/evaluation_identity.py snapshot RUN before.json [-n 60] [--seed 0] [--instruments full]
    ... change the code ...
    python scripts/evaluation_identity.py snapshot RUN after.json  (same options)
    python scripts/evaluation_identity.py compare before.json after.json [--points-only]

A snapshot is what `evaluation.json` holds (settings, rows, findings, ranking) for every sampler, computed
with write=False so the run is untouched; the rows' wall-clock `seconds` are left out. `compare` exits 1 and
lists every differing field; `--points-only` ignores the interval bounds (`*_low`, `*_high`), for a change
that only moves the bootstrap's random streams.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from latentatlas.io import read_json, to_jsonable, write_json
from latentatlas.pipelines.evaluate import evaluate_run
from latentatlas.store import Run


def snapshot(args: argparse.Namespace) -> int:
    result = evaluate_run(
        Run(args.run), n=args.n, seed=args.seed, instruments=args.instruments, write=False, progress=True
    )
    rows = [{key: value for key, value in row.record().items() if key != "seconds"} for row in result.rows]
    write_json(
        args.out,
        {
            "settings": result.settings,
            "rows": rows,
            "findings": [finding.to_dict() for finding in result.findings],
            "ranking": result.ranking,
        },
    )
    print(f"{len(rows)} rows -> {args.out}")
    return 0


def _differences(old: Any, new: Any, where: str, points_only: bool) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if points_only and (key.endswith("_low") or key.endswith("_high")):
                continue
            if key not in old or key not in new:
                out.append(f"{where}.{key}: only in {'new' if key in new else 'old'}")
                continue
            out += _differences(old[key], new[key], f"{where}.{key}", points_only)
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} items before, {len(new)} after"]
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _differences(a, b, f"{where}[{i}]", points_only)]
    both_nan = isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new)
    return [] if old == new or both_nan else [f"{where}: {old!r} -> {new!r}"]


def compare(args: argparse.Namespace) -> int:
    old, new = to_jsonable(read_json(args.old)), to_jsonable(read_json(args.new))
    if args.points_only:  # findings and ranking sentences quote interval bounds
        for snap in (old, new):
            snap.pop("findings", None), snap.pop("ranking", None)
    found = _differences(old, new, "evaluation", args.points_only)
    for line in found:
        print(line)
    rows = len(new.get("rows", []))
    print(f"{len(found)} differences over {rows} rows" + (" (interval bounds ignored)" if args.points_only else ""))
    return 1 if found else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    snap = commands.add_parser("snapshot")
    snap.add_argument("run")
    snap.add_argument("out")
    snap.add_argument("-n", type=int, default=60)
    snap.add_argument("--seed", type=int, default=0)
    snap.add_argument("--instruments", default="full")
    snap.set_defaults(func=snapshot)
    comp = commands.add_parser("compare")
    comp.add_argument("old")
    comp.add_argument("new")
    comp.add_argument("--points-only", action="store_true")
    comp.set_defaults(func=compare)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
