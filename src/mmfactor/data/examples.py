"""Small files in the exact on-disk formats of MultiBench's and MMSA's releases, with a
learnable signal, for trying a pipeline before the real (licensed, non-shippable) files are
at hand, and for the tests.

- :func:`write_multibench`: a MultiBench affect pickle (front-padded word-aligned sequences,
  ``-inf`` in audio, empty samples, the id forms of each family);
- :func:`write_mmsa`: an MMSA ``Processed/*.pkl`` file, aligned or unaligned, MOSI-like or
  SIMS-like (unimodal labels).

Labels depend on the text and audio features, so a model that reads the inputs beats
chance. The values are random; only the layout is real. :func:`planted_sequences` makes an
in-memory data set whose label is set at known time steps, for interpretation checks.

Example:
    >>> import tempfile, pathlib, mmfactor as mf
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mosi_raw.pkl"
    >>> _ = write_multibench(path, sizes=(30, 8, 10), empty=0)
    >>> mf.datasets.load("multibench", path=str(path)).modality_names
    ['text', 'audio', 'vision']
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import InputError
from mmfactor.io import atomic_write

#: family -> (Dv, Da, label kind, id form) of the MultiBench releases.
MULTIBENCH_FAMILIES = {
    "mosi_raw": (35, 74, "sentiment", "string"),
    "mosei": (35, 74, "sentiment", "mult"),
    "mosi_data": (20, 5, "sentiment", "mult"),
    "humor": (371, 81, "binary", "numeric"),
    "sarcasm": (371, 81, "binary", "numeric"),
}
SPLIT_NAMES = ("train", "valid", "test")


def _sentiment(score: np.ndarray) -> np.ndarray:
    """Scores -> MOSI-like labels: in [-3, 3], multiples of 1/3 (averaged annotator
    ratings), with some exact zeros."""
    return np.round(np.clip(3 * np.tanh(score), -3, 3) * 3) / 3


def write_multibench(
    path: str | Path,
    family: str = "mosi_raw",
    sizes: Sequence[int] = (120, 30, 40),
    steps: int = 50,
    empty: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Write a MultiBench affect pickle; returns the object written.

    Args:
        family: a key of :data:`MULTIBENCH_FAMILIES` (dimensions, labels and id form).
        sizes: samples per split (train, valid, test), empty ones included.
        steps: T (50 in the real files).
        empty: all-zero samples per split (MultiBench drops them).
    """
    if family not in MULTIBENCH_FAMILIES:
        raise InputError(f"unknown family {family!r}; families: {', '.join(MULTIBENCH_FAMILIES)}")
    dv, da, label_kind, id_form = MULTIBENCH_FAMILIES[family]
    rng = np.random.default_rng(seed)
    w_text, w_audio = rng.normal(size=300), rng.normal(size=da)
    doc: dict[str, Any] = {}
    for split, n in zip(SPLIT_NAMES, sizes, strict=True):
        lengths = rng.integers(5, steps + 1, size=n)
        lengths[:empty] = 0
        real = np.arange(steps)[None, :] >= (steps - lengths)[:, None]  # front padding
        text = rng.normal(size=(n, steps, 300)) * real[..., None]
        audio = rng.normal(size=(n, steps, da)) * real[..., None]
        audio[(rng.random(audio.shape) < 0.01) & real[..., None]] = -np.inf
        vision = rng.normal(size=(n, steps, dv)) * real[..., None]
        denom = np.maximum(lengths, 1)
        score = (
            text.sum(1) @ w_text / denom / 3
            + np.nan_to_num(audio, neginf=0.0).sum(1) @ w_audio / denom / 6
        )
        y = _sentiment(score) if label_kind == "sentiment" else (score > 0).astype(np.float64)
        doc[split] = {
            "vision": vision.astype(np.float32),
            "audio": audio.astype(np.float32),
            "text": text.astype(np.float32),
            "labels": y.reshape(n, 1, 1).astype(np.float32),
            "id": _ids(id_form, split, n),
        }
    _dump(path, doc)
    return doc


def _ids(form: str, split: str, n: int) -> np.ndarray:
    if form == "string":
        return np.array([f"{split}vid{i // 4}_{i % 4}" for i in range(n)])
    if form == "mult":
        rows = [
            [
                f"{split}vid{i // 4}".encode(),
                str(i % 4 * 2.5).encode(),
                str(i % 4 * 2.5 + 2).encode(),
            ]
            for i in range(n)
        ]
        return np.array(rows, dtype=object)
    return np.stack([np.arange(n) + 1000.0 * SPLIT_NAMES.index(split), np.zeros(n)], 1)


