"""Evaluation: probes and metrics on :class:`~mmfactor.methods.base.Factors`."""

from mmfactor.evaluate.protocol import (
    Encodings,
    encode,
    evaluate,
    factor_target_table,
    format_table,
    latent_information,
    latent_records,
    noise_records,
    predict,
    standard_records,
)

__all__ = [
    "Encodings",
    "encode",
    "evaluate",
    "factor_target_table",
    "format_table",
    "latent_information",
    "latent_records",
    "noise_records",
    "predict",
    "standard_records",
]
