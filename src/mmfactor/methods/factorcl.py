"""``factorcl-sup`` and ``factorcl-ssl``: Factorized Contrastive Learning.

Liang, Deng, Ma, Zou, Morency, Salakhutdinov, "Factorized Contrastive Learning: Going Beyond
Multi-view Redundancy", NeurIPS 2023 (arXiv 2306.05268).

Task-relevant information splits into shared S = I(X1; X2; Y) and unique
U_i = I(X_i; Y | X_{-i}) (Sec. 3). FactorCL keeps lower bounds of what should be kept and
removes upper bounds of what should not (Sec. 3.2, Eq. 8-9):

- S   >= I_NCE(X1; X2) - I_NCE-CLUB(X1; X2 | Y)
- U_i >= I_NCE(X_i; Y) - I_NCE-CLUB(X1; X2) + I_NCE(X1; X2 | Y)

Architecture (App. D.1): one encoder per modality, e_m = Enc_m(x_m) ``(B, embed_dim)``; each
MI term has its own 1-hidden-layer projection head h^term_m per modality
``(B, embed_dim) -> (B, proj_dim)`` and its own critic. The terms, named as in the code:

=============  ==========================  =====  ==========================================
term           bound                       sign   critic input
=============  ==========================  =====  ==========================================
``nce``        I_NCE(X1; X2)               -      (h^nce_1 e_1, h^nce_2 e_2)
``club_cond``  I_NCE-CLUB(X1; X2 | Y)      +      (h^club_cond_1 e_1, h^club_cond_2 e_2), and y
``nce_y``      I_NCE(X_m; Y)               -      (h^nce_y_m e_m, label embedding of y)
``nce_cond``   I_NCE(X1; X2 | Y)           -      (h^nce_cond_1 e_1, h^nce_cond_2 e_2), and y
``club``       I_NCE-CLUB(X1; X2)          +      (h^club_1 e_1, h^club_2 e_2)
=============  ==========================  =====  ==========================================

Loss (all weights 1, each term once, as the released code and App. D Eq. 94-99)::

    L = -I_NCE(X1;X2) + I_CLUB(X1;X2|Y) - I_NCE(X1;Y) - I_NCE(X2;Y) - I_NCE(X1;X2|Y)
        + I_CLUB(X1;X2)

The InfoNCE critics are maximised jointly with the encoders (their parameters are main
parameters). The two NCE-CLUB critics are estimator modules: the engine trains them alone in
the estimator step (``estimator_steps`` steps per batch) by their own InfoNCE
(``learning_loss``), on the detached head outputs the main step leaves in ``Loss.state``.

Factors: Z_S_m = [h^nce_m e_m ; h^club_cond_m e_m] ``(B, 2 proj_dim)`` (the heads of the
shared terms) and Z_U_m = [h^nce_y_m e_m ; h^club_m e_m ; h^nce_cond_m e_m] ``(B, 3 proj_dim)``
(the heads of the unique terms); ``shared`` =
[Z_S_1 ; ... ; Z_S_M] ``(B, 2 M proj_dim)``, ``specific[m]`` = Z_U_m. A modality missing at
encode time contributes zero blocks (its rows of Z_S_m and Z_U_m are set to 0).

Extension to M > 2 modalities (not in the paper): the pairwise terms are applied to every
pair of modalities, each pair with its own critics, and I(X_m; Y) to every modality; heads
stay one per term and modality.

FactorCL-SSL (Sec. 3.3): no labels. I(X_m; Y) becomes I_NCE(X_m; X_m') between x_m and an
augmentation x_m' through the same head h^nce_y_m, and the conditional terms condition on the
augmented pair instead of Y by concatenating [h(e_m) ; h(e_m')] on each side, i.e. they are
unconditional estimators on ``2 proj_dim``-wide inputs.

Reference-code bugs not copied:

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

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mmfactor.augment import default_augmentation
from mmfactor.checks import check_choice, check_int
from mmfactor.data.batching import Batch
from mmfactor.data.dataset import ModalitySpec, TaskSpec
from mmfactor.encoders.heads import modality_heads
from mmfactor.errors import InputError
from mmfactor.estimators.base import MIEstimator
from mmfactor.estimators.lower import InfoNCE
from mmfactor.estimators.registry import build as build_estimator
from mmfactor.methods.base import Factors, Loss, Method, augmented, pair_name, zero_missing
from mmfactor.methods.registry import register

#: The MI terms, in the paper's order; each has a head per modality and its own critics.
TERMS = ("nce", "club_cond", "nce_y", "nce_cond", "club")
CRITICS = ("concat", "separable")
CONDITIONS = ("concat", "negatives")
Terms = dict[str, torch.Tensor]  # part name -> 0-d estimate, in nats


class FactorCLBase(Method):
    """What both variants share: encoders, a head per term and modality, the unconditional
    pairwise estimators, the factors and the estimator step (the base class's, on the NCE-CLUB
    critics' recorded inputs). Subclasses build the Y-side terms and write :meth:`loss`.

    Args:
        embed_dim: width of each encoder's output e_m.
        proj_dim: width of each term's head output h^term_m(e_m).
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

    club_cond: nn.ModuleDict  # I_NCE-CLUB(X_i; X_j | Y) per pair, built by each variant

    def __init__(
        self,
        modalities: Mapping[str, ModalitySpec],
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
        check_choice(self.name, "critic", critic, CRITICS)
        check_int(self.name, "estimator_steps", estimator_steps, minimum=1)
        if estimator_batch is not None:
            check_int(self.name, "estimator_batch", estimator_batch, minimum=2, hint="or None")
        check_int(self.name, "proj_dim", proj_dim, minimum=1)
        check_int(self.name, "proj_hidden", proj_hidden, minimum=0)
        self.proj_dim, self.proj_hidden = proj_dim, proj_hidden
        self.critic = critic
        self.critic_hidden = (
            (critic_hidden,) if isinstance(critic_hidden, int) else tuple(critic_hidden)
        )
        self.estimator_steps, self.estimator_batch = estimator_steps, estimator_batch
        self.club_floor = bool(club_floor)
        names = self.modality_names
        self.heads = nn.ModuleDict(  # heads[term][m] = h^term_m
            {t: modality_heads(names, embed_dim, proj_hidden, proj_dim) for t in TERMS}
        )
        self.nce = self.pairwise_estimators("infonce", proj_dim)  # I_NCE(X_i; X_j)
        self.club = self.pairwise_estimators("nce-club", proj_dim)  # I_NCE-CLUB(X_i; X_j)
        self.renamed_parameters = renames_of_version_0_1(names)

    # --- building blocks --------------------------------------------------------------
    def estimator(self, name: str, a_dim: int, b_dim: int, **opts: Any) -> MIEstimator:
        """One estimator with this method's critic and critic widths."""
        return build_estimator(
            name, a_dim, b_dim, critic=self.critic, hidden=self.critic_hidden, **opts
        )

    def pairwise_estimators(self, name: str, width: int, **opts: Any) -> nn.ModuleDict:
        """One estimator ``name`` per modality pair, keyed ``"x1_x2"``."""
        return nn.ModuleDict(
            {
                pair_name(a, b): self.estimator(name, width, width, **opts)
                for a, b in self.modality_pairs()
            }
        )

    def project(self, term: str, emb: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """h^term_m(e_m) ``(B, proj_dim)`` for every modality m of ``emb``."""
        heads = self.heads[term]
        assert isinstance(heads, nn.ModuleDict)
        return {m: heads[m](e) for m, e in emb.items()}

    def pairwise(
        self,
        bound: str,
        z: Mapping[str, torch.Tensor],
        c: torch.Tensor | None = None,
        state: dict[str, Any] | None = None,
        suffix: str = "",
    ) -> Terms:
        """``{"<bound>_<a>_<b><suffix>": estimate}`` of the pairwise estimators ``bound`` on
        ``(z[a], z[b][, c])`` for every pair; ``state`` records the inputs of estimator
        modules for the estimator step."""
        name = bound.removesuffix("_cond")
        return {
            f"{name}_{pair_name(a, b)}{suffix}": self.estimate(
                f"{bound}.{pair_name(a, b)}", z[a], z[b], *([] if c is None else [c]), state=state
            )
            for a, b in self.modality_pairs()
        }

    def upper(self, terms: Terms) -> torch.Tensor:
        """The sum of NCE-CLUB upper bounds, each floored at 0 with ``club_floor``."""
        return total(terms, floor=self.club_floor)

    # --- the contract -----------------------------------------------------------------
    def encode(self, batch: Batch) -> Factors:
        """Z_S_m = [h^nce e ; h^club_cond e], Z_U_m = [h^nce_y e ; h^club e ; h^nce_cond e];
        rows of an absent modality are 0."""
        emb = self.embed(batch)
        h = {t: zero_missing(self.project(t, emb), batch.present) for t in TERMS}
        names = self.modality_names
        return Factors(
            shared=torch.cat([torch.cat([h["nce"][m], h["club_cond"][m]], 1) for m in names], 1),
            specific={
                m: torch.cat([h["nce_y"][m], h["club"][m], h["nce_cond"][m]], 1) for m in names
            },
        )

    def estimator_modules(self) -> list[nn.Module]:
        """The NCE-CLUB critics (unconditional and conditional), trained only in the
        estimator step by their own InfoNCE (``learning_loss``)."""
        return [*self.club.values(), *self.club_cond.values()]


def renames_of_version_0_1(names: Sequence[str]) -> dict[str, str]:
    """Checkpoints of mmfactor 0.1 named the heads by letter and the pairs by index."""
    letters = {"a": "nce", "b": "club_cond", "c": "nce_y", "d": "nce_cond", "e": "club"}
    renamed = {f"heads.{letter}": f"heads.{term}" for letter, term in letters.items()}
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            for bound in ("nce", "club", "nce_cond", "club_cond"):
                renamed[f"{bound}.{i}_{j}"] = f"{bound}.{pair_name(a, names[j])}"
    return {**renamed, "nce_label": "nce_y", "nce_self": "nce_y"}


def total(terms: Terms, floor: bool = False) -> torch.Tensor:
    """The sum of the estimates in ``terms`` (each floored at 0 with ``floor``)."""
    values = torch.stack(list(terms.values()))
    return (values.clamp_min(0.0) if floor else values).sum()


@register("factorcl-sup")
class FactorCLSup(FactorCLBase):
    """FactorCL-SUP: the supervised objective of Sec. 3.2 (module doc, loss table).

    Shapes: batch of B rows -> ``Loss.total`` a 0-d tensor; parts ``nce_<a>_<b>``,
    ``club_<a>_<b>_given_y``, ``nce_<m>_y``, ``nce_<a>_<b>_given_y``, ``club_<a>_<b>`` for
    modalities a < b and every modality m (all in nats, positive = estimated information).

    Y is embedded: ``nn.Embedding(n_classes, label_dim)`` for classification targets,
    ``nn.Linear(1, label_dim)`` for regression (the reference code fed the raw scalar y to
    the label critic even for multi-class targets, a bug). I(X_m; Y) is InfoNCE between
    h^nce_y_m(e_m) and the embedding. The embedding is learned by those terms only; the
    conditional terms see it detached, so minimising the CLUB term cannot reshape the
    conditioning variable.

    Conditioning of I(X1; X2 | Y) and I_CLUB(X1; X2 | Y) (``condition``):

    - ``concat`` (FactorCL's way, default): c = the label embedding appended to both sides
      (targets I(X1, Y; X2, Y), see :mod:`mmfactor.estimators.base`);
    - ``negatives``: negatives only among samples of the same class (c = integer labels),
      the sampling the conditional bounds ask for; classification targets only.

    Labels: samples of the unlabeled pool (``batch.labeled`` False) are left out of the
    terms with Y, which then see only the labeled rows (all 0 with fewer than two); the
    unconditional terms use every row. Under data parallelism that makes per-rank shapes
    differ, so factorcl-sup expects fully labeled batches there. Missing modalities are not
    masked in the loss (as ``clip``); train on complete rows.

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
        self,
        modalities: Mapping[str, ModalitySpec],
        condition: str = "concat",
        label_dim: int = 16,
        **kwargs: Any,
    ) -> None:
        super().__init__(modalities, **kwargs)
        check_choice(self.name, "condition", condition, CONDITIONS)
        check_int(self.name, "label_dim", label_dim, minimum=1)
        self.condition, self.label_dim = condition, label_dim
        cond = (
            {"c_dim": label_dim, "condition": "concat"}
            if condition == "concat"
            else {"condition": "negatives"}
        )
        self.club_cond = self.pairwise_estimators("nce-club", self.proj_dim, **cond)
        self.nce_cond = self.pairwise_estimators("infonce", self.proj_dim, **cond)
        self.nce_y = nn.ModuleDict(  # I_NCE(X_m; Y)
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
        """Sec. 3.2: -I_NCE(X1;X2) + I_CLUB(X1;X2|Y) - sum_m I_NCE(X_m;Y) - I_NCE(X1;X2|Y)
        + I_CLUB(X1;X2), summed over pairs of modalities."""
        assert self.task is not None and batch.y is not None, "factorcl-sup needs a target"
        emb = self.embed(batch)
        state: dict[str, Any] = {}
        nce = self.pairwise("nce", self.project("nce", emb))
        club = self.pairwise("club", self.project("club", emb), state=state)
        rows = batch.labeled  # the terms with Y see the labeled rows (None: all are)
        y = batch.y if rows is None else batch.y[rows]
        emb_y = emb if rows is None else {m: e[rows] for m, e in emb.items()}
        if len(y) >= 2:
            nce_y, club_given_y, nce_given_y = self.label_terms(emb_y, y, state)
        else:  # no contrast without two labeled rows: these terms are 0
            nce_y, club_given_y, nce_given_y = self.label_terms_zero(nce)
        total_loss = (
            -total(nce)
            + self.upper(club_given_y)
            - total(nce_y)
            - total(nce_given_y)
            + self.upper(club)
        )
        parts = {**nce, **club_given_y, **nce_y, **nce_given_y, **club}
        return Loss(total_loss, parts, state)

    def label_terms(
        self, emb: dict[str, torch.Tensor], y: torch.Tensor, state: dict[str, Any]
    ) -> tuple[Terms, Terms, Terms]:
        """I_NCE(X_m; Y), I_NCE-CLUB(X_i; X_j | Y) and I_NCE(X_i; X_j | Y) on labeled rows."""
        ey = self.embed_label(y)
        c = ey.detach() if self.condition == "concat" else y.long()
        z_club_cond = self.project("club_cond", emb)
        z_nce_y = self.project("nce_y", emb)
        z_nce_cond = self.project("nce_cond", emb)
        nce_y = {f"nce_{m}_y": self.label_nce(m, z, ey, y) for m, z in z_nce_y.items()}
        club_given_y = self.pairwise("club_cond", z_club_cond, c, state, suffix="_given_y")
        nce_given_y = self.pairwise("nce_cond", z_nce_cond, c, suffix="_given_y")
        return nce_y, club_given_y, nce_given_y

    def label_terms_zero(self, like: Terms) -> tuple[Terms, Terms, Terms]:
        """The terms with Y, all 0 (a batch with fewer than two labeled rows)."""
        zero = next(iter(like.values())).new_zeros(())
        pairs = [pair_name(a, b) for a, b in self.modality_pairs()]
        return (
            {f"nce_{m}_y": zero for m in self.modality_names},
            {f"club_{p}_given_y": zero for p in pairs},
            {f"nce_{p}_given_y": zero for p in pairs},
        )

    def label_nce(self, m: str, z: torch.Tensor, ey: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """I_NCE(X_m; Y). For classes the critic scores each row against the K class
        embeddings, not the B label rows: the same InfoNCE for O(B K) critic work."""
        est = self.nce_y[m]
        assert isinstance(est, InfoNCE) and self.task is not None
        if isinstance(self.label_embedding, nn.Embedding):  # classification
            return est.mi(z, self.label_embedding.weight, b_index=y.long())
        return est.mi(z, ey)


@register("factorcl-ssl")
class FactorCLSSL(FactorCLBase):
    """FactorCL-SSL: the self-supervised objective of Sec. 3.3 (module doc).

    I(X_m; Y) -> I_NCE(X_m; X_m') with the same head h^nce_y_m on e_m and on e_m' =
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

    def __init__(self, modalities: Mapping[str, ModalitySpec], **kwargs: Any) -> None:
        super().__init__(modalities, **kwargs)
        wide = 2 * self.proj_dim  # the conditional terms see [h(e); h(e')]
        self.club_cond = self.pairwise_estimators("nce-club", wide)
        self.nce_cond = self.pairwise_estimators("infonce", wide)
        self.nce_y = nn.ModuleDict(  # I_NCE(X_m; X_m')
            {
                m: self.estimator("infonce", self.proj_dim, self.proj_dim)
                for m in self.modality_names
            }
        )
        self.augment = nn.ModuleDict(
            {m: default_augmentation(spec) for m, spec in self.modalities.items()}
        )

    def loss(self, batch: Batch) -> Loss:
        """Sec. 3.3: -I_NCE(X1;X2) + I_CLUB(X1;X2|X1',X2') - sum_m I_NCE(X_m;X_m')
        - I_NCE(X1;X2|X1',X2') + I_CLUB(X1;X2), summed over pairs of modalities."""
        emb = self.embed(batch)
        emb_aug = self.embed(augmented(batch, self.augment))
        state: dict[str, Any] = {}
        nce = self.pairwise("nce", self.project("nce", emb))
        club = self.pairwise("club", self.project("club", emb), state=state)
        club_given_aug = self.pairwise(
            "club_cond",
            self.with_views("club_cond", emb, emb_aug),
            state=state,
            suffix="_given_aug",
        )
        z, z_aug = self.project("nce_y", emb), self.project("nce_y", emb_aug)
        nce_aug = {f"nce_{m}_{m}aug": self.nce_y[m](z[m], z_aug[m]) for m in self.modality_names}
        nce_given_aug = self.pairwise(
            "nce_cond", self.with_views("nce_cond", emb, emb_aug), suffix="_given_aug"
        )
        total_loss = (
            -total(nce)
            + self.upper(club_given_aug)
            - total(nce_aug)
            - total(nce_given_aug)
            + self.upper(club)
        )
        parts = {**nce, **club_given_aug, **nce_aug, **nce_given_aug, **club}
        return Loss(total_loss, parts, state)

    def with_views(
        self, term: str, emb: dict[str, torch.Tensor], emb_aug: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """[h^term_m(e_m) ; h^term_m(e_m')] ``(B, 2 proj_dim)`` for every modality m."""
        h, h_aug = self.project(term, emb), self.project(term, emb_aug)
        return {m: torch.cat([h[m], h_aug[m]], 1) for m in self.modality_names}


__all__ = ["FactorCLBase", "FactorCLSSL", "FactorCLSup"]
