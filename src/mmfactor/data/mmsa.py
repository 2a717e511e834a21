"""MMSA's processed pickles (Mao et al., ACL 2022 demo): ``MOSI|MOSEI/Processed/
{aligned_50,unaligned_50}.pkl`` and ``SIMS/Processed/unaligned_39.pkl``.

Format: ``train`` / ``valid`` / ``test``, each a dict of ``text`` ``(N, 50, 768)`` BERT token
features, ``text_bert`` ``(N, 3, 50)`` (input ids, attention mask, token type ids), ``audio``
``(N, Ta, Da)``, ``vision`` ``(N, Tv, Dv)``, ``regression_labels``, ``classification_labels``,
``raw_text``, ``annotations``, ``id``; unaligned files add ``audio_lengths`` /
``vision_lengths``; SIMS adds unimodal labels ``regression_labels_T/A/V``.

What the loader does with it:

- text: ``text="features"`` uses the BERT token features; ``text="bert"`` the token ids, as a
  sequence of ``(input id, attention mask, token type id)`` triples ``(N, 50, 3)`` (float32,
  exact for ids below 2**24) for an encoder that runs its own language model. Text lengths
  come from the attention mask (BERT features are not zero at padding tokens), or are the
  full 50 steps when the file has no ``text_bert``;
- unaligned files: audio and vision lengths from ``*_lengths`` (end padding, as MMSA pads).
  A length of 0 marks the modality absent for that sample (presence flag False);
- aligned files have no length keys: audio and vision keep all their steps (zero padding
  included, as MMSA's aligned models see them);
- ``-inf`` in audio becomes 0; any other NaN/inf is an error naming file, split and key;
- targets: from ``regression_labels`` those of :func:`~mmfactor.data.files.sentiment_targets`
  (``sentiment``, the default, scored with the sentiment metrics; ``binary-ge0`` /
  ``has0``; ``binary-gt0``; ``sentiment7``), ``class`` from ``classification_labels``
  (MMSA's negative / neutral / positive), and for SIMS ``sentiment:T`` / ``:A`` / ``:V``
  (the unimodal labels). SIMS labels lie in [-1, 1]: its ``sentiment`` target is a plain
  regression target (Acc-7 on the [-3, 3] scale would be meaningless; SIMS' own Acc-3/5 are
  not implemented) and it has no ``sentiment7``;
- ``raw_text``, ``id`` and ``annotations`` are kept in ``data.meta`` for encoders and
  analyses that want them.

Example:
    >>> import mmfactor as mf
    >>> data = mf.datasets.load("mmsa", path="MOSI/Processed/unaligned_50.pkl")  # doctest: +SKIP
    >>> data.meta["raw_text"][0]  # doctest: +SKIP
    'a lot of sad parts'
"""

from __future__ import annotations

import numpy as np

from mmfactor.data.dataset import MultimodalDataset, Target
from mmfactor.data.files import (
    SplitFields,
    as_text,
    assemble,
    check_options,
    read_splits,
    sentiment_targets,
)
from mmfactor.data.safe_pickle import load_pickle

MODALITIES = ("text", "audio", "vision")
TEXT_FORMS = ("features", "bert")
UNIMODAL = {"T": "sentiment:T", "A": "sentiment:A", "V": "sentiment:V"}
META = {"raw_text": "raw_text", "id": "id", "annotations": "annotation"}


