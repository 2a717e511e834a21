"""Upper-bound estimators of I(A; B), minimised to remove information: CLUB, its sampled form,
leave-one-out (L1Out) and FactorCL's NCE-CLUB.

The CLUB family fits a variational Gaussian q(b | a) = N(mu(a), diag sigma^2(a)) by maximum
likelihood on aligned pairs (``learning_loss``: the negative log-likelihood) and evaluates a
bound that holds when q is close to p(b | a) (Cheng et al. 2020, Thm 3.2 and its variational
form). With conditioning by concatenation q models b given [a; c] (see
:mod:`mmfactor.estimators.base`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mmfactor.checks import check_float
from mmfactor.distributed import gather
from mmfactor.encoders.heads import mlp
from mmfactor.estimators.base import MIEstimator, row_logmeanexp, row_mean
from mmfactor.estimators.critics import Hidden, hidden_sizes
from mmfactor.estimators.lower import CriticEstimator, infonce_terms


class GaussianConditional(nn.Module):
    """q(b | x) = N(mu(x), diag exp(logvar(x))), two MLPs; the log-variance is squashed into
    ``(-bound, bound)`` by ``bound * tanh(. / bound)``, so q can neither collapse nor blow up.

    Shapes: ``(B, in_dim) -> ((B, out_dim), (B, out_dim))``.

    Example:
        >>> mu, logvar = GaussianConditional(3, 2, (8,))(torch.zeros(4, 3))
        >>> mu.shape, bool(logvar.abs().max() < 5)
        (torch.Size([4, 2]), True)
    """

    def __init__(
        self, in_dim: int, out_dim: int, hidden: Hidden = (128, 64), log_var_bound: float = 5.0
    ) -> None:
        super().__init__()
        owner = "GaussianConditional"
        check_float(owner, "log_var_bound", log_var_bound, minimum=0, min_open=True)
        sizes = hidden_sizes(hidden, owner)
        self.mu = mlp(in_dim, sizes, out_dim)
        self.logvar = mlp(in_dim, sizes, out_dim)
        self.bound = log_var_bound

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(x), self.bound * torch.tanh(self.logvar(x) / self.bound)


class GaussianEstimator(MIEstimator):
    """Shared part of CLUB, CLUB-S and L1Out: the Gaussian q(b | a) and its fitting loss."""

    kind = "upper"

    def __init__(
        self,
        a_dim: int,
        b_dim: int,
        hidden: Hidden = (128, 64),
        c_dim: int = 0,
        condition: str = "concat",
        log_var_bound: float = 5.0,
    ) -> None:
        super().__init__(a_dim, b_dim, c_dim, condition)
        self.q = GaussianConditional(self.in_a, b_dim, hidden, log_var_bound)

    def _q(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None):
        p = self.prepare(a, b, c)
        mu, logvar = self.q(p.a)
        return p, p.b[:, : self.b_dim], mu, logvar  # the target is b alone, never c

    def learning_loss(
        self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Negative log-likelihood -log q(b_i | a_i), mean over this rank's rows."""
        _, target, mu, logvar = self._q(a, b, c)
        sq = (target - mu).square() * torch.exp(-logvar)
        return 0.5 * (sq + logvar + math.log(2 * math.pi)).sum(1).mean()


