"""Compare two bench ``results.jsonl`` files record by record (e.g. the ``quick`` suite before
and after a change that must not move the numbers beyond seed noise).

    python tools/compare_results.py runs/before/results.jsonl runs/after/results.jsonl

Records are matched on everything that identifies them (data set, method, seed, target,
factors, protocol, metric, missing modalities, noise level); per protocol and metric it
prints how many matched, how many changed and the largest and mean absolute change, then the
largest changes. Exit 1 when the two files do not hold the same records.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from mmfactor.bench import read_records

KEY_FIELDS = (
    "dataset",
    "bench_target",
    "method",
    "seed",
    "target",
    "factors",
    "protocol",
    "metric",
    "missing",
    "noise",
)


def record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(json.dumps(record.get(k), sort_keys=True) for k in KEY_FIELDS)


def read(path: Path) -> dict[tuple[Any, ...], float | None]:
    return {record_key(r): r["value"] for r in read_records(path)}


def change(a: float | None, b: float | None) -> float:
    """``|b - a|``; for a value that is not a number (NaN, infinite, or null: missing), 0
    when both are the same such value, else infinite."""
    if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
        return abs(b - a)
    return 0.0 if str(a) == str(b) else math.inf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--top", type=int, default=10, help="largest changes to list")
    args = parser.parse_args(argv)
    before, after = read(args.before), read(args.after)
    only = {"before": before.keys() - after.keys(), "after": after.keys() - before.keys()}
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    changes = []
    for key in before.keys() & after.keys():
        a, b = before[key], after[key]
        diff = change(a, b)
        fields = dict(zip(KEY_FIELDS, key, strict=True))
        groups[(json.loads(fields["protocol"]), json.loads(fields["metric"]))].append(diff)
        changes.append((diff, a, b, fields))
    print(f"{len(before)} records before, {len(after)} after, {len(changes)} matched")
    print("| protocol | metric | records | changed | max abs change | mean abs change |")
    print("|---|---|---|---|---|---|")
    for (protocol, metric), diffs in sorted(groups.items()):
        changed = sum(d > 0 for d in diffs)
        print(
            f"| {protocol} | {metric} | {len(diffs)} | {changed} | {max(diffs):.4f} | "
            f"{sum(diffs) / len(diffs):.4f} |"
        )
    print(f"\nLargest {args.top} changes:")
    for diff, a, b, fields in sorted(changes, key=lambda c: -c[0])[: args.top]:
        what = " ".join(
            f"{k}={json.loads(v)}" for k, v in fields.items() if json.loads(v) not in (None, [])
        )
        print(f"  {diff:.4f}  {_number(a)} -> {_number(b)}  {what}")
    for side, keys in only.items():
        if keys:
            print(f"{len(keys)} records only {side}, e.g. {sorted(keys)[0]}")
    return 1 if any(only.values()) else 0


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
