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

from mmfactor.checks import check_choice, check_float, check_int, check_probability
from mmfactor.data.batching import Batch
from mmfactor.data.dataset import TaskSpec
from mmfactor.encoders.fusion import ConcatFusion, MemoryFusion
from mmfactor.encoders.heads import MLPHead, mlp
from mmfactor.errors import InputError
from mmfactor.losses.mmd import MMDPrior
from mmfactor.methods.base import Factors, Loss, Method, labeled_rows, masked_mean, task_loss
from mmfactor.methods.decoders import build_decoder, decode, reconstruction_error
from mmfactor.methods.registry import register

FUSIONS = ("concat", "mfn")
REGRESSION_LOSSES = ("l1", "mse")


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
        check_choice(self.name, "fusion", fusion, FUSIONS)
        check_choice(self.name, "regression_loss", regression_loss, REGRESSION_LOSSES)
        check_probability(self.name, "dropout", dropout)
        for option, width in (
            ("factor_hidden", factor_hidden),
            ("decoder_hidden", decoder_hidden),
            ("fusion_hidden", fusion_hidden),
        ):
            check_int(self.name, option, width, minimum=1)
        check_int(self.name, "head_hidden", head_hidden, minimum=0)
        check_float(self.name, "lambda_mmd", lambda_mmd, minimum=0)
        check_float(self.name, "lambda_surrogate", lambda_surrogate, minimum=0)
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
            {k: mlp(self.z[k], [factor_hidden], self.f[k], dropout) for k in ["y", *names]}
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
        task = self._task(self.head(f["y"]), batch)
        rec = {
            f"rec_{m}": masked_mean(
                self.reconstruction_error(m, self._decode(m, f["y"], f[m], batch), batch),
                batch.present[m],
            )
            for m in self.modality_names
        }
        mmd = sum(self.mmd(z) for z in codes.values())
        eq4 = (
            task
            + self.lambda_mmd * mmd
            + sum(self.lambda_x[m] * rec[f"rec_{m}"] for m in self.modality_names)
        )
        parts = {"task": task, **rec, "mmd": mmd}
        if not self.surrogate:
            return Loss(eq4, parts)  # type: ignore[arg-type]
        surrogate = self.surrogate_loss(batch, codes)
        # Eq. 4 alone is logged as `loss` and picks the checkpoint: the surrogate terms rise
        # while the full-data codes they match still move.
        return Loss(
            eq4 + self.lambda_surrogate * surrogate,
            {**parts, "surrogate": surrogate},  # type: ignore[dict-item]
            objective=eq4,  # type: ignore[arg-type]
        )

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
    if kind is int:
        return {k: check_int("mfm", f"{option}[{k!r}]", v, minimum=1) for k, v in out.items()}
    return {k: check_float("mfm", f"{option}[{k!r}]", v, minimum=0) for k, v in out.items()}
