"""``mird``: Mutual Information-based Representations Disentanglement (Qian, Han, Li, He,
Zheng, Zheng, arXiv 2409.12408, 2024).

One modality-agnostic representation ``z_S``, learned jointly from all modalities, and one
modality-specific ``z_m`` per modality; they are kept apart by minimising CLUB estimates of
their mutual information (non-linear dependence), not by orthogonality (MISA's linear
constraint).

- ``z_S``: :class:`~mmfactor.encoders.fusion.CrossModalFusion` (the anchor modality's
  tokens, each enriched by sparse attention over the other modalities' unaligned frames and a
  gated addition; the paper's WSA on text), then an encoder over the fused tokens (the
  family's sequence encoder; an MLP for vector data) to ``shared_dim``.
- ``z_m = Enc_m(x_m)`` ``(B, embed_dim)``: the base per-modality encoders (padding-aware).
- Decoders ``x_hat_m = Dec_m([z_S ; z_m])`` (GRU over the steps for sequences).
- Prediction ``y_hat = MLP([z_S ; z_1 ; ... ; z_M])``, two layers.
- CLUB (full variational form) on every pair of specific codes and on (z_S, z_m) for every
  m: six pairs for three modalities, weights 1; parts ``club_<a>_<b>``.

The objective (paper Sec. 3.4, released ``run_training_recon_mim_sl.py``)::

    L = log L_task + sum_m log L_rec,m + sum_pairs I_CLUB(pair)

(``balance="weighted"``: ``L_task + rec_weight sum_m L_rec,m + mi_weight sum I_CLUB``).
The CLUB networks q(b | a) are estimator modules: after each main step the engine fits them
by maximum likelihood for ``estimator_steps`` (5) steps on the step's detached codes (the
released code re-encodes the batch for each of the 5 steps; the encoders do not change in
between, so only dropout masks would differ). Under data parallelism the log terms use the
global loss value (:func:`~mmfactor.losses.balance.log_balanced`) and CLUB's negatives are
gathered, so the update equals one process's.

Unlabeled data (paper Sec. 3.5): with ``train.unlabeled_ratio = r`` each batch holds r times
as many samples of the data set's ``unlabeled`` split as labeled ones; ``L_task`` uses the
labeled rows only, the reconstructions, the CLUB terms and the q-network fitting use all.

Reference-code issues not copied (spec): the checkpoint is chosen on validation, not test
(the engine's model selection); padding steps do not count in the reconstruction error;
sequence encoders read the last *real* step, not padding; sentiment MAE/Corr are computed on
all samples (:mod:`mmfactor.evaluate`); logged MI values are the estimates as computed.
Not from the paper: without BERT the rates are ours (see ``configs/mird.yaml``); the codes
pass a LayerNorm (``code_norm``, measured in Args); model selection watches the validation
task loss (the CLUB estimates in the total are noisy); an absent modality's ``z_m`` is
zeroed in the factors and the head, and the fusion skips it.

Factors: ``shared`` = z_S ``(B, shared_dim)``, ``specific[m]`` = z_m ``(B, embed_dim)``.

Example:
    >>> import mmfactor as mf
    >>> data = mf.datasets.load("synthetic", n=300)
    >>> model = mf.methods.build("mird", data.modalities, embed_dim=16,
    ...                          task=data.target().task)
    >>> from mmfactor.data.batching import make_loader
    >>> batch = next(iter(make_loader(data, data.indices("train"), 32, target="mix@0.5")))
    >>> sorted(model.loss(batch).parts)
    ['club_shared_x1', 'club_shared_x2', 'club_x1_x2', 'rec_x1', 'rec_x2', 'task']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mmfactor.checks import check_choice, check_float, check_int, check_probability
from mmfactor.data.batching import Batch
from mmfactor.data.dataset import ModalitySpec, TaskSpec
from mmfactor.encoders.fusion import CrossModalFusion
from mmfactor.encoders.heads import MLPHead
from mmfactor.errors import InputError
from mmfactor.estimators.registry import build as build_estimator
from mmfactor.losses.balance import log_balanced
from mmfactor.methods.base import (
    Factors,
    Loss,
    Method,
    labeled_rows,
    masked_mean,
    pair_name,
    task_loss,
    zero_missing,
)
from mmfactor.methods.decoders import build_decoder, decode, reconstruction_error
from mmfactor.methods.registry import register

BALANCES = ("log", "weighted")
UPPER_BOUNDS = ("club", "club-s", "l1out")  # Gaussian q(b | a), fitted by likelihood
SHARED = "shared"


@register("mird")
class MIRD(Method):
    """MIRD: a jointly learned ``z_S`` and specific ``z_m`` kept apart by CLUB.

    Args:
        embed_dim: width of each specific code z_m (paper: 64).
        shared_dim: width of z_S (None: ``embed_dim``).
        anchor: the modality whose steps carry the fusion (None: ``text`` if there is one,
            else the first sequence modality, else the first modality).
        fusion_dim: width of the fused tokens; fusion_beta: the gated addition's norm cap.
        head_hidden: hidden width of the 2-layer prediction head (None: ``shared_dim``, as
            the released code); dropout: dropout of the fused tokens and of the head.
        decoder_hidden: hidden width of the decoders.
        estimator: the MI upper bound minimised (``club``, the paper; or ``club-s``,
            ``l1out``); estimator_hidden: its q-network widths (released code: 16);
            log_var_bound: q's log-variance lies in ``(-bound, bound)`` (released code: a
            tanh, so 1); estimator_steps: its maximum-likelihood steps per batch.
        balance: ``log`` (the paper: log-losses, no weights) or ``weighted``.
        mi_weight: multiplies the sum of CLUB terms in either balance (0 removes the MI
            minimisation: the ablation "MIRD without MI"; the q-networks still train, so
            the logged estimates stay meaningful).
        rec_weight: the reconstructions' weight in the ``weighted`` balance.
        code_norm: LayerNorm (no affine) on every code (not in the paper). The released
            codes are linear maps of tanh-bounded states (BERT's pooler, LSTM states); ours
            come from unbounded encoders, and minimising CLUB then grows the codes' scale
            faster than q can follow: on ``synthetic`` (n 6000, batch 256, seed 0) the
            estimates reached -1e8 within 10 epochs and the head accuracy on mix@0.5 was
            0.66, against estimates within [-0.2, 0.3] and 0.79 with the norm.
        (others: see :class:`~mmfactor.methods.base.Method`)
    """

    uses_labels = True
    has_head = True
    renamed_parameters = {"mi": "club"}  # checkpoints of mmfactor 0.1

    def __init__(
        self,
        modalities,
        embed_dim: int = 64,
        shared_dim: int | None = None,
        anchor: str | None = None,
        fusion_dim: int = 64,
        fusion_beta: float = 1.0,
        head_hidden: int | None = None,
        dropout: float = 0.1,
        decoder_hidden: int = 64,
        estimator: str = "club",
        estimator_hidden: int | Sequence[int] = (16,),
        log_var_bound: float = 1.0,
        estimator_steps: int = 5,
        balance: str = "log",
        mi_weight: float = 1.0,
        rec_weight: float = 1.0,
        code_norm: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(modalities, embed_dim, **kwargs)
        names = self.modality_names
        check_choice(self.name, "balance", balance, BALANCES)
        check_choice(self.name, "estimator", estimator, UPPER_BOUNDS)
        if SHARED in names:
            raise InputError(f"mird: a modality may not be named {SHARED!r}")
        check_int(self.name, "estimator_steps", estimator_steps, minimum=1)
        check_float(self.name, "mi_weight", mi_weight, minimum=0)
        check_float(self.name, "rec_weight", rec_weight, minimum=0)
        check_probability(self.name, "dropout", dropout)
        check_int(self.name, "fusion_dim", fusion_dim, minimum=1)
        check_int(self.name, "decoder_hidden", decoder_hidden, minimum=1)
        self.anchor = anchor if anchor is not None else default_anchor(self.modalities)
        self.shared_dim = embed_dim if shared_dim is None else shared_dim
        self.head_hidden = self.shared_dim if head_hidden is None else head_hidden
        check_int(self.name, "shared_dim", self.shared_dim, minimum=1)
        check_int(self.name, "head_hidden", self.head_hidden, minimum=0)
        self.dropout, self.balance = dropout, balance
        self.mi_weight, self.rec_weight = float(mi_weight), float(rec_weight)
        self.estimator_steps = estimator_steps
        self.code_norm = bool(code_norm)

        self.fusion = CrossModalFusion(
            self.modalities, self.anchor, fusion_dim, fusion_beta, dropout
        )
        if self.modalities[self.anchor].kind == "sequence":
            self.fused_spec = ModalitySpec(SHARED, "sequence", (fusion_dim,))
        else:
            self.fused_spec = ModalitySpec(SHARED, "vector", (fusion_dim,))
        self.shared_encoder = self.encoder_for(self.fused_spec, self.shared_dim)
        self.decoders = nn.ModuleDict(
            {
                m: build_decoder(self.shared_dim + embed_dim, spec, decoder_hidden)
                for m, spec in self.modalities.items()
            }
        )
        width = {SHARED: self.shared_dim, **dict.fromkeys(names, embed_dim)}
        self.pairs = [*self.modality_pairs(), *((SHARED, m) for m in names)]
        hidden = [estimator_hidden] if isinstance(estimator_hidden, int) else list(estimator_hidden)
        self.club = nn.ModuleDict(  # the MI upper bound on every pair of codes
            {
                pair_name(a, b): build_estimator(
                    estimator, width[a], width[b], hidden=hidden, log_var_bound=log_var_bound
                )
                for a, b in self.pairs
            }
        )

    def build_task_modules(self, task: TaskSpec) -> None:
        width = self.shared_dim + len(self.modality_names) * self.embed_dim
        self.head = MLPHead(width, self.head_hidden, task.out_dim, self.dropout)

    # --- codes ----------------------------------------------------------------------------
    def codes(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``{"shared": z_S, m: z_m}``; absent modalities' z_m are zero."""
        tokens = self.fusion(batch.x, batch.mask, batch.present)
        if self.fused_spec.kind == "sequence":
            anchor_mask = batch.mask.get(self.anchor)
            z_s = self.shared_encoder(tokens, anchor_mask)
        else:
            z_s = self.shared_encoder(tokens[:, 0])
        codes = {SHARED: z_s, **self.embed(batch)}
        if self.code_norm:
            codes = {k: nn.functional.layer_norm(z, z.shape[1:]) for k, z in codes.items()}
        specific = zero_missing({m: codes[m] for m in self.modality_names}, batch.present)
        return {SHARED: codes[SHARED], **specific}

    def _predict(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat([codes[SHARED], *(codes[m] for m in self.modality_names)], 1))

    def encode(self, batch: Batch) -> Factors:
        codes = self.codes(batch)
        return Factors(shared=codes[SHARED], specific={m: codes[m] for m in self.modality_names})

    def predict(self, batch: Batch) -> torch.Tensor:
        return self._predict(self.codes(batch))

    def _decode(self, m: str, codes: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        code = torch.cat([codes[SHARED], codes[m]], 1)
        return decode(self.decoders[m], code, batch.x[m], self.modalities[m])

    # --- the objective ----------------------------------------------------------------------
    def loss(self, batch: Batch) -> Loss:
        """Paper Sec. 3.4: log L_task + sum_m log L_rec,m + sum_pairs I_CLUB (module doc)."""
        assert self.task is not None and batch.y is not None, "mird needs a target"
        codes = self.codes(batch)
        out, y = labeled_rows(self._predict(codes), batch)
        task = task_loss(self.task, out, y)
        rec = {
            f"rec_{m}": masked_mean(
                reconstruction_error(self._decode(m, codes, batch), batch.x[m], batch.mask.get(m)),
                batch.present[m],
            )
            for m in self.modality_names
        }
        state: dict[str, Any] = {}
        club = {
            f"club_{pair_name(a, b)}": self.estimate(
                f"club.{pair_name(a, b)}", codes[a], codes[b], state=state
            )
            for a, b in self.pairs
        }
        mi = torch.stack(list(club.values())).sum()
        if self.balance == "log":
            fit = log_balanced(task) + sum(log_balanced(r) for r in rec.values())
        else:
            fit = task + self.rec_weight * torch.stack(list(rec.values())).sum()
        # Model selection watches the task loss: the CLUB estimates in the total are noisy
        # (the released code picks its checkpoint by the task metric, on the test set).
        total = fit + self.mi_weight * mi
        return Loss(total, {"task": task, **rec, **club}, state, objective=task)  # type: ignore[arg-type]

    # --- estimator step ---------------------------------------------------------------------
    def estimator_modules(self) -> list[nn.Module]:
        """The q-networks of the CLUB terms, fitted only in the estimator step by maximum
        likelihood on the step's detached codes (all rows, labeled or not)."""
        return list(self.club.values())


def default_anchor(specs: dict[str, ModalitySpec]) -> str:
    """``text`` if there is such a modality, else the first sequence modality, else the
    first modality."""
    if "text" in specs:
        return "text"
    return next((m for m, s in specs.items() if s.kind == "sequence"), next(iter(specs)))
