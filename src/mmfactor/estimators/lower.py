"""Critic-based lower bounds on I(A; B): InfoNCE, NWJ, MINE, JS and SMILE.

All are maximised jointly over the critic (``learning_loss = -mi``) and, as loss terms, over
the representations. Notation: f_ij = f(a_i, b_j) for anchors i (this rank's rows) and the
gathered batch j; "p" are aligned pairs (i, i), "p x p" mismatched ones (i, j != i), which
sample the product of marginals (Poole et al. 2019 exclude the diagonal the same way).
Critic costs for one B x B score matrix: concat O(B^2 H H'), separable O(B H + B^2 e),
bilinear O(B d^2 + B^2 d). See :mod:`mmfactor.estimators.base` for conditioning on c.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from mmfactor.checks import check_float
from mmfactor.distributed import gather, gather_nograd
from mmfactor.estimators.base import MIEstimator, Pairs, row_logmeanexp, row_mean
from mmfactor.estimators.critics import Hidden, build_critic


class CriticEstimator(MIEstimator):
    """An estimator built on a critic f(a, b) (``concat``, ``separable`` or ``bilinear``)."""

    kind = "lower"

    def __init__(
        self,
        a_dim: int,
        b_dim: int,
        critic: str = "concat",
        hidden: Hidden = (128, 64),
        c_dim: int = 0,
        condition: str = "concat",
        **critic_opts: float,
    ) -> None:
        super().__init__(a_dim, b_dim, c_dim, condition)
        self.critic_kind = critic
        self.critic = build_critic(critic, self.in_a, self.in_b, hidden, **critic_opts)

    def scores(self, p: Pairs) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``(B, B_all)`` of this rank's anchors against the gathered b, and the
        aligned pairs' scores ``(B,)`` taken from it. With a table of distinct b rows
        (``p.b_index``), the critic scores the ``(B, K)`` distinct pairs and the columns are
        expanded by index: the same matrix for O(B K) critic work instead of O(B^2)."""
        if p.b_index is None:
            s = self.critic(p.a, gather(p.b))
        else:
            s = self.critic(p.a, p.b)[:, gather_nograd(p.b_index)]
        return s, s[torch.arange(len(p.rows), device=s.device), p.rows]

    def learning_loss(
        self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None
    ) -> torch.Tensor:
        return -self.mi(a, b, c)


