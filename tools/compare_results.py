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
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from mmfactor.bench.runner import read_records

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


def read(path: Path) -> dict[tuple[Any, ...], float]:
    return {record_key(r): r["value"] for r in read_records(path)}


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
        diff = abs(b - a) if a is not None and b is not None else float("inf")
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
        print(f"  {diff:.4f}  {a:.4f} -> {b:.4f}  {what}")
    for side, keys in only.items():
        if keys:
            print(f"{len(keys)} records only {side}, e.g. {sorted(keys)[0]}")
    return 1 if any(only.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