class CLUB(GaussianEstimator):
    """CLUB, full form (Cheng et al. 2020, Eq. 9 with a variational q):

    I_CLUB = mean_i [log q(b_i | a_i) - mean_j log q(b_j | a_i)], j over the whole batch.

    Bias: an upper bound when q(b | a) is close to p(b | a) (exactly so when q = p(b | a));
    a poor q can fall below the truth. Cost: O(B d) beyond the networks: the Gaussian's
    normaliser cancels and mean_j (b_j - mu_i)^2 / var_i = (Var_j b + (mean_j b - mu_i)^2)
    / var_i needs only the batch moments of b (O(B^2 d) matmuls with conditional negatives);
    no B x B x d tensor is built.

    Example:
        >>> est = CLUB(3, 2, hidden=(8,))
        >>> a, b = torch.randn(16, 3), torch.randn(16, 2)
        >>> est.mi(a, b).shape, est.learning_loss(a, b).shape
        (torch.Size([]), torch.Size([]))
    """

    name = "club"

    def mi(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        p, target, mu, logvar = self._q(a, b, c)
        inv = torch.exp(-logvar)
        pos = -0.5 * ((target - mu).square() * inv).sum(1)
        b_all = gather(target)
        mask = p.candidates(include_self=True)
        if mask is None:
            mean, var = b_all.mean(0), b_all.var(0, unbiased=False)
        else:
            w = mask.to(b_all.dtype)
            w = w / w.sum(1, keepdim=True)
            mean = w @ b_all  # (B, d): per-row mean of the candidates
            var = (w @ b_all.square() - mean.square()).clamp_min(0.0)
        neg = -0.5 * ((var + (mean - mu).square()) * inv).sum(1)
        return p.mean(pos - neg)


class CLUBSample(GaussianEstimator):
    """CLUB, sampled form (CLUB-S, Cheng et al. 2020, Eq. 13): one random negative per row,

    I = mean_i [log q(b_i | a_i) - log q(b_k_i | a_i)], k_i uniform over the batch (over
    same-class samples with conditional negatives).

    Bias: an upper bound in expectation under the same condition as CLUB, with more
    variance. Cost: O(B d); the random draw uses the global torch generator.

    Example:
        >>> CLUBSample(3, 2, hidden=(8,)).mi(torch.randn(16, 3), torch.randn(16, 2)).shape
        torch.Size([])
    """

    name = "club-s"

    def mi(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        p, target, mu, logvar = self._q(a, b, c)
        inv = torch.exp(-logvar)
        b_all = gather(target)
        mask = p.candidates(include_self=True)
        if mask is None:
            k = torch.randint(b_all.shape[0], (len(p.rows),), device=b_all.device)
        else:
            k = torch.multinomial(mask.to(b_all.dtype), 1).squeeze(1)
        diff = (target - mu).square() - (b_all[k] - mu).square()
        return p.mean(-0.5 * (diff * inv).sum(1))


class L1Out(GaussianEstimator):
    """Leave-one-out upper bound (Poole et al. 2019, I_L1Out; Cheng et al. 2020, Eq. 14):

    I_L1Out = mean_i [log q(b_i | a_i) - log mean_{j != i} q(b_i | a_j)].

    Bias: an upper bound when q = p(b | a), from above like CLUB but tighter; unlike CLUB it
    needs the Gaussian's normaliser. Cost: O(B^2 d) matmuls for the B x B log-densities
    (the square expanded, no B x B x d tensor); the expansion costs some float precision
    when |b| is large against sigma.

    Example:
        >>> L1Out(3, 2, hidden=(8,)).mi(torch.randn(16, 3), torch.randn(16, 2)).shape
        torch.Size([])
    """

    name = "l1out"

    def mi(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        p, target, mu, logvar = self._q(a, b, c)
        inv = torch.exp(-logvar)
        pos = -0.5 * ((target - mu).square() * inv + logvar).sum(1)
        mu_all, inv_all, logvar_all = gather(mu), gather(inv), gather(logvar)
        # log q(b_i | a_j) + const = -0.5 sum_k (b_ik - mu_jk)^2 / var_jk + logvar_jk
        quad = (
            target.square() @ inv_all.T
            - 2.0 * target @ (mu_all * inv_all).T
            + (mu_all.square() * inv_all + logvar_all).sum(1)[None, :]
        )
        neg = row_logmeanexp(-0.5 * quad, p.candidates(include_self=False))
        return p.mean(pos - neg)


class NCECLUB(CriticEstimator):
    """NCE-CLUB (FactorCL, Liang et al., NeurIPS 2023): CLUB with q replaced by a critic.

    I = mean_i f*(a_i, b_i) - mean_{i,j} f*(a_i, b_j), f* a critic of its own fitted by
    maximising its InfoNCE (``learning_loss`` = -InfoNCE(f*)). Bias: an upper bound when f*
    is InfoNCE-optimal, f* = log p(b | a) / p(b) + c(a), where it equals the CLUB bound of the
    true conditional; otherwise approximate. Cost: one B x B score matrix.

    Example:
        >>> NCECLUB(3, 2, hidden=(8,)).mi(torch.randn(16, 3), torch.randn(16, 2)).shape
        torch.Size([])
    """

    name = "nce-club"
    kind = "upper"

    def mi(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        p = self.prepare(a, b, c)
        s, pos = self.scores(p)
        return p.mean(pos - row_mean(s, p.candidates(include_self=True)))

    def learning_loss(
        self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None
    ) -> torch.Tensor:
        p = self.prepare(a, b, c)
        s, pos = self.scores(p)
        return -p.mean(infonce_terms(p, s, pos))
