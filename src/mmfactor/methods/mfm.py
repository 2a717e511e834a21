"""``mfm``: the Multimodal Factorization Model (Tsai, Liang, Zadeh, Morency, Salakhutdinov,
"Learning Factorized Multimodal Representations", ICLR 2019).

Latents: a multimodal discriminative code ``Z_y`` inferred from all modalities, and one
generative code ``Z_m`` per modality inferred from ``x_m`` alone. Factors ``F_y =
MLP_y(Z_y)`` and ``F_m = MLP_m(Z_m)``. Each modality is generated from ``[F_y ; F_m]``, the
label from ``F_y`` only. The objective (paper Eq. 4, the MMD form of its Wasserstein
autoencoder bound)::

    L = task(y_hat, y) + sum_m lambda_x[m] * rec(x_hat_m, x_m)
        + lambda_mmd * sum_{k in {y, 1..M}} MMD(Z_k, N(0, I))

with the L1 task loss for regression (the paper's MOSI setting) and cross-entropy for
classes.

Surrogate inference (paper Sec. 3.3): for each modality m a surrogate network infers
``(Z_y, Z_m)`` from the other modalities. It is trained, in the same step, to match the
full-data codes (MSE to detached targets), to predict the label and to reconstruct ``x_m``
through the model's own factor MLPs, decoders and head, whose parameters these terms do not
update. At test time a sample whose modality m is absent gets its ``Z_m`` and ``Z_y`` from
the surrogate; if several modalities are absent, ``Z_y`` comes from the first absent one's
surrogate and the surrogate's own fusion treats the others as zeros. With ``surrogate=False``
an absent modality is zeroed at the input of the fusion encoder, as the other methods do.

Factors: ``shared`` = F_y, ``specific[m]`` = F_m; :meth:`MFM.reconstruct` returns x_hat per
modality. Fusion for ``Z_y``: ``concat`` (per-modality encoders, concatenated, MLP; the
default) or ``mfn``, the Memory Fusion Network the paper uses (aligned sequences only).

Deviations from the released code, each a fix of a reference-code issue listed in the spec:
reconstruction errors ignore padding steps (the code averages over them); the surrogate's
task term uses the surrogate prediction (the code uses the wrong output). MultiBench's
"MFM" has no MMD prior and no separate generative encoders: this is the paper's model.
Not implemented: the learning-rate schedule (ReduceLROnPlateau) of the released code.

Example:
    >>> import mmfactor as mf
    >>> data = mf.datasets.load("synthetic", n=300)
    >>> model = mf.methods.build("mfm", data.modalities, embed_dim=16, z_dim=8, f_dim=4)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mmfactor.data.batching import Batch
from mmfactor.data.dataset import ModalitySpec, TaskSpec
from mmfactor.errors import InputError
from mmfactor.losses.mmd import MMDPrior
from mmfactor.methods.base import Factors, Loss, Method, labeled_rows, masked_mean, task_loss
from mmfactor.methods.decoders import build_decoder, decode, reconstruction_error
from mmfactor.methods.heads import MLPHead
from mmfactor.methods.registry import register

FUSIONS = ("concat", "mfn")
REGRESSION_LOSSES = ("l1", "mse")


class FactorMLP(nn.Sequential):
    """``Z -> F``: two layers with ReLU and dropout (the paper's factor MLPs)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
        )


