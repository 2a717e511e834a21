"""Every method on a CUDA device, placed by the engine (``train.accelerator``), in full and
in mixed precision. Marked ``gpu``: skipped, with the reason, where CUDA is absent
(``benchmarks/gpu_check.sh`` runs them on a GPU machine)."""

from __future__ import annotations

import pytest
import torch

import mmfactor as mf

pytestmark = pytest.mark.gpu

PRECISIONS = ("32-true", "bf16-mixed")


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("method", mf.methods.available())
def test_every_method_trains_on_cuda(method: str, precision: str, toy, fit_and_encode) -> None:
    run, factors = fit_and_encode(method, toy, "gpu", precision)
    # cca has no trainable parameters: a closed-form fit, 0 epochs of gradient training.
    trained = any(p.requires_grad for p in run.model.parameters())
    assert run.epochs >= 1 if trained else run.epochs == 0
    assert torch.isfinite(factors).all()
    assert factors.shape[0] == len(toy.indices("test"))
    # The engine placed the model; after training it is handed back on the CPU or kept
    # on the device, but never half-moved (buffers included: cca's state is all buffers).
    devices = {t.device.type for t in (*run.model.parameters(), *run.model.buffers())}
    assert len(devices) == 1


@pytest.mark.parametrize("method", ["clip", "factorcl-sup", "mfm", "mird"])
def test_cuda_matches_cpu_in_full_precision(method: str, toy, fit_and_encode) -> None:
    """Same seed, same data, same steps: the factors agree to float tolerance."""
    _, on_gpu = fit_and_encode(method, toy, "gpu", "32-true")
    _, on_cpu = fit_and_encode(method, toy, "cpu", "32-true")
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-3, rtol=2e-3)
