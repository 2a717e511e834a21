"""Evaluation: probes and metrics on :class:`~mmfactor.methods.base.Factors`."""

from mmfactor.evaluate.protocol import (
    encode,
    evaluate,
    factor_target_table,
    format_table,
    predict,
)

__all__ = ["encode", "evaluate", "factor_target_table", "format_table", "predict"]
