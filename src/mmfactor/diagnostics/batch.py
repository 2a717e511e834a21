"""BATCH: Liang et al.'s neural estimator of the partial information decomposition of
continuous, high-dimensional modalities (Paul Pu Liang et al., "Quantifying & Modeling
Multimodal Interactions: An Information Decomposition Framework", NeurIPS 2023, section 3.2;
reference code ``estimators/ce_alignment_information.py`` of github.com/pliang279/PID, MIT).

The BROJA definition (:mod:`mmfactor.diagnostics.pid`) needs ``I_q* = min_q I_q(Y; X1, X2)``
over the distributions ``q`` with the data's pair marginals ``p(x1, y)``, ``p(x2, y)``;
then ``R = I(Y; X1) + I(Y; X2) - I_q*``, ``U1 = I_q* - I(Y; X2)``, ``U2 = I_q* - I(Y; X1)``,
``S = I_p(Y; X1, X2) - I_q*``. BATCH estimates it without discretising:

1. Classifiers. MLPs for ``p(y | x1)``, ``p(y | x2)`` and ``p(y | x1, x2)`` (``depth``
   hidden ReLU layers of width ``hidden``, Adam, cross-entropy, ``epochs`` passes in
   shuffled minibatches of ``batch_size``) are trained on the *fit* rows. ``I(Y; X_m)`` and
   ``I_p(Y; X1, X2)`` are ``mean_i sum_y p(y | x_i) log p(y | x_i) / p(y)`` over the
   *held-out* rows, ``p(y)`` the label frequencies.
2. Alignment. Within a minibatch of ``B`` rows, ``q`` is a ``(C, B, B)`` joint distribution
   over (label ``y``, x1 row ``a``, x2 row ``b``): ``q[y, a, b] ∝ exp(h1(x1_a)_y .
   h2(x2_b)_y / sqrt(E))``, ``h_m`` an MLP giving one ``E``-dimensional embedding per label
   (``(B, C, E)``, each standardised over ``E``), scaled by Sinkhorn, per label, to the
   marginal constraints: rows ``sum_b q[y, a, b] = p(y | x1_a) / B`` (``q(x1, y) = p(x1) p(y
   | x1)``, ``p(x1)`` uniform over the batch) and columns ``sum_a q[y, a, b] = p(y | x2_b) /
   B``. ``I_q(Y; X1, X2) = sum_{y,a,b} q log q[y, a, b] / (q(a, b) p(y))`` is differentiable
   in the embeddings and minimised by Adam over ``align_epochs`` passes through the fit rows
   (classifiers fixed). ``I_q*`` is its mean over held-out minibatches (the held-out rows
   cut into batches of about ``B``, weighted by their size).

Deviations from the reference code:

- Sinkhorn targets (a bug there). Within a batch ``sum_a p(y | x1_a) != sum_b p(y |
  x2_b)``, so no matrix has both marginals; the reference's alternating normalisation stops
  once one side is within 0.01 per row, which happens only when the two sums are close (9 of
  20 simulated batches of 256 ran all 500 sweeps, back-propagated), and leaves the other side
  off. Here the column targets of label ``y`` are rescaled by ``sum_a p(y | x1_a) / sum_b
  p(y | x2_b)`` (the batch's ``p(x2 | y)`` with the x1 side's label mass), a feasible
  problem, solved in float64, batched over labels, to a column error below ``1e-4`` (10 to
  20 sweeps on the tests' data), ending on a row update: the ``(x1, y)`` marginal is exact,
  so ``I_q - I(Y; X1) = I_q(Y; X2 | X1) >= 0`` batch by batch.
- ``log p(y | x)`` comes from ``log_softmax`` (the reference's ``log(softmax)`` is ``-inf``,
  its terms NaN, where a confident classifier's softmax underflows); every held-out row is
  used (the reference's evaluation loader drops the last partial batch).
- Calibration (``calibrate=True``, default; ``False`` is the reference's procedure). The
  plug-in ``sum_y p log p / p(y)`` is positive for any non-constant prediction, so
  over-confident classifiers inflate every part: uncalibrated, on ``synthetic`` (n = 4000,
  seed 0), ``I(Y; x1) = 0.42`` bits for target ``unique:x2`` from a classifier at 48%
  held-out accuracy, and ``I_p`` about 0.8 bits for each of ``shared``, ``unique:x*``,
  ``synergy``. Each classifier is temperature-scaled (Guo et al., "On Calibration of Modern
  Neural Networks", ICML 2017) on a ``valid`` share of the training rows, used for nothing
  else: ``p_T(y | x) ∝ p(y) (p(y | x) / p(y))^(1/T)`` (a large ``T`` gives ``p(y)``),
  ``T`` refitted after every epoch and the epoch of least calibrated ``valid``
  cross-entropy kept (for ``synergy`` the raw one rises from the first epoch while the
  calibrated one falls until about epoch 25: the last epoch gives 0.045 bits of synergy,
  the best 0.076). Calibrated: ``I(Y; x1) = 0.000``, ``I_p`` 0.31 to 0.47 bits.
- One CPU thread (restored afterwards): the tensors are small, and on a 2-core machine busy
  with another job two threads made a run 5 to 70 times slower.

Bits, not the paper's nats. Parts are not clipped at zero (the reference's notebook clips
them, breaking ``R + U1 + U2 + S = I_p``). The toy cases of
:func:`~mmfactor.diagnostics.information.bit_toy` come out within 0.022 bits of their exact
parts (n = 2000, seeds 0 to 3); an uninformative modality keeps up to that much chance fit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from torch import nn

from mmfactor.checks import check_bool, check_float, check_int
from mmfactor.errors import InputError

_LN2 = math.log(2.0)
#: The options of :func:`batch_decompose` besides ``seed`` (recorded in its facts).
BATCH_OPTIONS = tuple(
    "epochs align_epochs batch_size hidden depth embed lr held_out valid calibrate".split()
)
#: Most Sinkhorn sweeps per batch; the column error (units of ``p(y | x2)``) that stops them.
_SINKHORN_ITERS, _SINKHORN_TOL = 300, 1e-4
#: Log-probabilities are raised to at least this (``exp`` of it is a float64 > 0).
_LOG_FLOOR = -500.0


@contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _mlp(d_in: int, hidden: int, d_out: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden if depth else d_in, d_out))


class Classifier(nn.Module):
    """``p(y | x)``: logits ``(B, C)`` of rows ``x`` ``(B, d)`` (an MLP)."""

    def __init__(self, d_in: int, classes: int, hidden: int, depth: int) -> None:
        super().__init__()
        self.net = _mlp(d_in, hidden, classes, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Alignment(nn.Module):
    """BATCH's alignment of a minibatch: ``log q`` ``(C, B, B)``, a joint distribution over
    (label, x1 row, x2 row) with the given ``(x1, y)`` and ``(x2, y)`` marginals, from the
    label-wise similarity of learned embeddings (see the module docstring)."""

    def __init__(self, d1: int, d2: int, classes: int, hidden: int, depth: int, embed: int):
        super().__init__()
        self.classes, self.embed = classes, embed
        self.h1 = _mlp(d1, hidden, classes * embed, depth)
        self.h2 = _mlp(d2, hidden, classes * embed, depth)

    def similarity(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """``h1(x1_a)_y . h2(x2_b)_y / sqrt(E)`` ``(C, B1, B2)`` of ``x1`` ``(B1, d1)``,
        ``x2`` ``(B2, d2)``, each embedding standardised over its ``E`` entries."""
        e1 = F.layer_norm(self.h1(x1).unflatten(1, (self.classes, self.embed)), (self.embed,))
        e2 = F.layer_norm(self.h2(x2).unflatten(1, (self.classes, self.embed)), (self.embed,))
        return torch.einsum("acd,bcd->cab", e1, e2) / math.sqrt(self.embed)

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, log_p1: torch.Tensor, log_p2: torch.Tensor
    ) -> tuple[torch.Tensor, float]:
        """``log q`` ``(C, B, B)`` and the final Sinkhorn column error, for ``log p(y |
        x1_a)`` ``log_p1`` and ``log p(y | x2_b)`` ``log_p2`` ``(B, C)``."""
        b = x1.shape[0]
        rows = log_p1.T - math.log(b)  # (C, B): q(x1_a, y)
        mass = torch.logsumexp(log_p1, 0) - torch.logsumexp(log_p2, 0)  # (C,) label rescale
        cols = log_p2.T + mass[:, None] - math.log(b)
        return sinkhorn(self.similarity(x1, x2), rows, cols)


def sinkhorn(
    log_kernel: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Sinkhorn scaling of ``exp(log_kernel)`` ``(C, B1, B2)`` to row sums ``exp(rows)``
    ``(C, B1)`` and column sums ``exp(cols)`` ``(C, B2)`` (equal totals per label), in
    float64, batched over labels, ending on a row update. Returns ``log q`` (float64) and
    the largest column-sum error times ``B2`` (in units of ``p(y | x2)``)."""
    log_kernel = log_kernel.double()
    kernel = log_kernel.exp()
    kernel_t = kernel.transpose(1, 2).contiguous()  # row-vector products are the fast ones
    r, c = rows.double().clamp_min(_LOG_FLOOR).exp(), cols.double().clamp_min(_LOG_FLOOR).exp()
    u, error = torch.ones_like(r), float("inf")
    for sweep in range(1, _SINKHORN_ITERS + 1):
        v = c / torch.bmm(u[:, None, :], kernel)[:, 0]
        u = r / torch.bmm(v[:, None, :], kernel_t)[:, 0]
        if sweep % 10 == 0:
            with torch.no_grad():
                col_sums = torch.bmm(u[:, None, :], kernel)[:, 0] * v
                error = float((col_sums - c).abs().max()) * c.shape[1]
            if error < _SINKHORN_TOL:
                break
    return log_kernel + u.log()[:, :, None] + v.log()[:, None, :], error


