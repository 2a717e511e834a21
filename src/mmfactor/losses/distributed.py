"""Gathering tensors across data-parallel processes with gradients, so negatives are global.

Same idea as lightly's ``GatherLayer``: the forward pass all-gathers every rank's rows; the
backward pass sums the gradients over ranks and hands each rank the slice of its own rows.
Without a process group (one process) both functions are the identity.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


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


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over ranks, without gradient (``x`` itself with one process)."""
    if world_size() == 1:
        return x.detach()
    out = x.detach().clone()
    dist.all_reduce(out)
    return out / world_size()
