"""Sequence encoders: ``gru`` and ``transformer``. Both are invariant to padding: whatever the
padded steps hold, and however many are appended, the output of every sample is the same.

Input ``x`` ``(B, T, D)`` padded at the end, ``mask`` ``(B, T)`` bool, ``True`` at real steps
(a prefix of each row, as :class:`~mmfactor.data.batching.Batch` builds it); ``mask=None``
means every step is real. A row without any real step (a missing modality stored with length
0) is encoded as if its first step were real, so that it yields finite numbers; methods do not
read missing modalities, but NaNs would still poison a masked sum.

FactorCL settings (Liang et al., NeurIPS 2023, App. D): MultiBench affect data use
``transformer`` with 5 layers, 5 heads, d_model 40 (the defaults here); MIMIC's time series
use ``gru`` with ``hidden=30``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mmfactor.checks import check_bool, check_choice, check_int, check_probability
from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders import Encoder, register_encoder
from mmfactor.errors import InputError


def _real_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """A ``(B, T)`` bool mask with at least one real step per row."""
    if x.dim() != 3:
        raise InputError(f"a sequence encoder takes (B, T, D) inputs, got shape {tuple(x.shape)}")
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2]:
        raise InputError(
            f"sequence mask shape {tuple(mask.shape)} does not match the input's "
            f"(B, T) = {tuple(x.shape[:2])}"
        )
    mask = mask.to(device=x.device, dtype=torch.bool)
    # Without a host sync (no `if empty.any()`): mark step 0 real in rows with no real step.
    first = torch.zeros_like(mask)
    first[:, 0] = True
    return mask | (first & ~mask.any(1, keepdim=True))


@register_encoder("gru")
class GRUEncoder(Encoder):
    """GRU over the real steps of each sample; the last layer's final hidden state (both
    directions concatenated if bidirectional) goes through ``Linear`` to ``out_dim``.

    Padding is honoured with ``pack_padded_sequence`` (lengths from ``mask``), so the final
    state is taken at each sample's last real step and padded steps are never read.

    Shapes: ``(B, T, D)``, mask ``(B, T)`` -> ``(B, out_dim)``.

    Args:
        spec: a sequence modality with per-step shape ``(D,)``.
        out_dim: output width.
        hidden: GRU hidden size.
        layers: number of stacked GRU layers.
        bidirectional: run a backward GRU too.
        dropout: dropout between GRU layers and before the output ``Linear``.

    Example:
        >>> enc = GRUEncoder(ModalitySpec("ts", "sequence", (12,)), 32, hidden=30)
        >>> enc(torch.randn(4, 24, 12), torch.ones(4, 24, dtype=torch.bool)).shape
        torch.Size([4, 32])
    """

    kinds = ("sequence",)
    output_layer_names = ("out",)

    def __init__(
        self,
        spec: ModalitySpec,
        out_dim: int,
        *,
        hidden: int = 128,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(spec, out_dim)
        owner = "encoder 'gru'"
        hidden = check_int(owner, "hidden", hidden, minimum=1)
        layers = check_int(owner, "layers", layers, minimum=1)
        bidirectional = check_bool(owner, "bidirectional", bidirectional)
        p = check_probability(owner, "dropout", dropout)
        self.layers, self.directions = layers, 2 if bidirectional else 1
        # nn.GRU applies dropout only between layers (and warns for one layer).
        self.gru = nn.GRU(
            spec.dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=p if layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(p)
        self.out = nn.Linear(hidden * self.directions, self.out_dim)

    def _run(
        self, x: torch.Tensor, mask: torch.Tensor | None, steps: bool = False
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """The GRU's per-step outputs ``(B, T, dirs * hidden)`` if ``steps`` (zero at padded
        steps), its final states ``h_n`` and the real-step mask (``None``: all real)."""
        x = self._as_input(x)
        if mask is None:
            out, h_n = self.gru(x)
            return out, h_n, None
        real = _real_mask(x, mask)
        # pack_padded_sequence wants lengths on the CPU; enforce_sorted=False sorts inside
        # and returns h_n (and the padded outputs) in the caller's batch order.
        packed = pack_padded_sequence(x, real.sum(1).cpu(), batch_first=True, enforce_sorted=False)
        out_packed, h_n = self.gru(packed)
        if not steps:
            return None, h_n, real
        out, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=x.shape[1])
        return out, h_n, real

    @property
    def token_dim(self) -> int:
        return self.gru.hidden_size * self.directions

    def tokens(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, _, real = self._run(x, mask, steps=True)
        assert out is not None
        return out, real

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _, h_n, _ = self._run(x, mask)
        # h_n: (layers * directions, B, hidden) -> the last layer's states, (B, dirs * hidden)
        last = h_n.view(self.layers, self.directions, h_n.shape[1], -1)[-1]
        return self.out(self.dropout(last.transpose(0, 1).reshape(h_n.shape[1], -1)))


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """The ``(length, d_model)`` sinusoidal position table of Vaswani et al. (2017)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : d_model // 2]
    return table


