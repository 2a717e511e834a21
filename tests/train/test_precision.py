"""Mixed precision on the CPU: every method trains through the engine in bfloat16 autocast
(``train.precision=bf16-mixed``), the same path a GPU takes (``tests/train/test_gpu.py``)."""

from __future__ import annotations

import pytest
import torch

import mmfactor as mf


@pytest.mark.parametrize("method", mf.methods.available())
def test_every_method_trains_in_bf16_mixed_precision_on_cpu(method: str, toy, fit_and_encode):
    run, factors = fit_and_encode(method, toy, "cpu", "bf16-mixed")
    assert torch.isfinite(factors).all() and factors.shape[0] == len(toy.indices("test"))
    if run.epochs:  # cca: closed form, nothing trained by gradient
        assert all(torch.isfinite(torch.tensor(r["train/loss"])) for r in run.history)
        # The weights stay float32 (autocast computes in bfloat16, the optimiser in float32).
        assert {p.dtype for p in run.model.parameters()} == {torch.float32}
