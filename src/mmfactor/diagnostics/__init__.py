"""Diagnostics of learned factors: how dependent they are on each other."""

from mmfactor.diagnostics.dependence import factor_dependence, hsic, top_canonical_correlation

__all__ = ["factor_dependence", "hsic", "top_canonical_correlation"]