class ConcatFusion(nn.Module):
    """A code from several modalities: per-modality encoders, absent ones zeroed, then
    ``MLP([e_1; ...; e_k])``. Shapes: a :class:`Batch` -> ``(B, out_dim)``."""

    def __init__(self, encoders: nn.ModuleDict, embed_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.encoders = encoders
        self.mlp = MLPHead(embed_dim * len(encoders), hidden, out_dim)

    def forward(self, batch: Batch) -> torch.Tensor:
        parts = [
            enc(batch.x[m], batch.mask.get(m)) * batch.present[m].to(batch.x[m].dtype)[:, None]
            for m, enc in self.encoders.items()
        ]
        return self.mlp(torch.cat(parts, 1))


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
            return nn.Sequential(
                nn.Linear(width, gate_hidden), nn.ReLU(), nn.Linear(gate_hidden, out)
            )

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


def frozen(module: nn.Module, *args: Any) -> Any:
    """``module(*args)`` with its parameters detached: gradients reach ``args`` only."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return torch.func.functional_call(module, params, args)


@register("mfm")
class MFM(Method):
    """MFM: discriminative ``Z_y`` from all modalities, generative ``Z_m`` per modality.

    Args:
        embed_dim: width of every per-modality encoder's output.
        z_dim: latent size of every ``Z`` (an int), or a mapping with ``"y"`` and each
            modality name (the paper's MOSI setting: y 32, text 32, audio 8, vision 80).
        f_dim: factor size, int or mapping like ``z_dim`` (MOSI: y 16, text 88, audio 8,
            vision 8).
        factor_hidden: hidden width of the factor MLPs; dropout: their dropout.
        head_hidden: hidden width of the label decoder on ``F_y`` (0: linear, the default;
            a narrow ReLU layer on a small ``F_y`` can die into a constant prediction).
        decoder_hidden: hidden width of the decoders (GRU for sequences, MLP otherwise).
        fusion: ``concat`` or ``mfn`` (the fusion encoder for ``Z_y``); fusion_hidden: its
            width (the MLP after concatenation, or the MFN's LSTMs).
        lambda_mmd: weight of the MMD prior terms.
        lambda_x: reconstruction weight, one number or a mapping per modality (MOSI:
            text 1, audio 0.01, vision 0.5).
        regression_loss: ``l1`` (the paper) or ``mse``.
        surrogate: train surrogate networks for missing modalities (see the module doc);
            lambda_surrogate: the weight of their terms.
        mmd_unbiased: the U-statistic instead of MFM's V-statistic.
        (others: see :class:`~mmfactor.methods.base.Method`)
    """

    uses_labels = True
    has_head = True

    def __init__(
        self,
        modalities,
        embed_dim: int = 64,
        z_dim: int | Mapping[str, int] = 32,
        f_dim: int | Mapping[str, int] = 16,
        factor_hidden: int = 64,
        head_hidden: int = 0,
        dropout: float = 0.1,
        decoder_hidden: int = 64,
        fusion: str = "concat",
        fusion_hidden: int = 64,
        lambda_mmd: float = 1.0,
        lambda_x: float | Mapping[str, float] = 1.0,
        regression_loss: str = "l1",
        surrogate: bool = True,
        lambda_surrogate: float = 1.0,
        mmd_unbiased: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(modalities, embed_dim, **kwargs)
        names = self.modality_names
        for option, value, choices in (
            ("fusion", fusion, FUSIONS),
            ("regression_loss", regression_loss, REGRESSION_LOSSES),
        ):
            if value not in choices:
                raise InputError(
                    f"mfm: {option} must be one of {', '.join(choices)}, got {value!r}"
                )
        if (
            not 0 <= dropout < 1
            or min(factor_hidden, decoder_hidden, fusion_hidden) < 1
            or head_hidden < 0
        ):
            raise InputError("mfm: widths must be >= 1 and dropout in [0, 1)")
        if lambda_mmd < 0 or lambda_surrogate < 0:
            raise InputError("mfm: lambda_mmd and lambda_surrogate must be >= 0")
        self.z = _per_code("z_dim", z_dim, names)
        self.f = _per_code("f_dim", f_dim, names)
        self.lambda_x = _per_code("lambda_x", lambda_x, names, with_y=False, kind=float)
        self.lambda_mmd, self.lambda_surrogate = float(lambda_mmd), float(lambda_surrogate)
        self.regression_loss, self.fusion, self.surrogate = regression_loss, fusion, surrogate
        self.dropout, self.head_hidden = dropout, head_hidden

        # Z_m from x_m alone: the base encoders, then a linear map to the latent.
        self.to_latent = nn.ModuleDict({m: nn.Linear(embed_dim, self.z[m]) for m in names})
        # Z_y from all modalities: its own encoders (it must not share Z_m's).
        if fusion == "mfn":
            self.fuse: nn.Module = MemoryFusion(self.modalities, self.z["y"], fusion_hidden)
        else:
            self.fuse = ConcatFusion(
                self.modality_encoders(names, embed_dim), embed_dim, fusion_hidden, self.z["y"]
            )
        self.factor = nn.ModuleDict(
            {k: FactorMLP(self.z[k], factor_hidden, self.f[k], dropout) for k in ["y", *names]}
        )
        self.decoders = nn.ModuleDict(
            {
                m: build_decoder(self.f["y"] + self.f[m], spec, decoder_hidden)
                for m, spec in self.modalities.items()
            }
        )
        # surrogates[m]: (Z_y, Z_m) from every modality but m.
        self.surrogates = nn.ModuleDict(
            {
                m: ConcatFusion(
                    self.modality_encoders([o for o in names if o != m], embed_dim),
                    embed_dim,
                    fusion_hidden,
                    self.z["y"] + self.z[m],
                )
                for m in names
            }
            if surrogate
            else {}
        )
        self.mmd = MMDPrior(unbiased=mmd_unbiased)

    def build_task_modules(self, task: TaskSpec) -> None:
        self.head = MLPHead(self.f["y"], self.head_hidden, task.out_dim, self.dropout)

    # --- codes and factors ----------------------------------------------------------------
    def full_codes(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``Z_y`` from all (observed) modalities and each ``Z_m`` from ``x_m``."""
        emb = self.embed(batch)
        codes = {"y": self.fuse(batch)}
        codes.update({m: self.to_latent[m](emb[m]) for m in self.modality_names})
        return codes

    def surrogate_codes(self, batch: Batch, m: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Z_y, Z_m)`` inferred without modality m."""
        out = self.surrogates[m](batch)
        return out[:, : self.z["y"]], out[:, self.z["y"] :]

    def codes(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The codes used at inference: surrogate ones where a modality is absent."""
        codes = self.full_codes(batch)
        if not self.surrogate:
            return codes
        replaced = torch.zeros_like(batch.present[self.modality_names[0]])
        for m in self.modality_names:
            absent = ~batch.present[m]
            if not absent.any():  # the usual case: no surrogate network needs to run
                continue
            z_y, z_m = self.surrogate_codes(batch, m)
            codes[m] = torch.where(absent[:, None], z_m, codes[m])
            codes["y"] = torch.where((absent & ~replaced)[:, None], z_y, codes["y"])
            replaced = replaced | absent
        return codes

    def factors(self, codes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: self.factor[k](z) for k, z in codes.items()}

    def encode(self, batch: Batch) -> Factors:
        f = self.factors(self.codes(batch))
        return Factors(shared=f["y"], specific={m: f[m] for m in self.modality_names})

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.head(self.factor["y"](self.codes(batch)["y"]))

    def reconstruct(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``x_hat[m]`` for every modality (absent ones from the surrogate codes), shaped like
        ``batch.x[m]``."""
        f = self.factors(self.codes(batch))
        return {m: self._decode(m, f["y"], f[m], batch) for m in self.modality_names}

    def _decode(
        self, m: str, f_y: torch.Tensor, f_m: torch.Tensor, batch: Batch, fixed: bool = False
    ) -> torch.Tensor:
        decoder, code, spec = self.decoders[m], torch.cat([f_y, f_m], 1), self.modalities[m]
        if fixed:
            return decode(lambda c, t: frozen(decoder, c, t), code, batch.x[m], spec)
        return decode(decoder, code, batch.x[m], spec)

    # --- the objective ----------------------------------------------------------------------
    def reconstruction_error(self, m: str, x_hat: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Per-sample error ``(B,)`` over real steps only (a fix: the released code averages
        over padding), see :func:`~mmfactor.methods.decoders.reconstruction_error`."""
        return reconstruction_error(x_hat, batch.x[m], batch.mask.get(m))

    def _task(self, out: torch.Tensor, batch: Batch) -> torch.Tensor:
        assert self.task is not None and batch.y is not None, "mfm needs a target"
        out, y = labeled_rows(out, batch)
        if self.task.kind == "regression" and self.regression_loss == "l1":
            return F.l1_loss(out.reshape(-1), y.float())
        return task_loss(self.task, out, y)

    def loss(self, batch: Batch) -> Loss:
        """Paper Eq. 4 (task + weighted reconstructions + MMD prior on every latent), plus
        the surrogate terms of Sec. 3.3 when ``surrogate``."""
        codes = self.full_codes(batch)
        f = self.factors(codes)
        parts = {"task": self._task(self.head(f["y"]), batch)}
        for m in self.modality_names:
            rec = self.reconstruction_error(m, self._decode(m, f["y"], f[m], batch), batch)
            parts[f"rec_{m}"] = masked_mean(rec, batch.present[m])
        parts["mmd"] = sum(self.mmd(z) for z in codes.values())  # type: ignore[assignment]
        total = parts["task"] + self.lambda_mmd * parts["mmd"]
        total = total + sum(self.lambda_x[m] * parts[f"rec_{m}"] for m in self.modality_names)
        if not self.surrogate:
            return Loss(total, parts)
        parts["surrogate"] = self.surrogate_loss(batch, codes)
        # Eq. 4 alone is logged as `loss` and picks the checkpoint: the surrogate terms rise
        # while the full-data codes they match still move.
        return Loss(total + self.lambda_surrogate * parts["surrogate"], parts, objective=total)

    def surrogate_loss(self, batch: Batch, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """For each modality m, the codes inferred without it: MSE to the full-data codes,
        the task loss of their prediction, and the reconstruction of ``x_m`` from them, the
        last two through the frozen factor MLPs, decoder and head."""
        total = codes["y"].new_zeros(())
        for m in self.modality_names:
            z_y, z_m = self.surrogate_codes(batch, m)
            seen = batch.present[m]
            match = F.mse_loss(z_y, codes["y"].detach(), reduction="none").mean(1)
            match = match + F.mse_loss(z_m, codes[m].detach(), reduction="none").mean(1)
            f_y, f_m = frozen(self.factor["y"], z_y), frozen(self.factor[m], z_m)
            rec = self.reconstruction_error(m, self._decode(m, f_y, f_m, batch, fixed=True), batch)
            task = self._task(frozen(self.head, f_y), batch)
            total = total + masked_mean(match + self.lambda_x[m] * rec, seen) + task
        return total


def _per_code(
    option: str,
    value: Any,
    names: list[str],
    with_y: bool = True,
    kind: type = int,
) -> dict[str, Any]:
    """An option given as one value or per code (``y`` and each modality) -> a dict."""
    keys = (["y"] if with_y else []) + names
    if isinstance(value, Mapping):
        missing = [k for k in keys if k not in value]
        extra = [k for k in value if k not in keys]
        if missing or extra:
            raise InputError(
                f"mfm: {option} needs exactly the keys {', '.join(keys)}; "
                + (f"missing {missing[0]!r}" if missing else f"unknown {extra[0]!r}")
            )
        out = {k: value[k] for k in keys}
    else:
        out = dict.fromkeys(keys, value)
    for k, v in out.items():
        number = isinstance(v, int | float) and not isinstance(v, bool)
        if kind is int and not (number and isinstance(v, int) and v >= 1):
            raise InputError(f"mfm: {option} for {k!r} must be a positive integer, got {v!r}")
        if not number or v < 0:
            raise InputError(f"mfm: {option} for {k!r} must be a number >= 0, got {v!r}")
        out[k] = kind(v)
    return out
