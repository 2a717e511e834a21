"""MultiBench's affect pickles (Liang et al., NeurIPS 2021 Datasets): CMU-MOSI (``mosi_raw.pkl``,
``mosi_data.pkl``), CMU-MOSEI (``mosei_senti_data.pkl``, ``mosei_raw.pkl``), UR-FUNNY
(``humor.pkl``) and MUStARD (``sarcasm.pkl``).

Format: a dict with ``train`` / ``valid`` / ``test``, each a dict of ``vision`` ``(N, T, Dv)``,
``audio`` ``(N, T, Da)``, ``text`` ``(N, T, 300)`` (GloVe), ``labels`` ``(N, 1, 1)`` and an
optional ``id``. The three modalities are word-aligned on ``T = 50`` steps with **zero padding
at the front**.

What the loader does with it:

- sequences become end-padded with per-sample lengths (the data contract): a sample's
  first real step is the first step at which any modality is non-zero;
- a sample whose text is all zeros is empty; empty samples are dropped and counted (a
  warning, and ``info["notes"]``), as MultiBench's loaders do;
- ``-inf`` in audio (COVAREP's log energy of silence) becomes 0; any other NaN/inf is an
  error naming file, split and key;
- labels: sentiment files (MOSI, MOSEI: values in [-3, 3]) get the targets of
  :func:`~mmfactor.data.files.sentiment_targets`: ``sentiment`` (regression, the default,
  scored with the sentiment metrics), ``binary-ge0`` (``y >= 0``: FactorCL's and MFM's
  convention), ``binary-gt0`` (``y > 0``: MultiBench's) and ``sentiment7``. Binary files
  (UR-FUNNY, MUStARD: 0/1) get one classification target ``label``;
- ids are kept in ``data.meta["id"]`` as strings: MOSI's strings as they are, MulT-style
  ``(N, 3)`` rows ``[video, start, end]`` (possibly bytes) as ``video`` with
  ``meta["start"]`` / ``meta["end"]``, and UR-FUNNY / MUStARD numeric rows by their first
  entry.

The pickle is read by :func:`~mmfactor.data.safe_pickle.load_pickle`, which runs no code
from the file and reads NumPy 1.x and Python 2 pickles.

Example:
    >>> import mmfactor as mf
    >>> data = mf.datasets.load("multibench", path="mosi_raw.pkl")  # doctest: +SKIP
    >>> data.modality_names, data.default_target  # doctest: +SKIP
    (['text', 'audio', 'vision'], 'sentiment')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmfactor.data.dataset import MultimodalDataset, Target
from mmfactor.data.files import (
    SplitFields,
    as_text,
    assemble,
    check_options,
    front_to_end,
    read_splits,
    sentiment_targets,
    warn_notes,
)
from mmfactor.data.safe_pickle import load_pickle
from mmfactor.errors import InputError

MODALITIES = ("text", "audio", "vision")
LABELS = ("auto", "sentiment", "binary")

#: (Dv, Da) -> the files that have them, for ``data inspect``.
FAMILIES = {
    (35, 74): "CMU-MOSI raw / CMU-MOSEI (mosi_raw.pkl, mosei_*.pkl)",
    (20, 5): "CMU-MOSI (mosi_data.pkl)",
    (371, 81): "UR-FUNNY / MUStARD (humor.pkl, sarcasm.pkl)",
}


def load_multibench(
    path: str,
    modalities: list[str] | None = None,
    labels: str = "auto",
    drop_empty: bool = True,
) -> MultimodalDataset:
    """A MultiBench affect pickle as a data set of three aligned sequence modalities.

    Args:
        path: the ``.pkl`` file.
        modalities: a subset of ``text``, ``audio``, ``vision`` (default: all three).
        labels: ``sentiment`` (continuous, in [-3, 3]), ``binary`` (0/1) or ``auto`` (binary
            when every label is 0 or 1).
        drop_empty: drop samples whose text is all zeros (MultiBench's rule); with False they
            are kept, with every modality marked absent when no modality has a real step.

    Raises:
        InputError: one line naming the file, split and key at fault.
    """
    chosen = check_options("multibench", modalities, MODALITIES, labels=(labels, LABELS))
    doc = load_pickle(path)
    notes: list[str] = []
    parts, dropped = {}, {}
    for fields in read_splits(path, doc):
        parts[fields.split], dropped[fields.split] = _read_split(fields, chosen, drop_empty)
        notes += fields.notes
    y = np.concatenate([p["y:labels"] for p in parts.values()])
    if labels == "auto":
        labels = "binary" if np.isin(y, (0.0, 1.0)).all() else "sentiment"
    if labels == "binary" and not np.isin(y, (0.0, 1.0)).all():
        raise InputError(f"{path}: key 'labels': labels='binary' but values other than 0/1")

    def make_targets(cols: dict[str, np.ndarray]) -> dict[str, Target]:
        if labels == "sentiment":
            return sentiment_targets(cols["labels"])
        values = cols["labels"].astype(np.int64)
        return {"label": Target("label", values, "classification", ("0", "1"))}

    first = parts["train"]
    dims = (first["x:vision"].shape[2], first["x:audio"].shape[2]) if len(chosen) == 3 else None
    info = {
        "path": str(path),
        "format": "multibench",
        "family": FAMILIES.get(dims, "unknown (dimensions of no known file)")
        if dims
        else "(a modality subset)",
        "labels": labels,
        "dropped_empty": dropped,
        "notes": notes,
    }
    if sum(dropped.values()):
        counts = ", ".join(f"{s} {k}" for s, k in dropped.items())
        warn_notes(Path(path).name, [f"dropped {sum(dropped.values())} empty samples ({counts})"])
    return assemble("multibench", parts, make_targets, info)


def _read_split(
    fields: SplitFields, chosen: list[str], drop_empty: bool
) -> tuple[dict[str, np.ndarray], int]:
    """The split's columns for :func:`~mmfactor.data.files.assemble`, and how many empty
    samples were dropped."""
    raw = {m: fields.features(m, 3, neg_inf_to_zero=m == "audio") for m in MODALITIES}
    y = fields.array("labels", (1, 2, 3))
    n = fields.same_n({**raw, "labels": y})
    steps = {m: x.shape[1] for m, x in raw.items()}
    if len(set(steps.values())) > 1:
        odd = next(m for m in MODALITIES if steps[m] != steps["text"])
        raise fields.error(odd, f"{steps[odd]} steps, but 'text' has {steps['text']} (aligned)")
    if y.size != n:
        raise fields.error("labels", f"expected one label per sample (N, 1, 1), got {y.shape}")
    y = y.reshape(n).astype(np.float32)
    if not np.isfinite(y).all():
        raise fields.error("labels", "NaN or infinite labels")

    t = steps["text"]
    real = np.zeros(raw["text"].shape[:2], dtype=bool)
    for x in raw.values():
        real |= np.any(x != 0, axis=2)
    empty = ~np.any(raw["text"] != 0, axis=2).any(axis=1)
    start = np.where(real.any(axis=1), real.argmax(axis=1), t)
    lengths = t - start
    keep = ~empty if drop_empty else np.ones(n, dtype=bool)
    if empty.any():
        what = "dropped" if drop_empty else "kept, marked absent"
        fields.notes.append(f"split {fields.split!r}: {int(empty.sum())} empty samples {what}")
    if not keep.any():
        raise fields.error("text", "every sample is empty (all-zero text)")

    out = {f"x:{m}": front_to_end(raw[m][keep], lengths[keep]) for m in chosen}
    # Every modality shares the word steps. A kept empty sample has length 0: assemble()
    # marks it absent in every modality.
    out |= {f"lengths:{m}": lengths[keep] for m in chosen}
    out["y:labels"] = y[keep]
    if "id" in fields:
        out |= {f"meta:{k}": v[keep] for k, v in _ids(fields, n).items()}
    return out, int(empty.sum()) if drop_empty else 0


def _ids(fields: SplitFields, n: int) -> dict[str, np.ndarray]:
    ids = fields.array("id", (1, 2), numeric=False)
    if len(ids) != n:
        raise fields.error("id", f"{len(ids)} ids for {n} samples")
    if ids.ndim == 1:
        return {"id": as_text(ids)}
    if np.issubdtype(ids.dtype, np.number):  # UR-FUNNY / MUStARD: the key is the first entry
        key = ids[:, 0]
        if np.issubdtype(key.dtype, np.floating) and np.all(key == np.round(key)):
            key = key.astype(np.int64)
        return {"id": as_text(key)}
    if ids.shape[1] != 3:
        raise fields.error(
            "id", f"expected (N,) ids or (N, 3) [video, start, end], got {ids.shape}"
        )
    out = {"id": as_text(ids[:, 0])}
    for col, name in ((1, "start"), (2, "end")):
        try:
            out[name] = as_text(ids[:, col]).astype(np.float64)
        except ValueError:
            raise fields.error("id", f"column {col} ({name}) is not a number") from None
    return out
