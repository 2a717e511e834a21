"""Diagnostics of learned factors (how dependent they are on each other) and of data (how
the information two modalities carry about a target splits into redundancy, unique
information and synergy)."""

from mmfactor.diagnostics.dependence import factor_dependence, hsic, top_canonical_correlation
from mmfactor.diagnostics.information import TOY_PARTS, bit_toy, information_decomposition
from mmfactor.diagnostics.pid import InformationDecomposition, pid

__all__ = [
    "TOY_PARTS",
    "InformationDecomposition",
    "bit_toy",
    "factor_dependence",
    "hsic",
    "information_decomposition",
    "pid",
    "top_canonical_correlation",
]
