import numpy as np
import pytest
import torch

from mmfactor.errors import InputError
from mmfactor.losses.correlation import (
    TotalCorrelation,
    canonical_correlations,
    correlation_matrix,
)


def reference_canonical_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Textbook CCA: sqrt of the eigenvalues of S_aa^-1 S_ab S_bb^-1 S_ba, descending."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    n = len(a)
    s_aa, s_bb, s_ab = a.T @ a / (n - 1), b.T @ b / (n - 1), a.T @ b / (n - 1)
    m = np.linalg.solve(s_aa, s_ab) @ np.linalg.solve(s_bb, s_ab.T)
    values = np.sort(np.linalg.eigvals(m).real)[::-1][: min(a.shape[1], b.shape[1])]
    return np.sqrt(np.clip(values, 0, None))


def eigh_total_correlation(a: torch.Tensor, b: torch.Tensor, ridge: float) -> torch.Tensor:
    """Deep CCA as commonly written: S^-1/2 by eigen-decomposition (the unsafe form)."""
    n = a.shape[0]
    a, b = a - a.mean(0), b - b.mean(0)
    eye = torch.eye(a.shape[1], dtype=a.dtype)
    s_aa, s_bb = a.T @ a / (n - 1) + ridge * eye, b.T @ b / (n - 1) + ridge * eye

    def inv_sqrt(s: torch.Tensor) -> torch.Tensor:
        d, v = torch.linalg.eigh(s)
        return v @ torch.diag(d.rsqrt()) @ v.T

    t = inv_sqrt(s_aa) @ (a.T @ b / (n - 1)) @ inv_sqrt(s_bb)
    return -torch.linalg.eigvalsh(t.T @ t).clamp_min(0).sqrt().sum()


def test_canonical_correlations_match_textbook_cca() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400, 2))
    a = np.hstack([z, rng.standard_normal((400, 3))]) @ rng.standard_normal((5, 5))
    b = np.hstack([z + 0.5 * rng.standard_normal((400, 2)), rng.standard_normal((400, 2))])
    ours = canonical_correlations(torch.tensor(a), torch.tensor(b), ridge=0.0).numpy()
    np.testing.assert_allclose(ours, reference_canonical_correlations(a, b), atol=1e-8)
    assert ours[0] > 0.8 and ours[-1] < 0.2


def test_total_correlation_gradient_is_finite_where_eigh_form_is_not() -> None:
    # Identical, whitened views: every eigenvalue coincides, the textbook gradient divides by
    # zero gaps; ours stays finite and correct (d loss / d a of -sum corr at corr = 1).
    h2 = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    hadamard = torch.kron(torch.kron(torch.kron(h2, h2), h2), h2)  # 16 x 16
    x = hadamard[:, 1:5]  # zero-mean, orthogonal columns: covariance exactly (16/15) I
    a = x.clone().requires_grad_(True)
    eigh_total_correlation(a, x, ridge=0.0).backward()
    assert a.grad is not None and not torch.isfinite(a.grad).all()
    a.grad = None
    loss = TotalCorrelation(ridge=0.0)(a, x)
    loss.backward()
    assert torch.isfinite(a.grad).all()
    assert float(loss.detach()) == pytest.approx(-4.0, abs=1e-6)


def test_total_correlation_values_and_top_k() -> None:
    torch.manual_seed(0)
    z = torch.randn(512, 2)
    a = torch.cat([z, torch.randn(512, 2)], 1)
    b = torch.cat([z @ torch.randn(2, 2), torch.randn(512, 1)], 1)
    assert float(TotalCorrelation(k=2, ridge=0.0)(a, b)) == pytest.approx(-2.0, abs=1e-4)
    assert (
        float(TotalCorrelation(ridge=0.0)(a, b)) < -2.0
    )  # plus a small spurious third correlation
    with pytest.raises(InputError):
        TotalCorrelation(k=0)
    with pytest.raises(InputError):
        TotalCorrelation(ridge=-1.0)


def test_correlation_matrix_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((50, 3)), rng.standard_normal((50, 2))
    expected = np.corrcoef(a.T, b.T)[:3, 3:]
    ours = correlation_matrix(torch.tensor(a), torch.tensor(b), eps=0.0).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_correlation_matrix_of_a_constant_column_has_a_finite_gradient():
    """A column constant over the batch (a dead ReLU unit) correlates 0 and passes a finite
    gradient (it was NaN: mucmm diverged on Trifeatures' image features)."""
    a = torch.randn(32, 3)
    a[:, 1] = 0.5
    a.requires_grad_(True)
    b = torch.randn(32, 2)
    c = correlation_matrix(a, b)
    assert torch.equal(c[1], torch.zeros(2))
    c.pow(2).sum().backward()
    assert torch.isfinite(a.grad).all()
