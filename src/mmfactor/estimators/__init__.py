"""Mutual-information estimators: critics, lower and upper bounds, conditional versions.

Small composable modules that methods use as loss terms
(``mi``, differentiable, in nats) and train in the engine's estimator step
(``learning_loss``), and that a user can fit on two arrays::

    import mmfactor as mf
    est = mf.estimators.build("club", a_dim=8, b_dim=8, hidden=(64,))
    value = est.mi(za, zb)              # main step: estimator parameters frozen
    est.learning_loss(za.detach(), zb.detach()).backward()  # estimator step
    mf.estimators.estimate_mi(x, y, "infonce", steps=1000)  # -> float, nats

Everything is correct under data parallelism: negatives come from the gathered batch and
each rank's value is its share of the full-batch estimate.
"""

from mmfactor.estimators.base import CONDITIONS, MIEstimator
from mmfactor.estimators.critics import (
    CRITICS,
    BilinearCritic,
    ConcatCritic,
    Critic,
    SeparableCritic,
    build_critic,
)
from mmfactor.estimators.estimate import correlated_gaussians, estimate_mi
from mmfactor.estimators.lower import JS, MINE, NWJ, SMILE, CriticEstimator, InfoNCE
from mmfactor.estimators.registry import ESTIMATORS, available, build
from mmfactor.estimators.upper import CLUB, NCECLUB, CLUBSample, GaussianConditional, L1Out

__all__ = [
    "CLUB",
    "CONDITIONS",
    "CRITICS",
    "ESTIMATORS",
    "JS",
    "MINE",
    "NCECLUB",
    "NWJ",
    "SMILE",
    "BilinearCritic",
    "CLUBSample",
    "ConcatCritic",
    "Critic",
    "CriticEstimator",
    "GaussianConditional",
    "InfoNCE",
    "L1Out",
    "MIEstimator",
    "SeparableCritic",
    "available",
    "build",
    "build_critic",
    "correlated_gaussians",
    "estimate_mi",
]