def coupling_information(log_q: torch.Tensor, log_p_y: torch.Tensor) -> torch.Tensor:
    """``I_q(Y; X1, X2)`` in nats of a batch coupling ``log q`` ``(C, B, B)``:
    ``sum q log q(y, a, b) / (q(a, b) p(y))``, ``p(y)`` the label frequencies ``(C,)`` (as
    in the reference, so that ``I_q - I(Y; X1)`` is exactly ``I_q(Y; X2 | X1) >= 0``)."""
    log_ab = torch.logsumexp(log_q, 0, keepdim=True)
    return torch.sum(log_q.exp() * (log_q - log_ab - log_p_y.double()[:, None, None]))


def _batches(rows: torch.Tensor, size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch of ``rows`` in full batches of ``size`` (all rows if fewer)."""
    order = rows[torch.randperm(len(rows), generator=gen)]
    size = min(size, len(rows))
    return [order[i : i + size] for i in range(0, len(rows) - size + 1, size)]


def _calibrated(logits: torch.Tensor, log_p_y: torch.Tensor, temperature: float) -> torch.Tensor:
    """``log p_T(y | x)``, ``p_T(y | x) ∝ p(y) (p(y | x) / p(y))^(1 / T)`` ``(n, C)``."""
    return torch.log_softmax(log_p_y + (torch.log_softmax(logits, 1) - log_p_y) / temperature, 1)


def _temperature(
    logits: torch.Tensor, y: torch.Tensor, log_p_y: torch.Tensor
) -> tuple[float, float]:
    """The temperature in ``[e^-3, e^5]`` of least cross-entropy of :func:`_calibrated`
    (temperature scaling, Guo et al. 2017, towards ``p(y)``), and that cross-entropy."""

    def loss(log_t: float) -> float:
        return float(F.nll_loss(_calibrated(logits, log_p_y, math.exp(log_t)), y))

    found = minimize_scalar(loss, bounds=(-3.0, 5.0), method="bounded")
    return math.exp(float(found.x)), float(found.fun)


def _fit_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    fit: torch.Tensor,
    val: torch.Tensor,
    log_p_y: torch.Tensor,
    opts: dict[str, Any],
    gen: torch.Generator,
) -> tuple[Classifier, float]:
    """A classifier trained on rows ``fit``, and its temperature. With ``val`` rows
    (calibrating), the temperature is refitted after every epoch and the epoch of least
    calibrated ``val`` cross-entropy kept; without, the last epoch and temperature 1."""
    model = Classifier(x.shape[1], len(log_p_y), opts["hidden"], opts["depth"])
    opt = torch.optim.Adam(model.parameters(), lr=opts["lr"])
    best, state, temperature = float("inf"), None, 1.0
    for _ in range(opts["epochs"]):
        for rows in _batches(fit, opts["batch_size"], gen):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[rows]), y[rows]).backward()
            opt.step()
        if len(val):
            with torch.no_grad():
                t, loss = _temperature(model(x[val]), y[val], log_p_y)
            if loss < best:
                best, temperature = loss, t
                state = {k: v.clone() for k, v in model.state_dict().items()}
    if state is not None:
        model.load_state_dict(state)
    return model.eval(), temperature


def _check(x1: Any, x2: Any, y: Any, opts: dict[str, Any]) -> tuple[np.ndarray, ...]:
    owner = "batch PID"
    for name in ("epochs", "align_epochs", "hidden", "embed"):
        check_int(owner, name, opts[name], minimum=1)
    check_int(owner, "batch_size", opts["batch_size"], minimum=2)
    check_int(owner, "depth", opts["depth"], minimum=0)
    check_float(owner, "lr", opts["lr"], 0, min_open=True)
    check_float(owner, "held_out", opts["held_out"], 0, 1, min_open=True, max_open=True)
    check_float(owner, "valid", opts["valid"], 0, 1, min_open=True, max_open=True)
    check_bool(owner, "calibrate", opts["calibrate"])
    a1, a2, codes = np.asarray(x1, np.float64), np.asarray(x2, np.float64), np.asarray(y)
    if a1.ndim != 2 or a2.ndim != 2 or codes.ndim != 1 or not len(a1) == len(a2) == len(codes):
        raise InputError(
            f"{owner}: needs x1 (n, d1), x2 (n, d2) and y (n,), got shapes {a1.shape}, "
            f"{a2.shape}, {codes.shape}"
        )
    if not (np.all(np.isfinite(a1)) and np.all(np.isfinite(a2))):
        raise InputError(f"{owner}: x1 and x2 must be finite")
    if not np.issubdtype(codes.dtype, np.integer):
        raise InputError(f"{owner}: y must hold integer class codes, got dtype {codes.dtype}")
    return a1, a2, np.unique(codes, return_inverse=True)[1].reshape(-1)  # classes 0..C-1


def _split(n: int, opts: dict[str, Any], gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Random held-out, valid (when calibrating) and fit rows."""
    n_test = round(n * opts["held_out"])
    n_valid = round((n - n_test) * opts["valid"]) if opts["calibrate"] else 0
    if n_test < 2 or n - n_test - n_valid < 2 or (opts["calibrate"] and n_valid < 2):
        raise InputError(f"batch PID: {n} rows are too few to split into fit, valid, held out")
    order = torch.randperm(n, generator=gen)
    return order[:n_test], order[n_test : n_test + n_valid], order[n_test + n_valid :]


def batch_decompose(
    x1: Any,
    x2: Any,
    y: Any,
    *,
    epochs: int = 40,
    align_epochs: int = 10,
    batch_size: int = 256,
    hidden: int = 32,
    depth: int = 4,
    embed: int = 10,
    lr: float = 1e-3,
    held_out: float = 0.3,
    valid: float = 0.2,
    calibrate: bool = True,
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, Any]]:
    """The BATCH estimate of the PID of ``x1`` ``(n, d1)``, ``x2`` ``(n, d2)`` about the
    integer class codes ``y`` ``(n,)`` (see the module docstring), in bits.

    Rows are split at random: a share ``held_out`` gives the estimates; of the rest, a share
    ``valid`` calibrates the classifiers (``calibrate``) and the others (the fit rows) train
    the classifiers and the alignment. Inputs are standardised with the fit rows' means and
    deviations. Defaults follow the reference code: ``epochs=40`` classifier passes,
    ``align_epochs=10``, ``batch_size=256``, ``hidden=32``, ``depth=4`` hidden layers,
    ``embed=10``, Adam at ``lr=1e-3``. Deterministic for a ``seed`` on the CPU; the global
    random state is left untouched.

    Returns:
        ``{"redundancy", "unique1", "unique2", "synergy", "total", "i1", "i2", "h_y"}`` in
        bits (``total`` is ``I_p(Y; X1, X2)``, ``h_y`` the label entropy), and facts: the
        ``settings`` used, the rows of each part, ``i_q`` in bits, the classifiers'
        held-out accuracy and temperatures, the largest held-out Sinkhorn column error.

    Raises:
        InputError: bad shapes, non-finite inputs, non-integer codes, bad option values,
            too few rows.
    """
    values = (epochs, align_epochs, batch_size, hidden, depth, embed, lr, held_out, valid)
    opts: dict[str, Any] = dict(zip(BATCH_OPTIONS, (*values, calibrate), strict=True))
    a1, a2, codes = _check(x1, x2, y, opts)
    p_y = np.bincount(codes) / len(codes)
    log_p_y = torch.log(torch.as_tensor(np.maximum(p_y, 1e-300), dtype=torch.float32))
    accuracy, temperature, log_probs = [], [], []

    with _one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        test, val, fit = _split(len(codes), opts, gen)
        xs = []
        for a in (a1, a2):
            mean, sd = a[fit.numpy()].mean(0), a[fit.numpy()].std(0)
            xs.append(torch.as_tensor((a - mean) / np.where(sd > 1e-12, sd, 1.0)).float())
        xs.append(torch.cat(xs, 1))  # the pair, for p(y | x1, x2)
        ty = torch.as_tensor(codes, dtype=torch.long)
        for x in xs:
            model, t = _fit_classifier(x, ty, fit, val, log_p_y, opts, gen)
            with torch.no_grad():
                logits = model(x)
            log_probs.append(_calibrated(logits, log_p_y, t))
            temperature.append(t)
            accuracy.append(float((logits[test].argmax(1) == ty[test]).float().mean()))

        align = Alignment(a1.shape[1], a2.shape[1], len(p_y), hidden, depth, embed)
        opt = torch.optim.Adam(align.parameters(), lr=lr)
        for _ in range(align_epochs):
            for rows in _batches(fit, batch_size, gen):
                log_q, _ = align(xs[0][rows], xs[1][rows], log_probs[0][rows], log_probs[1][rows])
                opt.zero_grad(set_to_none=True)
                coupling_information(log_q, log_p_y).backward()
                opt.step()

        i_q, error = 0.0, 0.0
        with torch.no_grad():
            for rows in torch.tensor_split(test, max(1, round(len(test) / batch_size))):
                log_q, err = align(xs[0][rows], xs[1][rows], log_probs[0][rows], log_probs[1][rows])
                i_q += float(coupling_information(log_q, log_p_y)) * len(rows) / len(test)
                error = max(error, err)
        # I(Y; X1), I(Y; X2), I_p(Y; X1, X2): mean_i sum_y p(y | x_i) log p(y | x_i) / p(y)
        i1, i2, i12 = (
            float(torch.mean(torch.sum(lp[test].exp() * (lp[test] - log_p_y), 1))) / _LN2
            for lp in log_probs
        )

    i_q /= _LN2
    parts = {
        "redundancy": i1 + i2 - i_q,
        "unique1": i_q - i2,
        "unique2": i_q - i1,
        "synergy": i12 - i_q,
        "total": i12,
        "i1": i1,
        "i2": i2,
        "h_y": float(-np.sum(p_y[p_y > 0] * np.log2(p_y[p_y > 0]))),
    }
    names = ("x1", "x2", "x1x2")
    facts = {
        "settings": opts,
        "rows": {"fit": len(fit), "valid": len(val), "held_out": len(test)},
        "i_q": i_q,
        "held_out_accuracy": dict(zip(names, accuracy, strict=True)),
        "temperature": dict(zip(names, temperature, strict=True)),
        "sinkhorn_error": error,
    }
    return parts, facts
