"""Decoders from a code back to a modality's input, and the padding-aware reconstruction
error, shared by the generative methods (MFM, MIRD).

Shapes: a code ``(B, c)`` -> ``(B, T, D)`` for sequences (T given per batch) or the
modality's feature shape ``(B, *shape)`` otherwise.

Example:
    >>> from mmfactor.data.dataset import ModalitySpec
    >>> spec = ModalitySpec("audio", "sequence", (5,))
    >>> build_decoder(8, spec, 16)(torch.zeros(2, 8), 7).shape
    torch.Size([2, 7, 5])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders.heads import MLPHead


class SequenceDecoder(nn.Module):
    """The code repeated over T steps -> GRU -> Linear: ``(B, c) -> (B, T, D)``."""

    def __init__(self, code_dim: int, spec: ModalitySpec, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(code_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, spec.dim)

    def forward(self, code: torch.Tensor, steps: int) -> torch.Tensor:
        h, _ = self.gru(code[:, None, :].expand(-1, steps, -1))
        return self.out(h)


class VectorDecoder(nn.Module):
    """The code -> MLP -> the modality's feature shape (vectors, flattened images)."""

    def __init__(self, code_dim: int, spec: ModalitySpec, hidden: int) -> None:
        super().__init__()
        self.mlp, self.shape = MLPHead(code_dim, hidden, spec.dim), spec.shape

    def forward(self, code: torch.Tensor, steps: int = 0) -> torch.Tensor:
        return self.mlp(code).reshape(-1, *self.shape)


def build_decoder(code_dim: int, spec: ModalitySpec, hidden: int) -> nn.Module:
    """A :class:`SequenceDecoder` for sequences, a :class:`VectorDecoder` otherwise."""
    cls = SequenceDecoder if spec.kind == "sequence" else VectorDecoder
    return cls(code_dim, spec, hidden)


def decode(
    decoder: Callable[[torch.Tensor, int], torch.Tensor],
    code: torch.Tensor,
    x: torch.Tensor,
    spec: ModalitySpec,
) -> torch.Tensor:
    """``decoder(code)`` shaped like the batch input ``x`` (as many steps for sequences)."""
    return decoder(code, x.shape[1] if spec.kind == "sequence" else 0)


def reconstruction_error(
    x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error per sample ``(B,)`` over features, and over the real steps of a
    sequence when ``mask`` ``(B, T)`` is given: padding steps do not count (the released MFM
    and MIRD code average over them)."""
    err = (x_hat - x).pow(2)
    if mask is None:
        return err.flatten(1).mean(1)
    real = mask.to(err.dtype)
    return (err.mean(2) * real).sum(1) / real.sum(1).clamp_min(1.0)
