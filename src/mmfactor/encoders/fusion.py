"""Fusion modules: one code from several modalities.

- :class:`CrossModalFusion` (with :func:`sparsemax`): MIRD's word-wise sparse attention with
  a gated addition, for unaligned sequences (Qian et al. 2024);
- :class:`ConcatFusion`: per-modality encoders, absent ones zeroed, then an MLP (MFM's
  default fusion);
- :class:`MemoryFusion`: the Memory Fusion Network over aligned sequences (Zadeh et al.
  2018, the fusion MFM's paper uses);
- :class:`TokenFusion`: CoMM's Transformer over every modality's tokens, with modalities
  masked out of the attention (Dufumier et al. 2025).

Example:
    >>> from mmfactor.data.dataset import ModalitySpec
    >>> specs = {"text": ModalitySpec("text", "sequence", (6,)),
    ...          "audio": ModalitySpec("audio", "sequence", (3,))}
    >>> fusion = CrossModalFusion(specs, "text", 8)
    >>> x = {"text": torch.randn(2, 5, 6), "audio": torch.randn(2, 9, 3)}
    >>> mask = {"text": torch.ones(2, 5, dtype=torch.bool),
    ...         "audio": torch.ones(2, 9, dtype=torch.bool)}
    >>> present = {m: torch.ones(2, dtype=torch.bool) for m in specs}
    >>> fusion(x, mask, present).shape  # one fused token per text step
    torch.Size([2, 5, 8])
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mmfactor.checks import check_int
from mmfactor.data.batching import Batch, zero_missing
from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders.heads import MLPHead, mlp
from mmfactor.encoders.sequence import sinusoidal_positions
from mmfactor.errors import InputError


def sparsemax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sparsemax over the last axis (Martins & Astudillo, ICML 2016): the Euclidean
    projection of the scores onto the probability simplex, ``max(z - tau, 0)``, which sets
    low scores to exactly zero.

    ``mask`` (broadcastable to ``scores``, True at admissible entries) excludes entries; a
    row with no admissible entry gets all zeros. Differentiable everywhere autograd is
    (gradients reach only the support). Shapes: ``(..., n) -> (..., n)``.

    Example:
        >>> sparsemax(torch.tensor([2.0, 1.0, -1.0]))
        tensor([1., 0., 0.])
        >>> sparsemax(torch.tensor([1.0, 0.8, 0.0]))
        tensor([0.6000, 0.4000, 0.0000])
    """
    z = scores if mask is None else scores.masked_fill(~mask, float("-inf"))
    ordered = z.sort(-1, descending=True).values
    finite = torch.isfinite(ordered)
    cumulative = ordered.masked_fill(~finite, 0.0).cumsum(-1)
    rank = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    support = (1 + rank * ordered > cumulative) & finite
    k = support.sum(-1, keepdim=True).clamp_min(1)
    tau = (cumulative.gather(-1, k - 1) - 1) / k.to(z.dtype)
    return (z - tau).clamp_min(0.0)


