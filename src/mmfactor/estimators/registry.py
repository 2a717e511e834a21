"""Estimators by name: :func:`build` and :func:`available`."""

from __future__ import annotations

from typing import Any

from mmfactor.errors import InputError, unknown_name
from mmfactor.estimators.base import MIEstimator
from mmfactor.estimators.critics import Hidden
from mmfactor.estimators.lower import JS, MINE, NWJ, SMILE, CriticEstimator, InfoNCE
from mmfactor.estimators.upper import CLUB, NCECLUB, CLUBSample, GaussianEstimator, L1Out

ESTIMATORS: dict[str, type[MIEstimator]] = {
    cls.name: cls for cls in (InfoNCE, NWJ, MINE, JS, SMILE, CLUB, CLUBSample, L1Out, NCECLUB)
}


def available() -> list[str]:
    """Names accepted by :func:`build`, sorted."""
    return sorted(ESTIMATORS)


def build(
    name: str,
    a_dim: int,
    b_dim: int,
    critic: str | None = None,
    hidden: Hidden = (128, 64),
    c_dim: int = 0,
    condition: str = "concat",
    **opts: Any,
) -> MIEstimator:
    """An estimator of I(A; B) (or I(A; B | C)) by name.

    Args:
        name: one of :func:`available` (``infonce``, ``nwj``, ``mine``, ``js``, ``smile``:
            lower bounds; ``club``, ``club-s``, ``l1out``, ``nce-club``: upper bounds).
        a_dim, b_dim: widths of a and b.
        critic: ``concat`` (default), ``separable`` or ``bilinear`` for critic-based
            estimators; the CLUB family uses its Gaussian q and takes none.
        hidden: hidden widths of the critic or of q's MLPs.
        c_dim: width of c appended to the inputs (number of classes for integer labels);
            0 for none.
        condition: ``concat``, ``negatives`` or ``both`` (:mod:`mmfactor.estimators.base`).
        opts: estimator options (``alpha`` for mine, ``clip`` for smile, ``log_var_bound``
            for the CLUB family) and critic options (``embed_dim``, ``temperature`` for a
            separable critic).

    Example:
        >>> import torch
        >>> est = build("infonce", 4, 3, critic="separable", hidden=(16,))
        >>> est.mi(torch.randn(8, 4), torch.randn(8, 3)).shape
        torch.Size([])
    """
    if name not in ESTIMATORS:
        raise unknown_name("estimator", name, list(ESTIMATORS))
    cls = ESTIMATORS[name]
    try:
        if issubclass(cls, CriticEstimator):
            return cls(
                a_dim,
                b_dim,
                critic=critic or "concat",
                hidden=hidden,
                c_dim=c_dim,
                condition=condition,
                **opts,
            )
        if critic is not None:
            raise InputError(f"{name} uses a Gaussian q(b | a), not a critic; drop critic=")
        if not issubclass(cls, GaussianEstimator):  # pragma: no cover - every name is one
            raise InputError(f"{name}: neither a critic nor a Gaussian estimator")
        return cls(a_dim, b_dim, hidden, c_dim, condition, **opts)
    except TypeError as err:  # an option the estimator does not take
        raise InputError(f"{name}: {err}") from None