def load_mmsa(
    path: str,
    modalities: list[str] | None = None,
    text: str = "features",
) -> MultimodalDataset:
    """An MMSA processed pickle as a data set of three sequence modalities.

    Args:
        path: the ``.pkl`` file.
        modalities: a subset of ``text``, ``audio``, ``vision`` (default: all three).
        text: ``features`` (BERT token features) or ``bert`` (token ids, see the module doc).

    Raises:
        InputError: one line naming the file, split and key at fault.
    """
    chosen = check_options("mmsa", modalities, MODALITIES, text=(text, TEXT_FORMS))
    doc = load_pickle(path)
    splits = read_splits(path, doc)
    train = splits[0]
    aligned = "audio_lengths" not in train and "vision_lengths" not in train
    sims = all(f"regression_labels_{m}" in train for m in UNIMODAL)
    notes: list[str] = []
    parts = {}
    for fields in splits:
        parts[fields.split] = _read_split(fields, chosen, text, aligned, sims)
        notes += fields.notes

    def make_targets(cols: dict[str, np.ndarray]) -> dict[str, Target]:
        targets = sentiment_targets(cols["regression_labels"])
        if sims:
            del targets["sentiment7"]
            targets["sentiment"].sentiment = False
            for m, name in UNIMODAL.items():
                targets[name] = Target(name, cols[f"regression_labels_{m}"], "regression")
        targets["class"] = Target(
            "class",
            cols["classification_labels"].astype(np.int64),
            "classification",
            ("negative", "neutral", "positive"),
        )
        return targets

    info = {
        "path": str(path),
        "format": "mmsa",
        "aligned": aligned,
        "family": "CH-SIMS" if sims else "CMU-MOSI / CMU-MOSEI",
        "text": text,
        "notes": notes,
    }
    return assemble("mmsa", parts, make_targets, info)


def _read_split(
    fields: SplitFields, chosen: list[str], text: str, aligned: bool, sims: bool
) -> dict[str, np.ndarray]:
    x = {
        "text": fields.features("text", 3),
        "audio": fields.features("audio", 3, neg_inf_to_zero=True),
        "vision": fields.features("vision", 3),
    }
    label_keys = ["regression_labels", "classification_labels"]
    label_keys += [f"regression_labels_{m}" for m in UNIMODAL] if sims else []
    labels = {k: fields.array(k, (1, 2)) for k in label_keys}
    n = fields.same_n({**x, **labels})
    out: dict[str, np.ndarray] = {}
    for key, y in labels.items():
        if y.size != n:
            raise fields.error(key, f"expected one label per sample (N,), got shape {y.shape}")
        y = y.reshape(n).astype(np.float32)
        if not np.isfinite(y).all():
            raise fields.error(key, "NaN or infinite labels")
        out[f"y:{key}"] = y
    classes = out["y:classification_labels"]
    if not np.isin(classes, (0, 1, 2)).all():
        raise fields.error("classification_labels", "expected classes 0, 1, 2")

    lengths = {m: np.full(n, x[m].shape[1], dtype=np.int64) for m in MODALITIES}
    if "text_bert" in fields:
        bert = fields.array("text_bert", 3)
        if bert.shape != (n, 3, x["text"].shape[1]):
            raise fields.error(
                "text_bert", f"expected shape ({n}, 3, {x['text'].shape[1]}), got {bert.shape}"
            )
        lengths["text"] = (bert[:, 1] > 0).sum(1).astype(np.int64)
        if text == "bert":
            x["text"] = np.ascontiguousarray(bert.transpose(0, 2, 1), dtype=np.float32)
    elif text == "bert":
        raise fields.error("text_bert", "missing, but text='bert' asks for the token ids")
    if not aligned:
        for m in ("audio", "vision"):
            key = f"{m}_lengths"
            got = fields.array(key, 1).astype(np.int64)
            if got.shape != (n,) or got.min() < 0 or got.max() > x[m].shape[1]:
                raise fields.error(key, f"expected {n} lengths in [0, {x[m].shape[1]}]")
            lengths[m] = got
            if (got == 0).any():
                fields.notes.append(
                    f"split {fields.split!r}, key {key!r}: {int((got == 0).sum())} samples of "
                    f"length 0 (no {m}: marked absent)"
                )
    for m in chosen:
        out[f"x:{m}"] = x[m]
        out[f"lengths:{m}"] = lengths[m]
    for key, name in META.items():
        if key in fields:
            values = fields.array(key, 1, numeric=False)
            if len(values) != n:
                raise fields.error(key, f"{len(values)} values for {n} samples")
            out[f"meta:{name}"] = as_text(values)
    return out