@register_encoder("transformer")
class TransformerEncoder(Encoder):
    """``Linear(D, d_model)`` + positional encoding -> ``nn.TransformerEncoder`` with a key
    padding mask -> mean over the real steps -> ``Linear(d_model, out_dim)``.

    Padded steps are zeroed, masked out of attention and out of the pooled mean, and positions
    count from the start, so padding never changes an output.

    Shapes: ``(B, T, D)``, mask ``(B, T)`` -> ``(B, out_dim)``.

    Args:
        spec: a sequence modality with per-step shape ``(D,)``.
        out_dim: output width.
        d_model: model width (must be divisible by ``heads``).
        heads: attention heads.
        layers: encoder layers.
        ff: feed-forward width (default ``4 * d_model``).
        dropout: dropout inside the encoder layers and after the positional encoding.
        attention_dropout: dropout on the attention weights (default: ``dropout``, as in
            ``nn.TransformerEncoderLayer`` and MultiBench's encoders). 0 lets torch use its
            fused attention kernel: on 2 CPU cores a 5-layer, 40-d encoder on 60 sequences of
            500 steps took 2.3 s instead of 10.7 s per forward + backward.
        max_len: longest sequence for ``learned`` positions (sinusoidal ones extend beyond it).
        positional: ``sinusoidal`` (default) or ``learned``.

    Example:
        >>> enc = TransformerEncoder(ModalitySpec("text", "sequence", (300,)), 40)
        >>> enc(torch.randn(2, 50, 300), torch.ones(2, 50, dtype=torch.bool)).shape
        torch.Size([2, 40])
    """

    kinds = ("sequence",)
    output_layer_names = ("out",)

    def __init__(
        self,
        spec: ModalitySpec,
        out_dim: int,
        *,
        d_model: int = 40,
        heads: int = 5,
        layers: int = 5,
        ff: int | None = None,
        dropout: float = 0.1,
        attention_dropout: float | None = None,
        max_len: int = 512,
        positional: str = "sinusoidal",
    ) -> None:
        super().__init__(spec, out_dim)
        owner = "encoder 'transformer'"
        d_model = check_int(owner, "d_model", d_model, minimum=1)
        heads = check_int(owner, "heads", heads, minimum=1)
        if d_model % heads:
            raise InputError(f"{owner}: d_model ({d_model}) must be divisible by heads ({heads})")
        layers = check_int(owner, "layers", layers, minimum=1)
        ff = 4 * d_model if ff is None else check_int(owner, "ff", ff, minimum=1)
        p = check_probability(owner, "dropout", dropout)
        self.max_len = check_int(owner, "max_len", max_len, minimum=1)
        self.positional = check_choice(
            owner,
            "positional",
            positional,
            {"sinusoidal": "sinusoidal", "learned": "learned"},
        )
        self.d_model = d_model
        self.proj = nn.Linear(spec.dim, d_model)
        if self.positional == "learned":
            self.pos = nn.Parameter(torch.randn(self.max_len, d_model) * 0.02)
        else:
            # Not persistent: a function of the shape, so checkpoints need not carry it.
            self.register_buffer(
                "table", sinusoidal_positions(self.max_len, d_model), persistent=False
            )
        self.pos_dropout = nn.Dropout(p)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, p, batch_first=True)
        if attention_dropout is not None:
            layer.self_attn.dropout = check_probability(
                owner, "attention_dropout", attention_dropout
            )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, self.out_dim)

    def _positions(self, length: int, like: torch.Tensor) -> torch.Tensor:
        if self.positional == "learned":
            if length > self.max_len:
                raise InputError(
                    f"encoder 'transformer': sequence of {length} steps exceeds "
                    f"max_len ({self.max_len}) of learned positions"
                )
            return self.pos[:length]
        table: torch.Tensor = self.get_buffer("table")
        if length > self.max_len:
            table = sinusoidal_positions(length, self.d_model)
        return table[:length].to(device=like.device, dtype=like.dtype)

    @property
    def token_dim(self) -> int:
        return self.d_model

    def tokens(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The last layer's states ``(B, T, d_model)``, zero at padded steps, and the mask."""
        x = self._as_input(x)
        real = _real_mask(x, mask)
        # Zero padded steps first: garbage there (even NaN) must not reach attention values.
        x = x.masked_fill(~real[..., None], 0.0)
        h = self.proj(x) + self._positions(x.shape[1], x)
        h = self.encoder(self.pos_dropout(h), src_key_padding_mask=~real)
        return h.masked_fill(~real[..., None], 0.0), real

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h, real = self.tokens(x, mask)
        pooled = h.sum(1) / real.sum(1, keepdim=True).to(h.dtype)
        return self.out(pooled)
