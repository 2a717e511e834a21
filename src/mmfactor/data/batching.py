"""Batches as index arrays: the data loader slices whole batches out of the arrays at once.

A :class:`Batch` holds, per modality, the input tensor (sequences trimmed to the longest
sample of the batch), a padding mask for sequences (``True`` at real steps), and presence
flags; plus the supervising target ``y`` and the sample indices. Missing modalities keep
their input values; methods decide what a missing modality means (see each method's
docstring) and must not read them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mmfactor.data.dataset import MultimodalDataset


@dataclass
class Batch:
    """One batch. Shapes: ``x[m]`` ``(B, D)``, ``(B, T, D)`` or ``(B, C, H, W)``;
    ``mask[m]`` ``(B, T)`` bool for sequences; ``present[m]`` ``(B,)`` bool; ``y`` ``(B,)``;
    ``labeled`` ``(B,)`` bool (False for samples of the unlabeled pool; ``None`` when every
    sample of the batch is labeled)."""

    x: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor] = field(default_factory=dict)
    y: torch.Tensor | None = None
    labeled: torch.Tensor | None = None
    index: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(next(iter(self.x.values())).shape[0])

    def to(self, device: torch.device | str) -> Batch:
        if next(iter(self.x.values())).device == torch.device(device):
            return self  # every tensor of a batch lives on one device

        def move(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v.to(device, non_blocking=True) for k, v in d.items()}

        return replace(
            self,
            x=move(self.x),
            present=move(self.present),
            mask=move(self.mask),
            y=None if self.y is None else self.y.to(device),
            labeled=None if self.labeled is None else self.labeled.to(device),
            index=None if self.index is None else self.index.to(device),
        )

    def replace_inputs(self, x: dict[str, torch.Tensor]) -> Batch:
        """The same batch with some inputs replaced (augmentations, noise)."""
        return replace(self, x={**self.x, **x})


class ArrayBatches(Dataset):
    """A map-style data set indexed by *arrays* of sample indices; each item is a Batch."""

    def __init__(
        self,
        data: MultimodalDataset,
        target: str | None = None,
        unlabeled: np.ndarray | None = None,
    ) -> None:
        self.data = data
        self.target = None if target is None else data.target(target)
        self.unlabeled = np.zeros(len(data), dtype=bool)
        if unlabeled is not None:
            self.unlabeled[unlabeled] = True

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: np.ndarray) -> Batch:
        idx = np.sort(np.asarray(idx, dtype=np.int64))
        d = self.data
        x, mask = {}, {}
        for m, spec in d.modalities.items():
            if spec.kind == "sequence":
                lengths = d.lengths[m][idx]
                t_max = int(lengths.max())
                x[m] = torch.as_tensor(np.ascontiguousarray(d.arrays[m][idx, :t_max]))
                mask[m] = torch.as_tensor(np.arange(t_max)[None, :] < lengths[:, None])
            elif spec.kind == "image":
                x[m] = image_input(d.arrays[m][idx])
            else:
                x[m] = torch.as_tensor(np.ascontiguousarray(d.arrays[m][idx]))
        present = {m: torch.as_tensor(d.present[m][idx]) for m in d.modalities}
        y = None if self.target is None else torch.as_tensor(self.target.values[idx])
        # None when every sample is labeled (the usual case): methods then need no mask,
        # and on an accelerator no host sync to find out.
        labeled = ~self.unlabeled[idx]
        return Batch(
            x,
            present,
            mask,
            y,
            None if labeled.all() else torch.as_tensor(labeled),
            torch.as_tensor(idx),
        )


def image_input(values: np.ndarray) -> torch.Tensor:
    """Images as a batch holds them: 8-bit images (uint8, as image data sets store them, a
    quarter of float32's memory) become float32 in [0, 1]; other dtypes pass unchanged."""
    t = torch.as_tensor(np.ascontiguousarray(values))
    return t.to(torch.float32).div_(255) if t.dtype == torch.uint8 else t


def zero_missing(
    embeddings: Mapping[str, torch.Tensor], present: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``embeddings`` ``{m: (B, d)}`` with the rows of absent modalities set to zero
    (``present[m]``: ``(B,)`` bool)."""
    return {m: e * present[m].to(e.dtype)[:, None] for m, e in embeddings.items()}


class BatchIndexSampler(Sampler[np.ndarray]):
    """Yields arrays of sample indices, a batch at a time; seeded per epoch, rank-aware.

    Under data parallelism each rank takes an equal, disjoint share of every global batch, so
    that a gathered batch equals the batch one process would see (``batch_size`` is global).

    Semi-supervised batches: with a ``pool`` (e.g. the ``unlabeled`` split) and
    ``pool_per_batch`` = u, every batch also holds u samples of the pool, drawn without
    replacement from a fresh seeded permutation of it, which restarts when it runs out (so a
    pool smaller than an epoch's demand is cycled). The epoch's length is set by
    ``indices`` alone; each rank takes its equal share of both parts.
    """

    def __init__(
        self,
        indices: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        pool: np.ndarray | None = None,
        pool_per_batch: int = 0,
    ) -> None:
        for name, size, least in (
            ("batch size", batch_size, world_size),
            ("pool samples per batch", pool_per_batch, 0),
        ):
            if size < least or size % world_size:
                raise ValueError(f"{name} {size} must be a multiple of the {world_size} processes")
        if pool_per_batch and (pool is None or len(pool) == 0):
            raise ValueError("pool_per_batch > 0 needs a non-empty pool")
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.rank, self.world_size = drop_last, rank, world_size
        self.pool = np.asarray(pool if pool is not None else [], dtype=np.int64)
        self.pool_per_batch = pool_per_batch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        # Under data parallelism every rank must see equally many, equally sized batches
        # (gathers need equal shapes), so the remainder is dropped there.
        n = len(self.indices)
        if self.drop_last or self.world_size > 1:
            return n // self.batch_size
        return math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self.indices
        if self.shuffle:
            rng = np.random.default_rng((self.seed, self.epoch))
            order = order[rng.permutation(len(order))]
        extra = self._pool_order(len(self) * self.pool_per_batch)
        per_rank = self.batch_size // self.world_size
        extra_per_rank = self.pool_per_batch // self.world_size
        for b in range(len(self)):
            # Sorted (as ArrayBatches reads rows) before the split, so that the ranks' shares
            # stacked in rank order are the rows, in order, of the one-process batch.
            batch = np.sort(order[b * self.batch_size : (b + 1) * self.batch_size])
            batch = batch[self.rank * per_rank : (self.rank + 1) * per_rank]
            if extra_per_rank:
                start = b * self.pool_per_batch + self.rank * extra_per_rank
                batch = np.concatenate([batch, extra[start : start + extra_per_rank]])
            yield batch

    def _pool_order(self, count: int) -> np.ndarray:
        """``count`` pool indices: concatenated seeded permutations of the pool."""
        if not count:
            return self.pool[:0]
        rng = np.random.default_rng((self.seed, self.epoch, 1))
        rounds = -(-count // len(self.pool))
        perms = rng.random((rounds, len(self.pool))).argsort(1)
        return self.pool[perms.reshape(-1)[:count]]


def _identity(batch: Any) -> Any:
    return batch


def make_loader(
    data: MultimodalDataset,
    indices: np.ndarray,
    batch_size: int,
    *,
    target: str | None = None,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    unlabeled: np.ndarray | None = None,
    unlabeled_per_batch: int = 0,
) -> DataLoader:
    """A DataLoader over ``indices`` of ``data`` that yields :class:`Batch` objects.

    ``unlabeled``: indices whose samples are marked unlabeled (``Batch.labeled`` False);
    with ``unlabeled_per_batch`` = u > 0 every batch also draws u of them (see
    :class:`BatchIndexSampler`), so a batch holds ``batch_size`` samples of ``indices`` plus
    u unlabeled ones.
    """
    sampler = BatchIndexSampler(
        indices,
        batch_size,
        shuffle,
        seed,
        drop_last,
        rank,
        world_size,
        pool=unlabeled if unlabeled_per_batch else None,
        pool_per_batch=unlabeled_per_batch,
    )
    return DataLoader(
        ArrayBatches(data, target, unlabeled),
        sampler=sampler,
        batch_size=None,
        collate_fn=_identity,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
