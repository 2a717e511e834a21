"""``encode`` and ``evaluate``: method-agnostic evaluation on :class:`Factors`.

Every method is evaluated the same way: factors of the train / valid / test splits, a probe
fitted on train (its strength chosen on valid) and scored on test, for each factor block
(``shared``, ``specific:<m>``, ``all``) and each requested target. Missing-modality
robustness: the test split is encoded with a modality's presence flags set false, while the
probe is still trained on complete data, as a user with a trained model would face it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import torch

from mmfactor import __version__
from mmfactor.data.batching import Batch, image_input, make_loader
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import InputError
from mmfactor.evaluate.probes import (
    PROTOCOLS,
    ProbeJob,
    fit_probe,
    fit_probes,
    prediction_metrics,
    ridge_probes,
    score_probe,
)
from mmfactor.methods.base import Factors


class Representation(Protocol):
    """What evaluation needs of a model: a trained method, or the raw-input reference."""

    @property
    def name(self) -> str: ...
    @property
    def has_head(self) -> bool: ...

    train_stats: dict[str, Any]
    training: bool

    def encode(self, batch: Batch) -> Factors: ...
    def predict(self, batch: Batch) -> torch.Tensor | None: ...
    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...
    def eval(self) -> Any: ...
    def train(self, mode: bool = True) -> Any: ...


PRIMARY_METRIC = {"classification": "accuracy", "regression": "r2"}


@torch.no_grad()
def encode(
    model: Representation, data: MultimodalDataset, batch_size: int = 1024, split: str | None = None
) -> Factors:
    """Factors of every sample of ``data`` (or of one split), as NumPy arrays, in order."""
    idx = data.indices(split) if split else np.arange(len(data))
    was_training = model.training
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    parts = [
        model.encode(b.to(device)).map(lambda t: t.detach().cpu())
        for b in make_loader(data, idx, batch_size)
    ]
    model.train(was_training)
    return Factors.concat(parts)


@torch.no_grad()
def predict(
    model: Representation, data: MultimodalDataset, split: str, batch_size: int = 1024
) -> np.ndarray | None:
    """The method's own head output on one split (``None`` for methods without a head)."""
    if not model.has_head:
        return None
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    outs = []
    for b in make_loader(data, data.indices(split), batch_size):
        out = model.predict(b.to(device))
        assert out is not None, f"{model.name} has a head but predicted nothing"
        outs.append(out)
    return torch.cat(outs).cpu().numpy()


class Encodings:
    """The clean splits' factor blocks and the probes fitted on them, for one model and one
    data set, computed once and shared by :func:`evaluate`, :func:`noise_records` and
    :func:`latent_information` (the bench calls all three on each model: each used to encode
    the splits again, and the noise curves refitted the probe ``evaluate`` had fitted).

    Example:
        >>> import mmfactor as mf
        >>> data = mf.datasets.load("synthetic", n=300)
        >>> model = mf.methods.build("cca", data.modalities, embed_dim=4)
        >>> mf.fit(model, data, progress=False).epochs
        0
        >>> encoded = Encodings(model, data)
        >>> records = evaluate(model, data, targets=["mix@0.5"], encodings=encoded)
        >>> records += noise_records(model, data, "mix@0.5", [0.0, 1.0], encodings=encoded)
    """

    def __init__(
        self, model: Representation, data: MultimodalDataset, batch_size: int = 1024
    ) -> None:
        self.model, self.data, self.batch_size = model, data, batch_size
        self._blocks: dict[str, dict[str, np.ndarray]] = {}
        self._probes: dict[tuple[str, str, str, int], Any] = {}
        self._same: dict[str, str] = {}  # block -> first block with the same features

    def blocks(self, split: str) -> dict[str, np.ndarray]:
        """Factor blocks of one split of the clean data set."""
        if split not in self._blocks:
            self._blocks[split] = encode(self.model, self.data, self.batch_size, split).blocks()
        return self._blocks[split]

    def probe(self, protocol: str, target: str, block: str, seed: int) -> Any:
        """The probe of ``target`` on ``block``, fitted on train, chosen on valid."""
        self.fit_probes(protocol, [target], [block], seed)
        return self._probes[self._key(protocol, target, block, seed)]

    def fit_probes(
        self, protocol: str, targets: Sequence[str], blocks: Sequence[str], seed: int
    ) -> None:
        """Fit the probes of ``targets`` x ``blocks`` not fitted yet, side by side on the
        threads that torch is given (:func:`~mmfactor.evaluate.probes.fit_probes`)."""
        jobs: dict[tuple[str, str, str, int], ProbeJob] = {}
        for target in targets:
            tgt = self.data.target(target)
            y_train, y_valid = (tgt.values[self.data.indices(s)] for s in ("train", "valid"))
            for block in blocks:
                key = self._key(protocol, target, block, seed)
                if key not in self._probes:
                    train = (self.blocks("train")[key[2]], y_train)
                    valid = (self.blocks("valid")[key[2]], y_valid)
                    jobs[key] = (protocol, tgt.kind, train, valid, seed)
        self._probes.update(fit_probes(jobs, workers=torch.get_num_threads()))

    def _key(self, protocol: str, target: str, block: str, seed: int) -> tuple[str, str, str, int]:
        """A probe's key, naming the first block with the same train and valid features as
        ``block`` (``all`` of a one-block model is its ``shared``): probed once."""
        if block not in self._same:
            train, valid = self.blocks("train"), self.blocks("valid")
            self._same[block] = next(
                b
                for b in train
                if np.array_equal(train[b], train[block]) and np.array_equal(valid[b], valid[block])
            )
        return protocol, target, self._same[block], seed

    def check(self, model: Representation, data: MultimodalDataset) -> Encodings:
        if model is not self.model or data is not self.data:
            raise InputError("encodings: made for another model or data set")
        return self


