"""Build the embedded data files shipped in ``src/mmfactor/data/files/`` from the raw CSVs.

Usage::

    python tools/embed_data.py [--source ../shared/data] [--out src/mmfactor/data/files]

Writes (``np.savez_compressed``, float32 features, no pickled objects):

- ``uci_mfeat.npz``: ``fou`` (2000, 76), ``fac`` (2000, 216), ``kar`` (2000, 64),
  ``pix`` (2000, 240), ``zer`` (2000, 47), ``mor`` (2000, 6) float32 and ``digit`` (2000,)
  int64 class labels (rows in the files' order: class order, 200 per digit). Source: UCI
  Machine Learning Repository, Multiple Features, R. Duin, CC BY 4.0.
- ``nutrimouse.npz``: ``gene`` (40, 120) and ``lipid`` (40, 21) float32, ``gene_names``
  (120,) and ``lipid_names`` (21,) strings, ``genotype`` and ``diet`` (40,) strings.
  Source: Martin et al. (2007), Hepatology 45(3):767-777.

Run it only when the raw data changes; the package never reads the CSVs.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MFEAT_VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file (quoted strings unquoted)."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise SystemExit(f"{path}: empty file")
    return rows[0], rows[1:]


def _floats(path: Path, rows: list[list[str]], width: int) -> np.ndarray:
    a = np.array(rows, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != width:
        raise SystemExit(f"{path}: expected {width} columns, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise SystemExit(f"{path}: non-finite values")
    return a


def build_mfeat(source: Path) -> dict[str, np.ndarray]:
    """The six views and the digit labels, checked against the documented sizes."""
    out: dict[str, np.ndarray] = {}
    labels = None
    for view, dim in MFEAT_VIEWS.items():
        path = source / f"mfeat-{view}.csv"
        _, rows = _read_csv(path)
        a = _floats(path, rows, dim + 1)  # the last column is the class
        if a.shape[0] != 2000:
            raise SystemExit(f"{path}: expected 2000 rows, got {a.shape[0]}")
        y = a[:, -1].astype(np.int64)
        if labels is None:
            labels = y
        elif not np.array_equal(labels, y):
            raise SystemExit(f"{path}: class column differs from the other views")
        out[view] = a[:, :-1].astype(np.float32)
    assert labels is not None
    if not np.array_equal(np.bincount(labels), np.full(10, 200)):
        raise SystemExit("uci-mfeat: expected 10 classes x 200 digits")
    out["digit"] = labels
    return out


def build_nutrimouse(source: Path) -> dict[str, np.ndarray]:
    """Gene and lipid matrices with their column names, genotype and diet strings."""
    out: dict[str, np.ndarray] = {}
    for view, dim in (("gene", 120), ("lipid", 21)):
        path = source / f"{view}.csv"
        header, rows = _read_csv(path)
        if len(header) != dim:
            raise SystemExit(f"{path}: expected {dim} columns, got {len(header)}")
        out[view] = _floats(path, rows, dim).astype(np.float32)
        out[f"{view}_names"] = np.array(header, dtype=str)
    for target, classes in (
        ("genotype", {"wt", "ppar"}),
        ("diet", {"coc", "fish", "lin", "ref", "sun"}),
    ):
        path = source / f"{target}.csv"
        header, rows = _read_csv(path)
        values = np.array([r[0] for r in rows], dtype=str)
        if header != [target] or set(values) != classes:
            raise SystemExit(f"{path}: expected column {target!r} with values {sorted(classes)}")
        out[target] = values
    sizes = {k: len(v) for k, v in out.items() if not k.endswith("_names")}
    if set(sizes.values()) != {40}:
        raise SystemExit(f"nutrimouse: expected 40 mice in every file, got {sizes}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "mmfactor" / "data" / "files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, arrays in (
        ("uci_mfeat", build_mfeat(args.source / "uci-mfeat")),
        ("nutrimouse", build_nutrimouse(args.source / "nutrimouse")),
    ):
        path = args.out / f"{name}.npz"
        named: dict[str, Any] = arrays  # (typed as Any: numpy's stub confuses the names)
        np.savez_compressed(path, **named)
        print(
            f"{path}: {path.stat().st_size / 1024:.0f} KiB, "
            + ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in arrays.items())
        )


if __name__ == "__main__":
    main()
