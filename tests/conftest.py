"""Shared fixtures: small data sets that train in a second or two."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import mmfactor as mf

# `make test-blas` reruns the data and engine tests with one thread (MMFACTOR_TEST_THREADS=1).
torch.set_num_threads(int(os.environ.get("MMFACTOR_TEST_THREADS", "2")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` need CUDA: without it they are skipped, saying so."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu test: no CUDA device here (benchmarks/gpu_check.sh)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def make_toy(n: int = 400, seed: int = 0, sequence: bool = False) -> mf.MultimodalDataset:
    """Two modalities sharing a latent z; y = sign of z's first coordinate."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    u1, u2 = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    x1 = np.concatenate([z, u1], 1) @ rng.normal(size=(6, 12))
    x2 = np.concatenate([z, u2], 1) @ rng.normal(size=(6, 10))
    if sequence:
        t = np.linspace(0, 1, 8)[None, :, None]
        x2 = x2[:, None, :] * np.cos(3 * t) + 0.1 * rng.normal(size=(n, 8, 10))
        lengths = rng.integers(3, 9, size=n)
        x2[np.arange(8)[None, :] >= lengths[:, None]] = 0.0
        return mf.from_arrays(
            {"x1": x1, "x2": x2},
            y=(z[:, 0] > 0).astype(int),
            lengths={"x2": lengths},
            targets={"u1": (u1[:, 0] > 0).astype(int)},
        )
    return mf.from_arrays(
        {"x1": x1, "x2": x2},
        y=(z[:, 0] > 0).astype(int),
        targets={"u1": (u1[:, 0] > 0).astype(int)},
    )


@pytest.fixture
def toy() -> mf.MultimodalDataset:
    return make_toy()


@pytest.fixture
def toy_seq() -> mf.MultimodalDataset:
    return make_toy(sequence=True)


def _fit_and_encode(
    method: str, data: mf.MultimodalDataset, accelerator: str, precision: str
) -> tuple[mf.train.Run, torch.Tensor]:
    """Train ``method`` for 2 epochs through the engine; the run and its test factors
    (width 8: within the toy's feature widths, as linear CCA needs)."""
    torch.manual_seed(0)
    model = mf.methods.build(method, data.modalities, embed_dim=8)
    run = mf.fit(
        model,
        data,
        max_epochs=2,
        batch_size=64,
        accelerator=accelerator,
        precision=precision,
        progress=False,
    )
    factors = mf.encode(run.model, data, split="test").blocks()["all"]
    return run, torch.as_tensor(factors)


@pytest.fixture
def fit_and_encode():
    return _fit_and_encode
