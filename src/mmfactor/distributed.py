"""Gathering tensors across data-parallel processes with gradients, so negatives are global.

Same idea as lightly's ``GatherLayer``: the forward pass all-gathers every rank's rows; the
backward pass sums the gradients over ranks and hands each rank the slice of its own rows.
Without a process group (one process) both functions are the identity.

Also here: :func:`rank_share` (random numbers per global sample, so that augmentations draw
what one process would) and :class:`GlobalBatchNorm1d` / :class:`GlobalBatchNorm2d` (batch
statistics over every process's rows; torch's ``SyncBatchNorm`` runs on GPUs only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> torch.Tensor:
        # Each rank's loss depends on every rank's rows: sum the gradients of all ranks.
        all_grads = torch.stack(grads)
        dist.all_reduce(all_grads)
        return all_grads[dist.get_rank()]


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` ``(B, ...)`` from all ranks into ``(world * B, ...)``, differentiably.

    Rows are ordered by rank, so this rank's rows start at ``rank() * B``.
    """
    if world_size() == 1:
        return x
    return torch.cat(_Gather.apply(x), 0)


def gather_nograd(x: torch.Tensor) -> torch.Tensor:
    """All-gather without gradient (labels, masks)."""
    if world_size() == 1:
        return x
    out = [torch.zeros_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, 0)


def local_rows(batch_size: int, device: torch.device) -> torch.Tensor:
    """Indices of this rank's rows inside a gathered batch."""
    return torch.arange(batch_size, device=device) + rank() * batch_size


def sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The sum of ``x`` over ranks, without gradient (``x`` itself with one process)."""
    if world_size() == 1:
        return x.detach()
    out = x.detach().clone()
    dist.all_reduce(out)
    return out


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over ranks, without gradient (``x`` itself with one process)."""
    return sum_over_ranks(x) / world_size()


def rank_share(
    draw: Callable[[tuple[int, ...]], torch.Tensor], shape: tuple[int, ...]
) -> torch.Tensor:
    """This rank's rows of one draw for the global batch: ``draw((world * B, ...))`` cut to
    rows ``rank() * B ... (rank() + 1) * B`` (``draw(shape)`` itself with one process).

    The engine seeds the generators alike on every rank, so the random numbers a sample gets
    (its augmentation, say) are those a single process would give it with the global batch:
    data-parallel training then matches one process exactly, not only in expectation. Needs
    this rank's rows to be rows ``rank() * B ...`` of the global batch, which holds for the
    engine's batches without an unlabeled pool. No communication.

    Example:
        >>> rank_share(lambda s: torch.rand(s, generator=torch.Generator().manual_seed(0)),
        ...            (4, 2)).shape
        torch.Size([4, 2])
    """
    world = world_size()
    if world == 1:
        return draw(shape)
    n = shape[0]
    return draw((n * world, *shape[1:]))[rank() * n : (rank() + 1) * n]


class _GlobalBatchNorm:
    """Training-mode statistics over the rows of every process (same value, gradient and
    running-statistics update as one process with the global batch); otherwise the parent
    class's forward. Mixed into ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` so the state dict
    keys do not change."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn: Any = self
        if world_size() == 1 or not bn.training:
            return super().forward(x)  # type: ignore[misc]
        bn._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1, *([1] * (x.dim() - 2))]
        count = x.numel() // x.shape[1] * world_size()
        # Differentiable all-reduce: each rank's loss depends on every rank's rows.
        mean = dist_fn.all_reduce(x.sum(dims)) / count
        centred = x - mean.reshape(shape)
        var = dist_fn.all_reduce(centred.square().sum(dims)) / count
        if bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                bn.running_mean.lerp_(mean.detach(), m)
                bn.running_var.lerp_(var.detach() * count / max(count - 1, 1), m)
        out = centred * torch.rsqrt(var + bn.eps).reshape(shape)
        if bn.affine:
            out = out * bn.weight.reshape(shape) + bn.bias.reshape(shape)
        return out


class GlobalBatchNorm1d(_GlobalBatchNorm, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training statistics cover every data-parallel process.

    Example:
        >>> GlobalBatchNorm1d(3)(torch.randn(8, 3)).shape
        torch.Size([8, 3])
    """


class GlobalBatchNorm2d(_GlobalBatchNorm, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics cover every data-parallel process."""
