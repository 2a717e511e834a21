"""The data contract: :class:`ModalitySpec`, :class:`Target` and :class:`MultimodalDataset`.

A data set holds NumPy arrays (in memory or memory-mapped), never tensors. Each modality is
one array whose first axis is the sample:

- ``vector``: ``(N, D)``;
- ``sequence``: ``(N, T_max, D)`` padded at the end, with per-sample ``lengths`` ``(N,)``;
- ``image``: ``(N, C, H, W)``.

Every sample carries a presence flag per modality (a modality can be missing for some
samples); targets are named, classification (integer classes ``0..K-1``) or regression
(float); ``splits`` maps ``train`` / ``valid`` / ``test`` (and optionally ``unlabeled``, a pool
without usable labels) to index arrays. ``meta`` holds per-sample values that are not model
inputs (ids, raw text), indexed with the samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from mmfactor.errors import InputError

ModalityKind = Literal["vector", "sequence", "image"]
TaskKind = Literal["classification", "regression"]
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class ModalitySpec:
    """Name, kind and per-step feature shape of one modality.

    ``shape`` is the shape of one sample without the sample axis, and for sequences without
    the time axis: ``(D,)`` for vectors and sequences, ``(C, H, W)`` for images.
    """

    name: str
    kind: ModalityKind
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("vector", "sequence", "image"):
            raise InputError(f"modality {self.name!r}: unknown kind {self.kind!r}")
        expected = 3 if self.kind == "image" else 1
        if len(self.shape) != expected or any(int(s) <= 0 for s in self.shape):
            raise InputError(
                f"modality {self.name!r}: a {self.kind} needs a feature shape of {expected} "
                f"positive dimension(s), got {self.shape}"
            )

    @property
    def dim(self) -> int:
        """Number of features per sample (per time step for sequences)."""
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class TaskSpec:
    """What a supervising target asks of a prediction head."""

    kind: TaskKind
    n_classes: int = 0

    @property
    def out_dim(self) -> int:
        return self.n_classes if self.kind == "classification" else 1


@dataclass
class Target:
    """One named target: ``values`` ``(N,)`` int64 classes or float32 regression values.

    ``sentiment`` marks continuous sentiment labels in [-3, 3] (MOSI, MOSEI): evaluation
    adds the sentiment metrics (Acc-2 has0/non0, F1, Acc-7, MAE, Corr) to the regression ones.
    """

    name: str
    values: np.ndarray
    kind: TaskKind
    classes: tuple[str, ...] = ()
    sentiment: bool = False

    def take(self, indices: np.ndarray) -> Target:
        """The target restricted to ``indices``."""
        return replace(self, values=self.values[indices])

    @property
    def task(self) -> TaskSpec:
        if self.kind == "classification":
            return TaskSpec("classification", max(len(self.classes), int(self.values.max()) + 1))
        return TaskSpec("regression")


@dataclass
class MultimodalDataset:
    """Named modalities, presence flags, named targets and fixed splits.

    Example:
        >>> import numpy as np, mmfactor as mf
        >>> data = mf.datasets.from_arrays({"x1": np.zeros((10, 3)), "x2": np.ones((10, 2))},
        ...                                y=np.arange(10) % 2)
        >>> data.modality_names, len(data)
        (['x1', 'x2'], 10)
    """

    modalities: dict[str, ModalitySpec]
    arrays: dict[str, np.ndarray]
    targets: dict[str, Target]
    splits: dict[str, np.ndarray]
    present: dict[str, np.ndarray] = field(default_factory=dict)
    lengths: dict[str, np.ndarray] = field(default_factory=dict)
    latents: dict[str, np.ndarray] | None = None
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    name: str = "arrays"
    default_target: str | None = None

    def __post_init__(self) -> None:
        n = self._validate_arrays()
        for m in self.modalities:
            self.present.setdefault(m, np.ones(n, dtype=bool))
            if self.modalities[m].kind == "sequence":
                self.lengths.setdefault(m, np.full(n, self.arrays[m].shape[1], dtype=np.int64))
        for m, flags in self.present.items():
            if m not in self.modalities or flags.shape != (n,):
                raise InputError(
                    f"presence flags {m!r}: expected a known modality and shape ({n},)"
                )
        for name, t in self.targets.items():
            if t.values.shape != (n,):
                raise InputError(f"target {name!r}: expected shape ({n},), got {t.values.shape}")
        for key, values in self.meta.items():
            if len(values) != n:
                raise InputError(f"meta {key!r}: expected {n} values, got {len(values)}")
        for split, idx in self.splits.items():
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
                raise InputError(f"split {split!r}: indices must be a 1-D array within [0, {n})")
        if self.default_target is None and self.targets:
            self.default_target = next(iter(self.targets))

    def _validate_arrays(self) -> int:
        if len(self.modalities) < 1:
            raise InputError("a data set needs at least one modality")
        sizes = {m: self.arrays[m].shape[0] for m in self.modalities if m in self.arrays}
        missing = [m for m in self.modalities if m not in self.arrays]
        if missing:
            raise InputError(f"modality {missing[0]!r} has no array")
        if len(set(sizes.values())) != 1:
            raise InputError(f"modalities have different numbers of samples: {sizes}")
        for m, spec in self.modalities.items():
            got = self.arrays[m].shape[2:] if spec.kind == "sequence" else self.arrays[m].shape[1:]
            if tuple(got) != tuple(spec.shape):
                raise InputError(
                    f"modality {m!r}: array shape {self.arrays[m].shape} does not match the "
                    f"declared {spec.kind} feature shape {spec.shape}"
                )
        return next(iter(sizes.values()))

    def __len__(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    @property
    def modality_names(self) -> list[str]:
        return list(self.modalities)

    @property
    def target_names(self) -> list[str]:
        return list(self.targets)

    def target(self, name: str | None = None) -> Target:
        """The named target, or the default one; an :class:`InputError` if it does not exist."""
        name = name or self.default_target
        if name is None or name not in self.targets:
            raise InputError(
                f"data set {self.name!r} has no target {name!r}; targets: "
                f"{', '.join(self.targets) or '(none)'}"
            )
        return self.targets[name]

    def indices(self, split: str) -> np.ndarray:
        if split not in self.splits:
            raise InputError(f"data set {self.name!r} has no split {split!r}")
        return self.splits[split]

    def subset(
        self,
        indices: np.ndarray,
        splits: Mapping[str, np.ndarray] | None = None,
    ) -> MultimodalDataset:
        """A new data set holding only ``indices`` (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        return MultimodalDataset(
            modalities=dict(self.modalities),
            arrays={m: a[indices] for m, a in self.arrays.items()},
            targets={k: t.take(indices) for k, t in self.targets.items()},
            splits=dict(splits) if splits is not None else {"all": np.arange(len(indices))},
            present={m: p[indices] for m, p in self.present.items()},
            lengths={m: ln[indices] for m, ln in self.lengths.items()},
            latents=None
            if self.latents is None
            else {k: v[indices] for k, v in self.latents.items()},
            meta={k: v[indices] for k, v in self.meta.items()},
            info=dict(self.info),
            name=self.name,
            default_target=self.default_target,
        )

    def split(self, name: str) -> MultimodalDataset:
        """The samples of one split, as a data set whose only split is ``name``."""
        idx = self.indices(name)
        return self.subset(idx, {name: np.arange(len(idx))})

    def with_missing(self, missing: Sequence[str]) -> MultimodalDataset:
        """A shallow copy in which the named modalities are absent for every sample."""
        for m in missing:
            if m not in self.modalities:
                raise InputError(
                    f"cannot drop modality {m!r}: modalities are {', '.join(self.modalities)}"
                )
        present = {m: (np.zeros_like(p) if m in missing else p) for m, p in self.present.items()}
        return replace(self, present=present)

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description: modalities (shapes, sequence lengths, presence),
        splits, targets with label statistics per split, per-sample fields, and the
        loader's notes (problems found that did not stop the load)."""
        modalities = {}
        for m, s in self.modalities.items():
            entry: dict[str, Any] = {
                "kind": s.kind,
                "shape": list(s.shape),
                "array_shape": list(self.arrays[m].shape),
                "present": int(self.present[m].sum()),
                "storage": _storage(self.arrays[m]),
            }
            if m in self.lengths:
                lengths = self.lengths[m][self.present[m]]
                entry["lengths"] = (
                    {
                        "min": int(lengths.min()),
                        "median": float(np.median(lengths)),
                        "max": int(lengths.max()),
                    }
                    if lengths.size
                    else {}
                )
            modalities[m] = entry
        return {
            "name": self.name,
            "n": len(self),
            "modalities": modalities,
            "splits": {k: int(len(v)) for k, v in self.splits.items()},
            "targets": {
                k: {
                    "kind": t.kind,
                    "n_classes": t.task.n_classes,
                    "sentiment": t.sentiment,
                    "splits": {s: _label_stats(t, idx) for s, idx in self.splits.items()},
                }
                for k, t in self.targets.items()
            },
            "default_target": self.default_target,
            "meta": sorted(self.meta),
            "info": {k: v for k, v in self.info.items() if k != "notes"},
            "notes": list(self.info.get("notes", [])),
        }


def _storage(array: Any) -> str:
    if isinstance(array, np.memmap):
        return "memory-mapped"
    return "in memory" if isinstance(array, np.ndarray) else "read lazily"


def _label_stats(target: Target, indices: np.ndarray) -> dict[str, Any]:
    """Class counts, or mean / std / range / share of exact zeros of regression labels."""
    values = target.values[indices]
    if values.size == 0:
        return {}
    if target.kind == "classification":
        counts = np.bincount(values, minlength=target.task.n_classes)
        names = target.classes or tuple(str(c) for c in range(len(counts)))
        return {"counts": {str(c): int(k) for c, k in zip(names, counts, strict=False)}}
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "zero": float(np.mean(values == 0)),
    }
