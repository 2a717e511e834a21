"""Interpretation: which inputs each factor depends on."""

from mmfactor.interpret.gradients import factor_gradients, plot_factor_gradients

__all__ = ["factor_gradients", "plot_factor_gradients"]