def infonce_terms(p: Pairs, s: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Per-row InfoNCE ``f_ii - log mean_j exp f_ij`` over candidates j (self included)."""
    return pos - row_logmeanexp(s, p.candidates(include_self=True))


class InfoNCE(CriticEstimator):
    """InfoNCE / CPC bound (van den Oord et al. 2018; Poole et al. 2019, I_NCE).

    I >= mean_i [f(a_i, b_i) - logsumexp_j f(a_i, b_j)] + log B, the negatives j running over
    the (gathered) batch; the form with a_j contrasted against b_i is the same bound with the
    roles of A and B swapped. Bias: a lower bound (in expectation), and never above log B
    (log of the number of candidates per row with conditional negatives), so it is badly
    biased down once I approaches log B; low variance. Cost: one B x B score matrix.

    Example:
        >>> est = InfoNCE(3, 3, hidden=(16,))
        >>> est.mi(torch.randn(32, 3), torch.randn(32, 3)).item() <= math.log(32)
        True
    """

    name = "infonce"

    def mi(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        c: torch.Tensor | None = None,
        b_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``b_index`` ``(B,)``: ``b`` is then a table of K distinct rows ``(K, d_b)`` shared
        by all ranks (e.g. class embeddings) and sample i pairs ``a[i]`` with
        ``b[b_index[i]]``; the same estimate, the critic run on B x K pairs only."""
        p = self.prepare(a, b, c, b_index)
        s, pos = self.scores(p)
        return p.mean(infonce_terms(p, s, pos))


class NWJ(CriticEstimator):
    """NWJ / f-GAN KL bound (Nguyen, Wainwright & Jordan 2010; MINE-f of Belghazi et al. 2018).

    I >= E_p[f] - e^{-1} E_{p x p}[e^f]. Bias: a lower bound for every critic, tight at
    f* = 1 + log p(a, b) / (p(a) p(b)); unbiased per batch (no log of a mean) but its
    variance grows like e^I. Cost: one B x B score matrix.

    Example:
        >>> NWJ(2, 2, hidden=(8,)).mi(torch.randn(16, 2), torch.randn(16, 2)).item() < 1
        True
    """

    name = "nwj"

    def mi(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        p = self.prepare(a, b, c)
        s, pos = self.scores(p)
        lme = row_logmeanexp(s, p.candidates(include_self=False))
        return p.mean(pos - torch.exp(lme - 1.0))


class MINE(CriticEstimator):
    """MINE: Donsker-Varadhan bound with a bias-corrected gradient (Belghazi et al. 2018).

    I >= E_p[f] - log E_{p x p}[e^f]. The value is the batch DV estimate; its gradient
    replaces the batch mean E[e^f] in the denominator of grad log E[e^f] by an exponential
    moving average (rate ``alpha``, updated in ``learning_loss`` only, kept in a buffer),
    which removes the mini-batch bias of the gradient. Bias: lower bound in the limit, but
    the batch log-mean-exp makes each batch value biased up (Jensen); variance grows
    like e^I. Cost: one B x B score matrix.

    Example:
        >>> est = MINE(2, 2, hidden=(8,))
        >>> est.learning_loss(torch.randn(16, 2), torch.randn(16, 2)).shape
        torch.Size([])
    """

    name = "mine"

    def __init__(self, a_dim: int, b_dim: int, alpha: float = 0.01, **kwargs: Any) -> None:
        super().__init__(a_dim, b_dim, **kwargs)
        check_float("mine", "alpha", alpha, 0, 1, min_open=True)
        self.alpha = alpha
        self.log_ma: torch.Tensor
        self.ma_ready: torch.Tensor
        self.register_buffer("log_ma", torch.zeros(()))
        self.register_buffer("ma_ready", torch.zeros((), dtype=torch.bool))

    def _dv(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None, update: bool):
        p = self.prepare(a, b, c)
        s, pos = self.scores(p)
        log_mean = p.global_logmeanexp(row_logmeanexp(s, p.candidates(include_self=False)))
        if update:
            with torch.no_grad():
                moved = torch.logaddexp(
                    self.log_ma + math.log1p(-self.alpha), log_mean + math.log(self.alpha)
                )
                self.log_ma.copy_(torch.where(self.ma_ready, moved, log_mean))
                self.ma_ready.fill_(True)
        ref = torch.where(self.ma_ready, self.log_ma, log_mean.detach())
        # Value log_mean; gradient E[e^f grad f] / moving average of E[e^f].
        ratio = torch.exp(log_mean - ref)
        corrected = log_mean.detach() + ratio - ratio.detach()
        return p.mean(pos) - corrected

    def mi(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self._dv(a, b, c, update=False)

    def learning_loss(
        self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None
    ) -> torch.Tensor:
        return -self._dv(a, b, c, update=self.training)


def _js_terms(p: Pairs, s: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None):
    """Per-row f-GAN Jensen-Shannon objective E_p[-sp(-f)] - E_{p x p}[sp(f)]."""
    return -F.softplus(-pos) - row_mean(F.softplus(s), mask)


class JS(CriticEstimator):
    """Critic trained with the f-GAN Jensen-Shannon objective (Nowozin et al. 2016), as in
    Deep InfoMax (Hjelm et al. 2019), read out as an NWJ bound (Poole et al. 2019, I_JS).

    Training (the gradient of ``mi``): E_p[-softplus(-f)] - E_{p x p}[softplus(f)], stable
    and low-variance, optimal at f* = log p(a, b) / (p(a) p(b)). Value: the NWJ bound of
    the critic 1 + f, i.e. 1 + E_p[f] - E_{p x p}[e^f], a lower bound for any f, tight at f*.
    Bias: lower bound; variance of the value as NWJ's. Cost: one B x B score matrix.

    Example:
        >>> JS(2, 2, hidden=(8,)).mi(torch.randn(16, 2), torch.randn(16, 2)).shape
        torch.Size([])
    """

    name = "js"

    def mi(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        p = self.prepare(a, b, c)
        s, pos = self.scores(p)
        mask = p.candidates(include_self=False)
        js = p.mean(_js_terms(p, s, pos, mask))
        value = p.mean(1.0 + pos - torch.exp(row_logmeanexp(s, mask)))
        return js + (value - js).detach()


class SMILE(CriticEstimator):
    """SMILE (Song & Ermon 2020): a JS-trained critic read out with a clipped DV bound.

    Value: E_p[f] - log E_{p x p}[exp(clip(f, -clip, clip))]; gradient: the JS objective
    (as the authors' code does). Clipping trades the variance of DV (which grows like e^I)
    for a bias that vanishes as ``clip`` grows; the value is not a strict bound. Bias:
    usually below the truth; batch log-mean-exp biases each batch value up. Cost: one
    B x B score matrix.

    Example:
        >>> SMILE(2, 2, hidden=(8,), clip=5.0).mi(torch.randn(16, 2), torch.randn(16, 2)).shape
        torch.Size([])
    """

    name = "smile"

    def __init__(self, a_dim: int, b_dim: int, clip: float = 5.0, **kwargs: Any) -> None:
        super().__init__(a_dim, b_dim, **kwargs)
        check_float("smile", "clip", clip, minimum=0, min_open=True)
        self.clip = clip

    def mi(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        p = self.prepare(a, b, c)
        s, pos = self.scores(p)
        mask = p.candidates(include_self=False)
        js = p.mean(_js_terms(p, s, pos, mask))
        clipped = row_logmeanexp(s.clamp(-self.clip, self.clip), mask)
        value = p.mean(pos) - p.global_logmeanexp(clipped)
        return js + (value - js).detach()