class CrossModalFusion(nn.Module):
    """One fused token per step of an anchor modality, enriched by the other modalities
    (MIRD's word-wise sparse attention, WSA, followed by a gated addition).

    For each anchor step t with token ``h_t = W_a x_a,t`` ``(d,)`` and each other modality m
    with frames ``x_m,1..T_m``:

    - attention ``p_t = sparsemax(h_t . K_m x_m,s / sqrt(d))`` over m's real frames (sparse:
      a word attends to the few frames that match it; no alignment is needed);
    - the aligned frame ``a_m,t = sum_s p_t,s x_m,s`` and a gate
      ``g_m,t = relu(G_m [a_m,t ; h_t])``;
    - the shift ``s_t = sum_m g_m,t * V_m a_m,t`` is added with a norm cap:
      ``out_t = dropout(LayerNorm(h_t + alpha_t s_t))``, ``alpha_t = min(beta ||h_t|| /
      ||s_t||, 1)``, so the other modalities adjust the anchor token without swamping it.

    Design choices (the paper applies this to BERT word embeddings): the anchor's tokens are
    a linear projection of its features; scores are scaled by ``1/sqrt(d)`` (the released
    code does not scale, which with wide tokens makes sparsemax one-hot); a vector modality
    counts as a sequence of one frame, so the module also serves vector data; an absent
    modality adds nothing, and where the anchor is absent its token is zero and ``alpha`` is 1,
    so the token comes from the other modalities alone.

    Args:
        specs: every modality's spec (the anchor and the ones fused into it).
        anchor: the modality whose steps give the tokens (MIRD: text).
        dim: token width d.
        beta: the norm cap's scale (the released code's ``beta_shift``).
        dropout: dropout on the fused tokens.

    Shapes: ``x[m]`` ``(B, T_m, D_m)`` or ``(B, D_m)``, ``mask[m]`` ``(B, T_m)``,
    ``present[m]`` ``(B,)`` -> ``(B, T_anchor, dim)`` (``T_anchor`` = 1 for a vector anchor).
    """

    def __init__(
        self,
        specs: Mapping[str, ModalitySpec],
        anchor: str,
        dim: int,
        beta: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if anchor not in specs:
            raise InputError(f"fusion anchor {anchor!r} is not a modality: {list(specs)}")
        if dim < 1 or beta <= 0 or not 0 <= dropout < 1:
            raise InputError(
                f"fusion: dim must be >= 1, beta > 0, dropout in [0, 1); got {dim}, {beta}, "
                f"{dropout}"
            )
        self.anchor, self.dim, self.beta = anchor, dim, float(beta)
        self.others = [m for m in specs if m != anchor]
        self.token = nn.Linear(specs[anchor].dim, dim)
        self.key = nn.ModuleDict({m: nn.Linear(specs[m].dim, dim) for m in self.others})
        self.value = nn.ModuleDict({m: nn.Linear(specs[m].dim, dim) for m in self.others})
        self.gate = nn.ModuleDict({m: nn.Linear(specs[m].dim + dim, dim) for m in self.others})
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Mapping[str, torch.Tensor],
        mask: Mapping[str, torch.Tensor],
        present: Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        h = self.token(_frames(x[self.anchor]))  # (B, T, d)
        anchor_here = present[self.anchor].to(h.dtype)[:, None, None]
        h = h * anchor_here
        shift = torch.zeros_like(h)
        for m in self.others:  # a handful of modalities; each step is batched
            frames = _frames(x[m])  # (B, S, D_m)
            real = mask.get(m)
            real = frames.new_ones(frames.shape[:2], dtype=torch.bool) if real is None else real
            real = real & present[m][:, None]
            scores = h @ self.key[m](frames).transpose(1, 2) / self.dim**0.5  # (B, T, S)
            aligned = sparsemax(scores, real[:, None, :]) @ frames  # (B, T, D_m)
            gate = torch.relu(self.gate[m](torch.cat([aligned, h], -1)))
            shift = shift + gate * self.value[m](aligned)
        h_norm, s_norm = h.norm(dim=-1, keepdim=True), shift.norm(dim=-1, keepdim=True)
        alpha = (self.beta * h_norm / s_norm.clamp_min(1e-6)).clamp(max=1.0)
        alpha = torch.where(anchor_here > 0, alpha, torch.ones_like(alpha))
        return self.dropout(self.norm(h + alpha * shift))


def _frames(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, D)`` as is; vectors and images as one frame ``(B, 1, D)``."""
    return x if x.dim() == 3 else x.flatten(1)[:, None, :]


class ConcatFusion(nn.Module):
    """A code from several modalities: per-modality encoders, absent ones zeroed, then
    ``MLP([e_1; ...; e_k])``. Shapes: a :class:`Batch` -> ``(B, out_dim)``."""

    def __init__(self, encoders: nn.ModuleDict, embed_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.encoders = encoders
        self.mlp = MLPHead(embed_dim * len(encoders), hidden, out_dim)

    def forward(self, batch: Batch) -> torch.Tensor:
        emb = {m: enc(batch.x[m], batch.mask.get(m)) for m, enc in self.encoders.items()}
        return self.mlp(torch.cat(list(zero_missing(emb, batch.present).values()), 1))


class MemoryFusion(nn.Module):
    """The Memory Fusion Network (Zadeh et al., AAAI 2018) over aligned sequences.

    One LSTM per modality; at each step a delta-memory attention over the concatenated
    cell states of steps t-1 and t, and a multi-view gated memory ``u_t = g1 * u_{t-1} +
    g2 * tanh(D_u(c_hat))``. Output: ``Linear([h_1^T; ...; h_M^T; u^T])``. A modality's state
    stops updating after its last real step (and never updates when it is absent).

    Shapes: sequences ``(B, T, D_m)`` with one T for all modalities -> ``(B, out_dim)``.
    """

    def __init__(
        self,
        specs: Mapping[str, ModalitySpec],
        out_dim: int,
        hidden: int = 32,
        memory: int = 64,
        gate_hidden: int = 64,
    ) -> None:
        super().__init__()
        vectors = [m for m, s in specs.items() if s.kind != "sequence"]
        if vectors:
            raise InputError(f"fusion 'mfn' needs sequence modalities; {vectors[0]!r} is not")
        self.cells = nn.ModuleDict({m: nn.LSTMCell(s.dim, hidden) for m, s in specs.items()})
        width = 2 * hidden * len(specs)

        def net(out: int) -> nn.Module:
            return mlp(width, [gate_hidden], out)

        self.attention, self.update = net(width), net(memory)
        self.retain_gate, self.update_gate = net(memory), net(memory)
        self.hidden, self.memory = hidden, memory
        self.out = nn.Linear(hidden * len(specs) + memory, out_dim)

    def forward(self, batch: Batch) -> torch.Tensor:
        steps = {batch.x[m].shape[1] for m in self.cells}
        if len(steps) > 1:
            raise InputError(f"fusion 'mfn' needs aligned sequences (one length), got {steps}")
        x0 = batch.x[next(iter(self.cells))]
        b, t_max = x0.shape[:2]
        h = {m: x0.new_zeros(b, self.hidden) for m in self.cells}
        c = {m: x0.new_zeros(b, self.hidden) for m in self.cells}
        u = x0.new_zeros(b, self.memory)
        real = {m: batch.mask[m] & batch.present[m][:, None] for m in self.cells}
        for t in range(t_max):  # recurrent over time: steps depend on each other
            c_prev = torch.cat(list(c.values()), 1)
            for m, cell in self.cells.items():
                h_new, c_new = cell(batch.x[m][:, t], (h[m], c[m]))
                keep = real[m][:, t : t + 1]
                h[m], c[m] = torch.where(keep, h_new, h[m]), torch.where(keep, c_new, c[m])
            both = torch.cat([c_prev, *c.values()], 1)
            attended = both * torch.softmax(self.attention(both), 1)
            u_new = torch.sigmoid(self.retain_gate(attended)) * u + torch.sigmoid(
                self.update_gate(attended)
            ) * torch.tanh(self.update(attended))
            any_real = torch.stack([r[:, t] for r in real.values()], 1).any(1, keepdim=True)
            u = torch.where(any_real, u_new, u)
        return self.out(torch.cat([*h.values(), u], 1))


class TokenFusion(nn.Module):
    """CoMM's fusion (Dufumier et al., ICLR 2025): every modality's tokens, each mapped by a
    linear adapter to ``width`` (with fixed 2-D sine-cosine positions for the pixels of a
    feature map, as CoMM's patch adapter), concatenated behind one learned CLS token, through
    a pre-norm Transformer encoder; the output is the CLS token after a final LayerNorm.

    A modality is left out of a fusion by masking its tokens out of the attention (the CLS
    token always attends to itself), so the embeddings of several modality subsets come out
    of one batched pass: ``forward(tokens, masks, subsets) -> (len(subsets), B, width)``.
    CoMM drops the left-out tokens instead, which gives the same embedding, and in that path
    forgets the padding masks of sequences; here they are kept. The initialisation is CoMM's
    (CLIP's) scaled normal; the MLP uses ``GELU`` where CoMM uses CLIP's ``QuickGELU``
    approximation of it.

    Args:
        token_dims: modality -> width of its tokens.
        width: the fusion's width (CoMM: 512 on Trifeatures, 40 on MultiBench).
        heads: attention heads (divides ``width``).
        layers: Transformer layers.
        grids: modality -> ``(h, w)`` for tokens that are a feature map's pixels.

    Example:
        >>> fusion = TokenFusion({"a": 6, "b": 4}, width=8, heads=2)
        >>> tokens = {"a": torch.randn(3, 5, 6), "b": torch.randn(3, 1, 4)}
        >>> fusion(tokens, {}, [("a",), ("b",), ("a", "b")]).shape
        torch.Size([3, 3, 8])
    """

    def __init__(
        self,
        token_dims: Mapping[str, int],
        width: int,
        heads: int = 8,
        layers: int = 1,
        grids: Mapping[str, tuple[int, int]] | None = None,
        mask_token: bool = False,
    ) -> None:
        super().__init__()
        check_int("TokenFusion", "width", width, minimum=1)
        check_int("TokenFusion", "heads", heads, minimum=1)
        check_int("TokenFusion", "layers", layers, minimum=1)
        if width % heads:
            raise InputError(f"TokenFusion: heads ({heads}) must divide width ({width})")
        self.names = list(token_dims)
        self.adapters = nn.ModuleDict({m: nn.Linear(d, width) for m, d in token_dims.items()})
        for m, (h, w) in (grids or {}).items():
            self.register_buffer(f"positions_{m}", grid_positions(h, w, width), persistent=False)
        self.cls = nn.Parameter(torch.randn(1, 1, width))
        # InfMasking's learned token in place of a masked one (truncated normal, std 0.02).
        self.mask_token = (
            nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, 1, width), std=0.02))
            if mask_token
            else None
        )
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, activation="gelu", batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        attn_std, fc_std = width**-0.5, (2 * width) ** -0.5
        proj_std = attn_std * (2 * layers) ** -0.5
        for block in self.transformer.layers:
            nn.init.normal_(block.self_attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.self_attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.linear1.weight, std=fc_std)
            nn.init.normal_(block.linear2.weight, std=proj_std)

    def forward(
        self,
        tokens: Mapping[str, torch.Tensor],
        masks: Mapping[str, torch.Tensor | None],
        subsets: list[tuple[str, ...]],
        replaced: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``tokens[m]`` ``(B, T_m, d_m)``, ``masks[m]`` ``(B, T_m)`` bool (True: a real token;
        absent or None: all real), one fusion per modality subset: ``(K, B, width)``.

        ``replaced`` ``(K, B, T)`` bool, over the concatenated tokens in modality order: True
        where fusion k sees the learned mask token instead of the token (built with
        ``mask_token=True``)."""
        parts, real, member = [], [], []
        for m in self.names:
            t = self.adapters[m](tokens[m])
            if (pos := getattr(self, f"positions_{m}", None)) is not None:
                t = t + pos.to(t.dtype)
            parts.append(t)
            mask = masks.get(m)
            real.append(
                torch.ones(t.shape[:2], dtype=torch.bool, device=t.device) if mask is None else mask
            )
            member.append(
                torch.tensor([m in s for s in subsets], device=t.device)[:, None].expand(
                    -1, t.shape[1]
                )
            )
        x = torch.cat(parts, 1)  # (B, T, width)
        keep = torch.cat(real, 1)[None] & torch.cat(member, 1)[:, None]  # (K, B, T)
        k, b, t = keep.shape
        cls = self.cls.to(x.dtype).expand(k * b, 1, -1)
        x = x.expand(k, -1, -1, -1)
        if replaced is not None:
            if self.mask_token is None:
                raise InputError("TokenFusion: replacing tokens needs mask_token=True")
            x = torch.where(replaced[..., None], self.mask_token.to(x.dtype), x)
        x = torch.cat([cls, x.reshape(k * b, t, -1)], 1)
        ignore = torch.cat([keep.new_zeros(k * b, 1), ~keep.reshape(k * b, t)], 1)
        # Left-out tokens are zeroed too: attention ignores them, and NaN there stays out.
        x = x.masked_fill(ignore[..., None], 0.0)
        out = self.norm(self.transformer(x, src_key_padding_mask=ignore)[:, 0])
        return out.reshape(k, b, -1)


def grid_positions(h: int, w: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine positions ``(h * w, dim)`` of a row-major ``h x w`` map: half
    the channels the row's 1-D sinusoidal code, half the column's (as MoCo v3 and CoMM)."""
    rows = sinusoidal_positions(h, dim // 2)
    cols = sinusoidal_positions(w, dim - dim // 2)
    return torch.cat([rows[:, None].expand(h, w, -1), cols[None].expand(h, w, -1)], 2).reshape(
        h * w, dim
    )
