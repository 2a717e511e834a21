"""Methods: one file per method, each on :class:`~mmfactor.methods.base.Method`.

``build(name, modalities, **overrides)`` makes one; ``available()`` lists them.
"""

from mmfactor.methods import (  # noqa: F401  (registers)
    cca,
    clip,
    comm,
    cross_self,
    dcca,
    factorcl,
    infmasking,
    mfm,
    mird,
    misa,
    mucmm,
    supcon,
    supervised,
)
from mmfactor.methods.base import Factors, Loss, Method
from mmfactor.methods.registry import available, build, default_config, hyperparameters

__all__ = ["Factors", "Loss", "Method", "available", "build", "default_config", "hyperparameters"]
