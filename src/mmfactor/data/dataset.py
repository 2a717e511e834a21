"""The data contract: :class:`ModalitySpec`, :class:`Target` and :class:`MultimodalDataset`.

A data set holds NumPy arrays (in memory or memory-mapped), never tensors. Each modality is
one array whose first axis is the sample:

- ``vector``: ``(N, D)``;
- ``sequence``: ``(N, T_max, D)`` padded at the end, with per-sample ``lengths`` ``(N,)``;
- ``image``: ``(N, C, H, W)``.

Every sample carries a presence flag per modality (a modality can be missing for some
samples); targets are named, classification (integer classes ``0..K-1``) or regression
(float); ``splits`` maps ``train`` / ``valid`` / ``test`` (and optionally ``unlabeled``, a pool
without usable labels) to index arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    """One named target: ``values`` ``(N,)`` int64 classes or float32 regression values."""

    name: str
    values: np.ndarray
    kind: TaskKind
    classes: tuple[str, ...] = ()

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
            targets={
                k: Target(t.name, t.values[indices], t.kind, t.classes)
                for k, t in self.targets.items()
            },
            splits=dict(splits) if splits is not None else {"all": np.arange(len(indices))},
            present={m: p[indices] for m, p in self.present.items()},
            lengths={m: ln[indices] for m, ln in self.lengths.items()},
            latents=None
            if self.latents is None
            else {k: v[indices] for k, v in self.latents.items()},
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
        return MultimodalDataset(
            self.modalities,
            self.arrays,
            self.targets,
            self.splits,
            present,
            self.lengths,
            self.latents,
            self.info,
            self.name,
            self.default_target,
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description: modalities, shapes, splits, targets."""
        return {
            "name": self.name,
            "n": len(self),
            "modalities": {
                m: {
                    "kind": s.kind,
                    "shape": list(s.shape),
                    "array_shape": list(self.arrays[m].shape),
                    "present": int(self.present[m].sum()),
                }
                for m, s in self.modalities.items()
            },
            "splits": {k: int(len(v)) for k, v in self.splits.items()},
            "targets": {
                k: {"kind": t.kind, "n_classes": t.task.n_classes} for k, t in self.targets.items()
            },
            "default_target": self.default_target,
        }
