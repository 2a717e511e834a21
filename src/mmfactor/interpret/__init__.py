"""Interpretation: which inputs each factor and each score depends on."""

from mmfactor.interpret.gradients import factor_gradients, plot_factor_gradients
from mmfactor.interpret.scores import plot_score_gradients, score_gradients

__all__ = ["factor_gradients", "plot_factor_gradients", "plot_score_gradients", "score_gradients"]