def _encodings(
    encodings: Encodings | None, model: Representation, data: MultimodalDataset, batch_size: int
) -> Encodings:
    return Encodings(model, data, batch_size) if encodings is None else encodings.check(model, data)


def evaluate(
    model: Representation,
    data: MultimodalDataset,
    protocol: str = "linear-probe",
    targets: Iterable[str] | None = None,
    missing: Sequence[str] = (),
    factors: Iterable[str] | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    context: dict[str, Any] | None = None,
    encodings: Encodings | None = None,
) -> list[dict[str, Any]]:
    """Result records (the fields of a bench ``results.jsonl`` line) for ``model`` on ``data``.

    Args:
        protocol: ``linear-probe``, ``mlp-probe`` or ``knn``.
        targets: target names to probe (default: all of the data set's targets).
        missing: modalities to drop at test time, one at a time; the complete-data
            evaluation is always included (records with ``missing: []``).
        factors: factor blocks to probe (default: all of ``shared``, ``specific:<m>``, ``all``).
        context: extra fields for every record (``method``, ``dataset``, ``seed``, ...).
        encodings: an :class:`Encodings` of ``model`` and ``data`` to take the clean
            encodings and probes from (and to leave them in, for the other evaluations).

    Records have ``protocol``, ``factors``, ``target``, ``metric``, ``value``, ``split``
    (``test``), ``missing``, plus the training time figures if the model was trained by
    :func:`mmfactor.fit`. A method with a prediction head adds ``protocol: "head"``,
    ``factors: "prediction"`` records for the target it was trained on.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; protocols: {', '.join(PROTOCOLS)}")
    target_names = list(targets) if targets is not None else data.target_names
    for t in target_names:
        if t not in data.targets:
            raise InputError(
                f"targets: data set {data.name!r} has no target {t!r}; targets: "
                f"{', '.join(data.targets) or '(none)'}",
                argument="targets",
            )
    for m in missing:
        if m not in data.modalities:
            raise InputError(
                f"missing: data set {data.name!r} has no modality {m!r}; modalities: "
                f"{', '.join(data.modalities)}",
                argument="missing",
            )
    stats = getattr(model, "train_stats", {})
    base = _record_base(model, data, seed, context)
    base.update(
        train_seconds=stats.get("train_seconds"),
        samples_per_second=stats.get("samples_per_second"),
        trained_on=stats.get("target"),
        **(context or {}),
    )
    encoded = _encodings(encodings, model, data, batch_size)
    train_f = encoded.blocks("train")
    blocks = list(factors) if factors is not None else list(train_f)
    for b in blocks:
        if b not in train_f:
            raise InputError(
                f"method {model.name!r} has no factor block {b!r}; blocks: {', '.join(train_f)}"
            )
    test_sets: dict[tuple[str, ...], MultimodalDataset] = {(): data}
    test_sets.update({(m,): data.with_missing([m]) for m in missing})
    test_f: dict[tuple[str, ...], dict[str, np.ndarray]] = {(): encoded.blocks("test")}
    test_f.update(
        {k: encode(model, d, batch_size, "test").blocks() for k, d in test_sets.items() if k}
    )

    records: list[dict[str, Any]] = []
    encoded.fit_probes(protocol, target_names, blocks, seed)
    for t in target_names:
        tgt = data.targets[t]
        y_test = tgt.values[data.indices("test")]
        for b in blocks:
            probe = encoded.probe(protocol, t, b, seed)
            for miss, feats in test_f.items():
                scores = score_probe(probe, feats[b], y_test, tgt.kind, tgt.sentiment)
                records += _records(base, t, b, protocol, scores, list(miss))
    trained_on = stats.get("target")
    if model.has_head and trained_on in target_names:
        tgt = data.targets[trained_on]
        y_test = tgt.values[data.indices("test")]
        for miss, d in test_sets.items():
            out = predict(model, d, "test", batch_size)
            assert out is not None
            pred = out.argmax(1) if tgt.kind == "classification" else out.reshape(-1)
            scores = prediction_metrics(y_test, pred, tgt.kind, tgt.sentiment)
            records += _records(base, trained_on, "prediction", "head", scores, list(miss))
    return records


def _records(
    base: dict[str, Any],
    target: str,
    factors: str,
    protocol: str,
    scores: dict[str, float],
    missing: list[str],
) -> list[dict[str, Any]]:
    return [
        {
            **base,
            "target": target,
            "factors": factors,
            "protocol": protocol,
            "metric": metric,
            "value": float(value),
            "missing": missing,
        }
        for metric, value in scores.items()
    ]


def _record_base(
    model: Representation, data: MultimodalDataset, seed: int, context: dict[str, Any] | None
) -> dict[str, Any]:
    """The fields every result record of ``model`` on ``data`` starts with."""
    base = {"method": model.name, "dataset": data.name, "seed": seed, "split": "test"}
    return {**base, "version": __version__, **(context or {})}


def _latent_r2(
    model: Representation,
    data: MultimodalDataset,
    protocol: str,
    seed: int,
    batch_size: int,
    encodings: Encodings | None = None,
) -> dict[str, dict[str, list[float]]]:
    """``r2[block][latent]``: the test R^2 of a probe (regression, strength chosen on valid)
    from each factor block to each dimension of each ground-truth latent."""
    if not data.latents:
        raise InputError(f"data set {data.name!r} has no ground-truth latents")
    encoded = _encodings(encodings, model, data, batch_size)
    feats = {s: encoded.blocks(s) for s in ("train", "valid", "test")}
    names = list(data.latents)
    y = {s: np.concatenate([data.latents[k][data.indices(s)] for k in names], 1) for s in feats}
    ends = np.cumsum([data.latents[k].shape[1] for k in names])
    r2: dict[str, dict[str, list[float]]] = {}
    for block in feats["train"]:
        train, valid = (feats["train"][block], y["train"]), (feats["valid"][block], y["valid"])
        if protocol == "linear-probe":  # every latent dimension from one SVD of the block
            probes = ridge_probes(train, valid)
        else:
            probes = [
                fit_probe(
                    protocol,
                    "regression",
                    (train[0], train[1][:, j]),
                    (valid[0], valid[1][:, j]),
                    seed=seed,
                )
                for j in range(y["train"].shape[1])
            ]
        scores = [
            float(score_probe(pr, feats["test"][block], y["test"][:, j], "regression")["r2"])
            for j, pr in enumerate(probes)
        ]
        r2[block] = {
            k: scores[e - data.latents[k].shape[1] : e] for k, e in zip(names, ends, strict=True)
        }
    return r2


def latent_table(
    model: Representation,
    data: MultimodalDataset,
    protocol: str = "linear-probe",
    seed: int = 0,
    batch_size: int = 1024,
) -> dict[str, dict[str, float]]:
    """Factors x ground-truth latents: ``table[factor][latent]`` is the test R^2 of a probe
    (regression, strength chosen on valid) from the factor block to each dimension of the
    latent, averaged over its dimensions. Needs ``data.latents`` (``synthetic``)."""
    r2 = _latent_r2(model, data, protocol, seed, batch_size)
    return {b: {k: float(np.mean(v)) for k, v in row.items()} for b, row in r2.items()}


def latent_information(
    model: Representation,
    data: MultimodalDataset,
    protocol: str = "linear-probe",
    seed: int = 0,
    batch_size: int = 1024,
    encodings: Encodings | None = None,
) -> dict[str, dict[str, float]]:
    """Probed mutual information, in bits, between each factor block and each ground-truth
    latent (the analogue of FactorCL's Table 1): ``table[factor][latent]``.

    For each latent dimension j a probe predicts it from the block; with a Gaussian channel
    the probe's test ``R^2`` gives ``I >= -1/2 log2(1 - R^2)`` bits, summed over the latent's
    (independent) dimensions. A lower bound: a better probe can only raise it. ``R^2`` is
    clipped to ``[0, 0.999]`` (at most about 5 bits per dimension).
    """
    r2 = _latent_r2(model, data, protocol, seed, batch_size, encodings)
    table: dict[str, dict[str, float]] = {}
    for block, row in r2.items():
        for name, values in row.items():
            clipped = np.clip(np.asarray(values), 0.0, 0.999)
            table.setdefault(block, {})[name] = float((-0.5 * np.log2(1.0 - clipped)).sum())
    return table


def latent_records(
    model: Representation,
    data: MultimodalDataset,
    seed: int = 0,
    context: dict[str, Any] | None = None,
    encodings: Encodings | None = None,
) -> list[dict[str, Any]]:
    """:func:`latent_information` as result records: ``protocol: "latent-probe"``,
    ``target: "latent:<name>"``, ``metric: "mi_bits"``."""
    base = _record_base(model, data, seed, context)
    return [
        {
            **base,
            "target": f"latent:{name}",
            "factors": block,
            "protocol": "latent-probe",
            "metric": "mi_bits",
            "value": value,
            "missing": [],
        }
        for block, row in latent_information(model, data, seed=seed, encodings=encodings).items()
        for name, value in row.items()
    ]


def noise_records(
    model: Representation,
    data: MultimodalDataset,
    target: str,
    levels: Sequence[float],
    protocol: str = "linear-probe",
    seed: int = 0,
    batch_size: int = 1024,
    context: dict[str, Any] | None = None,
    encodings: Encodings | None = None,
) -> list[dict[str, Any]]:
    """Robustness to input noise: the probe on all factors, fitted on clean train data, scored
    on test inputs with Gaussian noise of standard deviation ``level`` times each feature's
    train standard deviation added to every modality (padding stays zero). Records carry
    ``noise: level``; level 0 is the clean score."""
    tgt = data.target(target)
    encoded = _encodings(encodings, model, data, batch_size)
    probe = encoded.probe(protocol, target, "all", seed)
    y_test = tgt.values[data.indices("test")]
    base = _record_base(model, data, seed, context)
    records = []
    for level in levels:
        if level == 0:
            test_f = encoded.blocks("test")["all"]
        else:
            noisy = with_test_noise(data, float(level), seed)
            test_f = encode(model, noisy, batch_size, "test").blocks()["all"]
        scores = score_probe(probe, test_f, y_test, tgt.kind, tgt.sentiment)
        records += [
            {**r, "noise": float(level)}
            for r in _records(base, target, "all", protocol, scores, [])
        ]
    return records


def with_test_noise(data: MultimodalDataset, level: float, seed: int = 0) -> MultimodalDataset:
    """``data`` whose test samples carry added Gaussian noise (``level`` x the per-feature
    train standard deviation); the other splits are unchanged (copies of the arrays)."""
    if level == 0:
        return data
    rng = np.random.default_rng(seed)
    test, train = data.indices("test"), data.indices("train")
    arrays = {}
    for m, values in data.arrays.items():
        # Images as a batch holds them (8-bit ones in [0, 1]), so the noise has their scale.
        image = data.modalities[m].kind == "image"
        # a float32 copy (the test rows get noise); images as image_input makes them
        x = np.array(image_input(values).numpy() if image else values, dtype=np.float32)
        std = x[train].reshape(-1, *x.shape[-1:]).std(0) if x.ndim == 3 else x[train].std(0)
        noise = rng.standard_normal((len(test), *x.shape[1:])).astype(np.float32) * std * level
        if m in data.lengths:  # sequences: no noise on padding steps
            steps = np.arange(x.shape[1])[None, :] < data.lengths[m][test][:, None]
            noise *= steps[..., None]
        x[test] += noise
        arrays[m] = x
    return replace(data, arrays=arrays)


def standard_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The probe and head records on clean test inputs (without the noise-robustness and
    latent-probe records), as the results tables use them."""
    return [r for r in records if "noise" not in r and r["protocol"] != "latent-probe"]


def factor_target_table(
    records: Iterable[dict[str, Any]], metric: str = "accuracy", protocol: str = "linear-probe"
) -> dict[str, dict[str, float]]:
    """Factors x targets: mean ``metric`` over seeds for each (factor block, target), on
    complete test data. ``table[factor][target]``."""
    acc: dict[tuple[str, str], list[float]] = {}
    for r in standard_records(records):
        if r["metric"] == metric and r["protocol"] == protocol and not r["missing"]:
            acc.setdefault((r["factors"], r["target"]), []).append(r["value"])
    table: dict[str, dict[str, float]] = {}
    for (f, t), vals in acc.items():
        table.setdefault(f, {})[t] = float(np.mean(np.asarray(vals, dtype=np.float64)))
    return table


def format_table(table: dict[str, dict[str, float]]) -> str:
    """A Markdown rendering of :func:`factor_target_table`."""
    targets = sorted({t for row in table.values() for t in row})
    lines = ["| factors | " + " | ".join(targets) + " |", "|---|" + "---|" * len(targets)]
    for f, row in table.items():
        cells = [
            ("n/a" if not np.isfinite(row[t]) else f"{row[t]:.3f}") if t in row else ""
            for t in targets
        ]
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