def write_mmsa(
    path: str | Path,
    aligned: bool = False,
    sims: bool = False,
    sizes: Sequence[int] = (60, 16, 20),
    dims: dict[str, int] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write an MMSA ``Processed`` pickle; returns the object written.

    Args:
        aligned: ``aligned_50.pkl`` (audio and vision on the 50 text steps, no length keys)
            or ``unaligned_*.pkl`` (own lengths per modality, ``audio_lengths`` /
            ``vision_lengths``).
        sims: CH-SIMS layout (39 text steps, labels in [-1, 1], unimodal labels
            ``regression_labels_T/A/V``); otherwise MOSI's (unaligned audio 375 x 5,
            vision 500 x 20; labels in [-3, 3]).
        dims: override feature widths/lengths (``text``, ``audio``, ``vision``, ``t_text``,
            ``t_audio``, ``t_vision``) to write a smaller file.
    """
    if sims:
        shape = {
            "text": 768,
            "audio": 33,
            "vision": 709,
            "t_text": 39,
            "t_audio": 400,
            "t_vision": 55,
        }
    else:
        shape = {
            "text": 768,
            "audio": 5,
            "vision": 20,
            "t_text": 50,
            "t_audio": 375,
            "t_vision": 500,
        }
    shape.update(dims or {})
    if aligned:
        shape["t_audio"] = shape["t_vision"] = shape["t_text"]
    rng = np.random.default_rng(seed)
    w_text, w_audio = rng.normal(size=shape["text"]), rng.normal(size=shape["audio"])
    doc: dict[str, Any] = {}
    for split, n in zip(SPLIT_NAMES, sizes, strict=True):
        t_len = rng.integers(4, shape["t_text"] + 1, size=n)
        tokens = np.arange(shape["t_text"])[None, :] < t_len[:, None]
        # BERT features are not zero at padding tokens: only the attention mask tells.
        text = rng.normal(size=(n, shape["t_text"], shape["text"])).astype(np.float32)
        ids = np.where(tokens, rng.integers(1000, 30000, size=tokens.shape), 0)
        ids[:, 0] = 101
        text_bert = np.stack([ids, tokens, np.zeros_like(ids)], 1).astype(np.float32)
        fields: dict[str, Any] = {"text": text, "text_bert": text_bert}
        lens = {}
        for m in ("audio", "vision"):
            t = shape[f"t_{m}"]
            lens[m] = t_len if aligned else rng.integers(1, t + 1, size=n)
            if not aligned:
                lens[m][0] = 0  # a sample without this modality
            real = np.arange(t)[None, :] < lens[m][:, None]
            x = (rng.normal(size=(n, t, shape[m])) * real[..., None]).astype(np.float32)
            if m == "audio":
                x[(rng.random(x.shape) < 0.01) & real[..., None]] = -np.inf
            fields[m] = x
            if not aligned:
                fields[f"{m}_lengths"] = lens[m].tolist()  # MMSA stores Python lists
        score = (text * tokens[..., None]).sum(1) @ w_text / t_len / 3 + np.nan_to_num(
            fields["audio"], neginf=0.0
        ).sum(1) @ w_audio / np.maximum(lens["audio"], 1) / 6
        y = _sentiment(score)
        if sims:
            y = np.round(y / 3, 1)
        fields["regression_labels"] = y.astype(np.float32)
        fields["classification_labels"] = (np.sign(y) + 1).astype(np.float32)
        if sims:
            for m in "TAV":
                noisy = y + rng.normal(scale=0.2, size=n)
                fields[f"regression_labels_{m}"] = np.clip(np.round(noisy, 1), -1, 1).astype(
                    np.float32
                )
        fields["raw_text"] = np.array([f"utterance {i} of {split}" for i in range(n)])
        fields["annotations"] = np.where(y > 0, "Positive", np.where(y < 0, "Negative", "Neutral"))
        fields["id"] = np.array([f"{split}vid{i // 4}$_${i % 4}" for i in range(n)])
        doc[split] = fields
    _dump(path, doc)
    return doc


def _dump(path: str | Path, doc: dict[str, Any]) -> None:
    atomic_write(path, lambda f: pickle.dump(doc, f, protocol=4), durable=False)


def planted_sequences(
    n: int = 1200,
    steps: int = 16,
    dim: int = 4,
    signal_steps: dict[str, Sequence[int]] | None = None,
    amplitude: float = 1.0,
    seed: int = 0,
) -> MultimodalDataset:
    """Two noise sequence modalities whose label shows only at known steps, to check that
    an interpretation finds them.

    ``y`` is a fair coin; at the signal steps of each modality the first feature is shifted
    by ``+-amplitude`` (``+`` for ``y = 1``). Every other step and feature is pure noise.
    Default signal steps: ``x1`` 4-5, ``x2`` 10-11.

    Example:
        >>> data = planted_sequences(n=100)
        >>> data.modalities["x1"].kind, data.info["signal_steps"]["x2"]
        ('sequence', [10, 11])
    """
    from mmfactor.data.arrays import from_arrays

    signal = {k: list(v) for k, v in (signal_steps or {"x1": [4, 5], "x2": [10, 11]}).items()}
    if any(not 0 <= t < steps for v in signal.values() for t in v):
        raise InputError(f"planted_sequences: signal steps must lie in [0, {steps}): {signal}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = {m: rng.normal(size=(n, steps, dim)).astype(np.float32) for m in signal}
    for m, s in signal.items():
        x[m][:, s, 0] += amplitude * (2 * y[:, None] - 1)
    data = from_arrays(x, y=y, seed=seed, name="planted")
    data.info["signal_steps"] = signal
    return data
