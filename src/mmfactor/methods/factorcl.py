"""``factorcl-sup`` and ``factorcl-ssl``: Factorized Contrastive Learning.

Liang, Deng, Ma, Zou, Morency, Salakhutdinov, "Factorized Contrastive Learning: Going Beyond
Multi-view Redundancy", NeurIPS 2023 (arXiv 2306.05268).

Task-relevant information splits into shared S = I(X1; X2; Y) and unique
U_i = I(X_i; Y | X_{-i}) (Sec. 3). FactorCL keeps lower bounds of what should be kept and
removes upper bounds of what should not (Sec. 3.2, Eq. 8-9):

- S   >= I_NCE(X1; X2) - I_NCE-CLUB(X1; X2 | Y)
- U_i >= I_NCE(X_i; Y) - I_NCE-CLUB(X1; X2) + I_NCE(X1; X2 | Y)

Architecture (App. D.1): one encoder per modality, e_m = Enc_m(x_m) ``(B, embed_dim)``; each
MI term t in {a, b, c, d, e} has its own 1-hidden-layer projection head h^t_m per modality
``(B, embed_dim) -> (B, proj_dim)`` and its own critic:

=====  ==========================  =====  =========================================
term   bound                       sign   critic input
=====  ==========================  =====  =========================================
a      I_NCE(X1; X2)               -      (h^a_1 e_1, h^a_2 e_2)
b      I_NCE-CLUB(X1; X2 | Y)      +      (h^b_1 e_1, h^b_2 e_2), conditioned on y
c      I_NCE(X_m; Y)               -      (h^c_m e_m, label embedding of y)
d      I_NCE(X1; X2 | Y)           -      (h^d_1 e_1, h^d_2 e_2), conditioned on y
e      I_NCE-CLUB(X1; X2)          +      (h^e_1 e_1, h^e_2 e_2)
=====  ==========================  =====  =========================================

Loss (all weights 1, each term once, as the released code and App. D Eq. 94-99)::

    L = -I_NCE(X1;X2) + I_CLUB(X1;X2|Y) - I_NCE(X1;Y) - I_NCE(X2;Y) - I_NCE(X1;X2|Y)
        + I_CLUB(X1;X2)

The InfoNCE critics are maximised jointly with the encoders (their parameters are main
parameters). The two NCE-CLUB critics are estimator modules: the engine trains them alone in
the estimator step (``estimator_steps`` steps per batch) by their own InfoNCE
(``learning_loss``), on the detached head outputs the main step leaves in ``Loss.state``.

Factors (spec): Z_S_m = [h^a_m e_m ; h^b_m e_m] ``(B, 2 proj_dim)`` and
Z_U_m = [h^c_m e_m ; h^e_m e_m ; h^d_m e_m] ``(B, 3 proj_dim)``; ``shared`` =
[Z_S_1 ; ... ; Z_S_M] ``(B, 2 M proj_dim)``, ``specific[m]`` = Z_U_m. A modality missing at
encode time contributes zero blocks (its rows of Z_S_m and Z_U_m are set to 0).

Extension to M > 2 modalities (not in the paper): the pairwise terms (a, b, d, e) are applied
to every pair of modalities, each pair with its own critics, and the I(X_m; Y) term (c) to
every modality; heads stay one per term and modality.

FactorCL-SSL (Sec. 3.3): no labels. I(X_m; Y) becomes I_NCE(X_m; X_m') between x_m and an
augmentation x_m' through the same head h^c_m, and the conditional terms condition on the
augmented pair instead of Y by concatenating [h(e_m) ; h(e_m')] on each side, i.e. they are
unconditional estimators on ``2 proj_dim``-wide inputs.

Reference-code bugs not copied (spec section 2):

- the estimator step sampled from the whole data set, test split included: here the engine
  only ever feeds training batches to ``estimator_loss``;
- the synthetic SSL conditional CLUB concatenated a sample with itself instead of with its
  augmentation: here each side is [h(e_m) ; h(e_m')] with x_m' the augmented input;
- temperature arguments were silently ignored: the critics here take no temperature except
  the separable critic's own, which is used;
- the label critic took the raw scalar y even for multi-class targets: here y is embedded
  (``nn.Embedding`` for classes, ``nn.Linear(1, label_dim)`` for regression);
- the synthetic supervised variant conditioned only one side on y: here both sides are
  (concatenation appends c to a and to b; conditional negatives are symmetric);
- the SupCon/SimCLR baselines did not L2-normalise features: see ``clip``/``supcon``, which do.

Cost. With the concat critic (faithful, the default) every term scores all B^2 pairs
through the critic's hidden layers, which dominates a step. What keeps it affordable, all
exact: the critic's first layer is applied per sample, never to a tiled input
(:class:`~mmfactor.estimators.critics.ConcatCritic`); on CPU the pair activations are
computed in blocks that the allocator reuses; for class labels I(X_m; Y) scores the K class
embeddings, not B label rows; the estimator step reuses the main step's detached head
outputs instead of encoding fresh batches, and freezes everything else. ``estimator_batch``
reproduces the released code's smaller critic batches. ``benchmarks/factorcl_speed.py``
measures all of it against the released code's way on the same machine.

Data parallelism: the estimators gather negatives across ranks; nothing here drops rows
per rank when every sample is labeled (see :class:`FactorCLSup` for partly labeled batches).

Example:
    >>> import mmfactor as mf
    >>> data = mf.datasets.load("synthetic", n=600)
    >>> from mmfactor.data.batching import make_loader
    >>> model = mf.methods.build("factorcl-sup", data.modalities, embed_dim=32, proj_dim=16,
    ...                          task=data.target("mix@0.5").task)
    >>> batch = next(iter(make_loader(data, data.indices("train"), 64, target="mix@0.5")))
    >>> loss = model.loss(batch)  # mf.fit(model, data, target="mix@0.5") trains it
    >>> sorted(loss.parts)[:3]
    ['club_x1_x2', 'club_x1_x2_given_y', 'nce_x1_x2']
    >>> factors = model.encode(batch)
    >>> factors.shared.shape, factors.specific["x1"].shape  # (B, 2 M proj_dim), (B, 3 proj_dim)
    (torch.Size([64, 64]), torch.Size([64, 48]))
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from itertools import combinations
from typing import Any

import torch
from torch import nn

from mmfactor.augment import default_augmentation
from mmfactor.data.batching import Batch
from mmfactor.data.dataset import TaskSpec
from mmfactor.errors import InputError
from mmfactor.estimators.base import MIEstimator
from mmfactor.estimators.lower import InfoNCE
from mmfactor.estimators.registry import build as build_estimator
from mmfactor.methods.base import Factors, Loss, Method
from mmfactor.methods.heads import modality_heads
from mmfactor.methods.registry import register

TERMS = ("a", "b", "c", "d", "e")
CRITICS = ("concat", "separable")
CONDITIONS = ("concat", "negatives")


class FactorCLBase(Method):
    """What both variants share: encoders, the five heads per modality, the pairwise
    estimators, factors and the estimator step. Subclasses build the label/augmentation
    terms and implement :meth:`loss`.

    Args:
        embed_dim: width of each encoder's output e_m.
        proj_dim: width of each term's head output h^t_m(e_m).
        proj_hidden: hidden width of the 1-hidden-layer heads (paper App. D.1).
        critic: ``concat`` (FactorCL's MLP critic on [a; b], the faithful default) or
            ``separable`` (g(a)^T h(b), cheaper for large batches).
        critic_hidden: hidden widths of every critic.
        estimator_steps: NCE-CLUB critic steps per main step (paper: 5 on synthetic data,
            1 on MultiBench).
        club_floor: enter the NCE-CLUB estimates into the loss as max(I_CLUB, 0) (not in
            the paper; False is faithful). An estimate below 0 is wrong (MI >= 0): the
            critic has fallen behind, and minimising it further only drives the heads into
            the critic's blind spot. With the separable critic, whose scores grow with the
            features' scale, that runs away: on ``synthetic`` (n 6000, lr 1e-3, 30 epochs)
            the faithful loss reached I_CLUB = -9e11 on valid and a probe accuracy of 0.63
            on mix@0.5; with the floor the estimates stayed within [-0.7, 0.2] and the
            accuracy was 0.77 (the concat critic, faithful: 0.78).
        estimator_batch: rows each critic step uses, drawn afresh per step from the batch's
            detached head outputs (None: the whole batch). The released synthetic code
            trains the critics on fresh batches of 128 while the main step uses 256; with
            the concat critic the critic steps then cost a quarter.
        (others: see :class:`~mmfactor.methods.base.Method`)
    """

    club_cond: nn.ModuleDict  # term b's critics, built by each variant

    def __init__(
        self,
        modalities,
        embed_dim: int = 128,
        proj_dim: int = 64,
        proj_hidden: int = 128,
        critic: str = "concat",
        critic_hidden: Sequence[int] = (128,),
        estimator_steps: int = 1,
        estimator_batch: int | None = None,
        club_floor: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(modalities, embed_dim, **kwargs)
        if critic not in CRITICS:
            raise InputError(f"{self.name}: critic must be one of {CRITICS}, got {critic!r}")
        if isinstance(estimator_steps, bool) or not isinstance(estimator_steps, int):
            raise InputError(f"{self.name}: estimator_steps must be an integer")
        if estimator_steps < 1:
            raise InputError(f"{self.name}: estimator_steps must be >= 1, got {estimator_steps}")
        if estimator_batch is not None and (
            isinstance(estimator_batch, bool)
            or not isinstance(estimator_batch, int)
            or estimator_batch < 2
        ):
            raise InputError(
                f"{self.name}: estimator_batch must be None or an integer >= 2, got "
                f"{estimator_batch!r}"
            )
        if proj_dim < 1 or proj_hidden < 0:
            raise InputError(
                f"{self.name}: proj_dim must be >= 1 and proj_hidden >= 0, got "
                f"{proj_dim} and {proj_hidden}"
            )
        self.proj_dim, self.proj_hidden = proj_dim, proj_hidden
        self.critic = critic
        self.critic_hidden = (
            (critic_hidden,) if isinstance(critic_hidden, int) else tuple(critic_hidden)
        )
        self.estimator_steps, self.estimator_batch = estimator_steps, estimator_batch
        self.club_floor = bool(club_floor)
        # heads[t][m] = h^t_m
        names = self.modality_names
        self.heads = nn.ModuleDict(
            {t: modality_heads(names, embed_dim, proj_hidden, proj_dim) for t in TERMS}
        )
        n = len(self.modality_names)
        self.pairs = list(combinations(range(n), 2))
        # Unconditional pairwise terms: a (InfoNCE, main) and e (NCE-CLUB, estimator).
        self.nce = self._pairwise("infonce", proj_dim)
        self.club = self._pairwise("nce-club", proj_dim)

    # --- building blocks --------------------------------------------------------------
    def estimator(self, name: str, a_dim: int, b_dim: int, **opts: Any) -> MIEstimator:
        """One estimator with this method's critic and critic widths."""
        return build_estimator(
            name, a_dim, b_dim, critic=self.critic, hidden=self.critic_hidden, **opts
        )

    def _pairwise(self, name: str, width: int, **opts: Any) -> nn.ModuleDict:
        return nn.ModuleDict(
            {pair_key(i, j): self.estimator(name, width, width, **opts) for i, j in self.pairs}
        )

    def pair_names(self, i: int, j: int) -> str:
        return f"{self.modality_names[i]}_{self.modality_names[j]}"

    def head(self, term: str, m: str) -> nn.Module:
        """h^term_m: ``(B, embed_dim) -> (B, proj_dim)``."""
        heads = self.heads[term]
        assert isinstance(heads, nn.ModuleDict)
        return heads[m]

    def project(self, term: str, emb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """h^term_m(e_m) for every modality ``(B, proj_dim)``."""
        return {m: self.head(term, m)(e) for m, e in emb.items()}

    # --- the contract -----------------------------------------------------------------
    def encode(self, batch: Batch) -> Factors:
        """Z_S_m = [h^a e ; h^b e], Z_U_m = [h^c e ; h^e e ; h^d e]; missing rows are 0."""
        emb = self.embed(batch)
        shared, specific = [], {}
        for m, e in emb.items():
            keep = batch.present[m].to(e.dtype)[:, None]
            h = {t: self.head(t, m)(e) * keep for t in TERMS}
            shared.append(torch.cat([h["a"], h["b"]], 1))
            specific[m] = torch.cat([h["c"], h["e"], h["d"]], 1)
        return Factors(shared=torch.cat(shared, 1), specific=specific)

    def unconditional_terms(
        self, emb: dict[str, torch.Tensor], state: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """I_NCE(X_i; X_j) (term a) and I_NCE-CLUB(X_i; X_j) (term e) for every pair; stores
        the detached inputs of the CLUB critics in ``state``."""
        za, ze = self.project("a", emb), self.project("e", emb)
        parts = {}
        names = self.modality_names
        for i, j in self.pairs:
            key, mi, mj = pair_key(i, j), names[i], names[j]
            parts[f"nce_{self.pair_names(i, j)}"] = self.nce[key](za[mi], za[mj])
            parts[f"club_{self.pair_names(i, j)}"] = self.club[key](ze[mi], ze[mj])
            state[f"club:{key}"] = (ze[mi].detach(), ze[mj].detach(), None)
        return parts

    # --- estimator step ---------------------------------------------------------------
    def estimator_modules(self) -> list[nn.Module]:
        """The NCE-CLUB critics (unconditional and conditional), trained only here."""
        return [*self.club.values(), *self.club_cond.values()]

    def estimator_loss(self, batch: Batch, state: dict[str, Any]) -> torch.Tensor:
        """Sum of the NCE-CLUB critics' own losses (-InfoNCE of each critic) on the detached
        head outputs of the main step (``estimator_batch`` random rows of them, if set)."""
        losses = []
        for prefix, estimators in (("club", self.club), ("club_cond", self.club_cond)):
            for key, est in estimators.items():
                assert isinstance(est, MIEstimator)
                if f"{prefix}:{key}" in state:  # club_cond: absent with < 2 labeled rows
                    losses.append(est.learning_loss(*self.estimator_rows(state[f"{prefix}:{key}"])))
        return torch.stack(losses).sum()

    def estimator_rows(self, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        """``(a, b, c)`` or a random ``estimator_batch`` rows of them (same rows for all)."""
        n = inputs[0].shape[0]
        if self.estimator_batch is None or n <= self.estimator_batch:
            return inputs
        rows = torch.randperm(n, device=inputs[0].device)[: self.estimator_batch]
        return tuple(None if x is None else x[rows] for x in inputs)


def pair_key(i: int, j: int) -> str:
    return f"{i}_{j}"


def signed_total(parts: dict[str, torch.Tensor], club_floor: bool = False) -> torch.Tensor:
    """-(lower bounds, ``nce_*``) + (upper bounds, ``club_*``), all weights 1; with
    ``club_floor`` the upper bounds enter as max(I_CLUB, 0)."""
    terms = [
        -v if k.startswith("nce_") else (v.clamp_min(0.0) if club_floor else v)
        for k, v in parts.items()
    ]
    return torch.stack(terms).sum()


@register("factorcl-sup")
class FactorCLSup(FactorCLBase):
    """FactorCL-SUP: the supervised objective of Sec. 3.2 (module doc, loss table).

    Shapes: batch of B rows -> ``Loss.total`` a 0-d tensor; parts ``nce_<a>_<b>``,
    ``club_<a>_<b>_given_y``, ``nce_<m>_y``, ``nce_<a>_<b>_given_y``, ``club_<a>_<b>`` for
    modalities a < b and every modality m (all in nats, positive = estimated information).

    Y is embedded: ``nn.Embedding(n_classes, label_dim)`` for classification targets,
    ``nn.Linear(1, label_dim)`` for regression (the reference code fed the raw scalar y to
    the label critic even for multi-class targets, a bug). I(X_m; Y) is InfoNCE between
    h^c_m(e_m) and the embedding. The embedding is learned by those terms only; the
    conditional terms see it detached, so minimising the CLUB term cannot reshape the
    conditioning variable.

    Conditioning of I(X1; X2 | Y) and I_CLUB(X1; X2 | Y) (``condition``):

    - ``concat`` (FactorCL's way, default): c = the label embedding appended to both sides
      (targets I(X1, Y; X2, Y), see :mod:`mmfactor.estimators.base`);
    - ``negatives``: negatives only among samples of the same class (c = integer labels),
      the sampling the conditional bounds ask for; classification targets only.

    Labels: samples of the unlabeled pool (``batch.labeled`` False) are left out of the
    label terms (b, c, d), which then see only the labeled rows; the unconditional terms use
    every row. Under data parallelism that makes per-rank shapes differ, so factorcl-sup
    expects fully labeled batches there. Missing modalities are not masked in the loss
    (as ``clip``); train on complete rows.

    Args:
        condition: ``concat`` or ``negatives`` (above).
        label_dim: width of the label embedding.
        (others: see :class:`FactorCLBase`)

    Example:
        >>> import mmfactor as mf
        >>> data = mf.datasets.load("synthetic", n=600)
        >>> model = mf.methods.build("factorcl-sup", data.modalities, embed_dim=32,
        ...                          proj_dim=16, task=data.target("mix@0.5").task)
    """

    uses_labels = True

    def __init__(
        self, modalities, condition: str = "concat", label_dim: int = 16, **kwargs: Any
    ) -> None:
        super().__init__(modalities, **kwargs)
        if condition not in CONDITIONS:
            raise InputError(
                f"{self.name}: condition must be one of {CONDITIONS}, got {condition!r}"
            )
        if label_dim < 1:
            raise InputError(f"{self.name}: label_dim must be >= 1, got {label_dim}")
        self.condition, self.label_dim = condition, label_dim
        cond = (
            {"c_dim": label_dim, "condition": "concat"}
            if condition == "concat"
            else {"condition": "negatives"}
        )
        self.club_cond = self._pairwise("nce-club", self.proj_dim, **cond)  # term b
        self.nce_cond = self._pairwise("infonce", self.proj_dim, **cond)  # term d
        self.nce_label = nn.ModuleDict(  # term c
            {m: self.estimator("infonce", self.proj_dim, label_dim) for m in self.modality_names}
        )

    def build_task_modules(self, task: TaskSpec) -> None:
        if task.kind == "classification":
            self.label_embedding: nn.Module = nn.Embedding(task.n_classes, self.label_dim)
        else:
            if self.condition == "negatives":
                raise InputError(
                    f"{self.name}: condition='negatives' needs a classification target "
                    "(negatives share the class); use condition='concat'"
                )
            self.label_embedding = nn.Linear(1, self.label_dim)

    def embed_label(self, y: torch.Tensor) -> torch.Tensor:
        """``(B,)`` targets -> ``(B, label_dim)``."""
        assert self.task is not None
        if self.task.kind == "classification":
            return self.label_embedding(y.long())
        return self.label_embedding(y.float().reshape(-1, 1))

    def loss(self, batch: Batch) -> Loss:
        assert self.task is not None and batch.y is not None, "factorcl-sup needs a target"
        emb = self.embed(batch)
        state: dict[str, Any] = {}
        uncond = self.unconditional_terms(emb, state)
        rows = batch.labeled  # None: every row is labeled
        y = batch.y if rows is None else batch.y[rows]
        lab = emb if rows is None else {m: e[rows] for m, e in emb.items()}
        if len(y) >= 2:
            label_parts = self.label_terms(lab, y, state)
        else:  # fewer than two labeled rows: no contrast possible, the label terms are 0
            zero = next(iter(uncond.values())).new_zeros(())
            label_parts = defaultdict(lambda: zero)
        parts: dict[str, torch.Tensor] = {}
        for i, j in self.pairs:  # the paper's order
            pair = self.pair_names(i, j)
            parts[f"nce_{pair}"] = uncond[f"nce_{pair}"]
            parts[f"club_{pair}_given_y"] = label_parts[f"club_{pair}_given_y"]
        for m in self.modality_names:
            parts[f"nce_{m}_y"] = label_parts[f"nce_{m}_y"]
        for i, j in self.pairs:
            pair = self.pair_names(i, j)
            parts[f"nce_{pair}_given_y"] = label_parts[f"nce_{pair}_given_y"]
            parts[f"club_{pair}"] = uncond[f"club_{pair}"]
        return Loss(signed_total(parts, self.club_floor), parts, state)

    def label_nce(self, m: str, z: torch.Tensor, ey: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """I_NCE(X_m; Y) (term c). For classes the critic scores each row against the K
        class embeddings, not the B label rows: the same InfoNCE for O(B K) critic work."""
        est = self.nce_label[m]
        assert isinstance(est, InfoNCE) and self.task is not None
        if isinstance(self.label_embedding, nn.Embedding):  # classification
            return est.mi(z, self.label_embedding.weight, b_index=y.long())
        return est.mi(z, ey)

    def label_terms(
        self, emb: dict[str, torch.Tensor], y: torch.Tensor, state: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """Terms b, c, d on labeled rows: I_CLUB(X_i; X_j | Y), I_NCE(X_m; Y),
        I_NCE(X_i; X_j | Y)."""
        ey = self.embed_label(y)
        c = ey.detach() if self.condition == "concat" else y.long()
        zb, zc, zd = self.project("b", emb), self.project("c", emb), self.project("d", emb)
        names = self.modality_names
        parts = {f"nce_{m}_y": self.label_nce(m, zc[m], ey, y) for m in names}
        for i, j in self.pairs:
            key, mi, mj, pair = pair_key(i, j), names[i], names[j], self.pair_names(i, j)
            parts[f"club_{pair}_given_y"] = self.club_cond[key](zb[mi], zb[mj], c)
            parts[f"nce_{pair}_given_y"] = self.nce_cond[key](zd[mi], zd[mj], c)
            state[f"club_cond:{key}"] = (zb[mi].detach(), zb[mj].detach(), c.detach())
        return parts


@register("factorcl-ssl")
class FactorCLSSL(FactorCLBase):
    """FactorCL-SSL: the self-supervised objective of Sec. 3.3 (module doc).

    I(X_m; Y) -> I_NCE(X_m; X_m') with the same head h^c_m on e_m and on e_m' =
    Enc_m(x_m'), x_m' an augmentation of x_m (:func:`mmfactor.augment.default_augmentation`
    per modality kind, one transform drawn per sample). The conditional terms condition on
    the augmented views: each side is [h(e_m) ; h(e_m')] ``(B, 2 proj_dim)`` (the reference
    code concatenated a sample with itself instead of its augmentation, a bug not copied).

    Parts: ``nce_<a>_<b>``, ``club_<a>_<b>_given_aug``, ``nce_<m>_<m>aug``,
    ``nce_<a>_<b>_given_aug``, ``club_<a>_<b>``. Missing modalities are not masked in the
    loss (as ``clip``).

    "Unique augmentation" hook (paper, images: the second modality's augmentation omits the
    crop so that content referenced by the first survives): replace a modality's
    augmentation module after building, ``model.augment["x2"] = my_augmentation`` (any
    module with ``forward(x, mask) -> (x_aug, mask_aug)``).

    Args: see :class:`FactorCLBase`.

    Example:
        >>> import mmfactor as mf
        >>> data = mf.datasets.load("synthetic", n=600)
        >>> model = mf.methods.build("factorcl-ssl", data.modalities, embed_dim=32)
    """

    def __init__(self, modalities, **kwargs: Any) -> None:
        super().__init__(modalities, **kwargs)
        wide = 2 * self.proj_dim
        self.club_cond = self._pairwise("nce-club", wide)  # term b, on [h(e); h(e')]
        self.nce_cond = self._pairwise("infonce", wide)  # term d, on [h(e); h(e')]
        self.nce_self = nn.ModuleDict(  # term c: I(X_m; X_m')
            {
                m: self.estimator("infonce", self.proj_dim, self.proj_dim)
                for m in self.modality_names
            }
        )
        self.augment = nn.ModuleDict(
            {m: default_augmentation(spec) for m, spec in self.modalities.items()}
        )

    def augmented(self, batch: Batch) -> Batch:
        """The batch with every modality replaced by its augmentation x_m'."""
        x_aug, mask_aug = {}, dict(batch.mask)
        for m in self.modality_names:
            x_aug[m], mask_m = self.augment[m](batch.x[m], batch.mask.get(m))
            if mask_m is not None:
                mask_aug[m] = mask_m
        return replace(batch, x=x_aug, mask=mask_aug)

    def loss(self, batch: Batch) -> Loss:
        emb = self.embed(batch)
        emb_aug = self.embed(self.augmented(batch))
        state: dict[str, Any] = {}
        uncond = self.unconditional_terms(emb, state)
        names = self.modality_names

        def both(term: str, m: str) -> torch.Tensor:
            head = self.head(term, m)
            return torch.cat([head(emb[m]), head(emb_aug[m])], 1)

        parts: dict[str, torch.Tensor] = {}
        for i, j in self.pairs:
            key, mi, mj, pair = pair_key(i, j), names[i], names[j], self.pair_names(i, j)
            parts[f"nce_{pair}"] = uncond[f"nce_{pair}"]
            bi, bj = both("b", mi), both("b", mj)
            parts[f"club_{pair}_given_aug"] = self.club_cond[key](bi, bj)
            state[f"club_cond:{key}"] = (bi.detach(), bj.detach(), None)
        for m in names:
            head = self.head("c", m)
            parts[f"nce_{m}_{m}aug"] = self.nce_self[m](head(emb[m]), head(emb_aug[m]))
        for i, j in self.pairs:
            key, mi, mj, pair = pair_key(i, j), names[i], names[j], self.pair_names(i, j)
            parts[f"nce_{pair}_given_aug"] = self.nce_cond[key](both("d", mi), both("d", mj))
            parts[f"club_{pair}"] = uncond[f"club_{pair}"]
        return Loss(signed_total(parts, self.club_floor), parts, state)


__all__ = ["FactorCLBase", "FactorCLSSL", "FactorCLSup"]
