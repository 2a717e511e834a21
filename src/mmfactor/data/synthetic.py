"""``synthetic``: mmfactor's ground-truth benchmark of shared, unique and synergistic signals.

Every sample has Gaussian, unit-variance latents: a shared ``w_s`` (``d_shared``), a unique
``w_m`` (``d_unique``) per modality, a shared nuisance ``n_s`` (``d_nuisance``) seen by every
modality but irrelevant to every target, and a private nuisance ``n_m`` per modality.

Observations. ``x_m = g_m([w_s; w_m; n_s; n_m]) + noise * eps``, where ``g_m`` is a fixed,
seeded random MLP ``k -> 64 -> 64 -> dim`` with ``tanh`` hidden units (pre-activation gain
1.0, bias std 0.5), its outputs standardised to zero mean and unit variance per feature on a
fixed reference sample of 4096 latent draws (so ``noise`` is a fraction of the signal's
scale and ``g_m`` does not depend on ``n``). Two saturating layers entangle the latents with
the nuisances, so the latents are recoverable by a non-linear encoder but only partly by a
linear map of ``x``.

Sequence variant (``kind="sequence"``). The latent vector ``z`` of modality ``m`` drives a
smooth trajectory on normalised time ``t`` in ``[0, 1]``::

    z(t) = sqrt(1 - 0.5) z + sqrt(0.5 / 3) * sum_{j=1..3} sqrt(2) cos(pi j t) M_j z

with fixed random orthogonal ``M_j`` per modality (a latent-dependent mixture of cosine basis
functions), and ``x_m[t] = g_m(z(t)) + noise * eps``. Each sample has its own length per
modality, drawn uniformly from a range that differs per modality (for ``seq_len=30`` and two
modalities: ``x1`` 10-20 steps, ``x2`` 15-30), and the trajectory is sampled at ``L`` evenly
spaced times, so modalities are unaligned: different lengths and sampling rates of the same
underlying trajectory. Arrays are ``(N, T_m, dim)`` with ``T_m`` the modality's longest
length, zero-padded at the end; ``data.lengths`` holds the lengths.

Targets (binary classification, classes ``"0"``/``"1"``). Each latent block ``w`` used by a
target gets a fixed random orthonormal pair ``a, b`` and a unit-variance component::

    f(w) = sqrt(1 - beta) * (a . w) + sqrt(beta) * ((b . w)^2 - 1) / sqrt(2),   beta = 0.3

The quadratic term is the non-linearity: no linear function of the latents or of ``x`` can
express it, while an encoder that learns ``(b . w)^2`` as a feature recovers it, so learned
representations can beat linear probes on the raw inputs. Design note (measured, n = 6000,
seed 0, target ``mix@0.5``, test accuracy): with gain 2.0 and beta 0.1 a linear probe on raw
``x`` reached 0.811 and a trained late-fusion network only 0.792, because the saturating map
destroyed the information a non-linear model would need; with gain 1.0 and beta 0.3 the raw
probe reaches 0.763 and the network 0.81. Signals:

- ``shared``: ``f(w_s)``; ``unique:x<m>``: ``f(w_m)``;
- ``mix@r`` (r in 0, 0.25, 0.5, 0.75, 1.0): ``sqrt(1 - r) f(w_s) + sqrt(r) sum_m f(w_m) /
  sqrt(M)``, so a share ``r`` of the signal *variance* comes from the unique latents (summed
  over modalities) and ``1 - r`` from the shared one; ``mix@0`` has the signal of ``shared``;
- ``synergy``: ``(c_1 . w_1) (c_2 . w_2)`` with fixed random unit vectors ``c_m``; the median
  threshold makes the label the XOR of the two signs (label 1 where they agree): present in
  neither modality alone.

Each signal is thresholded at its median over the whole generated sample (labeled and
unlabeled), giving balanced classes, then exactly ``round(label_noise * N)`` randomly chosen
labels are flipped, independently per target.

Seeding. Every random quantity comes from its own stream ``default_rng([seed, stream,
key])``: the maps, target projections and trajectories depend only on the seed and the sizes;
latents, noise, lengths and features of the first ``n`` samples do not depend on
``n_unlabeled``, bit for bit on any BLAS kernel and thread count (``g_m`` runs on fixed-size
row blocks); labels can, through the whole-sample median and the flipped set.

Splits: 70/15/15 of the ``n`` labeled samples (:func:`~mmfactor.data.arrays.random_splits`,
seeded); ``n_unlabeled`` extra samples follow them (indices ``n .. n + n_unlabeled - 1``) and
form the ``unlabeled`` split. Their target values exist but must not be used for training or
model selection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mmfactor.checks import check_choice, check_float, check_int
from mmfactor.data.arrays import random_splits
from mmfactor.data.dataset import ModalitySpec, MultimodalDataset, Target
from mmfactor.errors import InputError

MIX_RATIOS: dict[str, float] = {
    "mix@0": 0.0,
    "mix@0.25": 0.25,
    "mix@0.5": 0.5,
    "mix@0.75": 0.75,
    "mix@1.0": 1.0,
}
KINDS = ("vector", "sequence")

HIDDEN = 64  # width of both hidden layers of g_m
GAIN = 1.0  # pre-activation scale of the tanh layers (2.0 saturated away target information)
BIAS_STD = 0.5
NONLINEAR_SHARE = 0.3  # beta: share of each target component's variance in the quadratic term
N_REFERENCE = 4096  # latent draws used to standardise g_m's outputs
ROW_BLOCK = 1024  # rows per matrix product of g_m: one fixed shape, see _in_row_blocks
N_BASIS = 3  # cosine basis functions of the sequence trajectories
TEMPORAL_SHARE = 0.5  # share of z(t)'s variance that changes over time

# One stream per purpose, so that e.g. adding unlabeled samples leaves the maps unchanged.
_STREAMS = {
    "latents": 1,
    "map": 2,
    "reference": 3,
    "targets": 4,
    "noise": 5,
    "labels": 6,
    "lengths": 7,
    "trajectory": 8,
}
_SYNERGY_KEY = 1000  # key of the synergy projections in the "targets" stream (blocks use 0..M)


def _rng(seed: int, stream: str, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[stream], *key])


def target_names(modalities: int = 2) -> list[str]:
    """All target names of a generator with ``modalities`` modalities, in their fixed order."""
    names = ["shared"] + [f"unique:x{m + 1}" for m in range(modalities)]
    return names + list(MIX_RATIOS) + ["synergy"]


def sequence_length_ranges(seq_len: int, modalities: int) -> list[tuple[int, int]]:
    """Per-modality ``(min, max)`` sequence lengths: the maximum grows from ``2/3 seq_len``
    (first modality) to ``seq_len`` (last), the minimum is half the maximum."""
    out = []
    for m in range(modalities):
        hi = round(seq_len * (2 + m / (modalities - 1)) / 3)
        out.append((max(1, hi // 2), hi))
    return out


# ------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class _Options:
    """The checked options of :func:`load` (``targets``: the kept names, canonical, or
    ``None`` for all)."""

    seed: int
    n: int
    d_shared: int
    d_unique: int
    d_nuisance: int
    dim: int
    noise: float
    label_noise: float
    modalities: int
    kind: str
    seq_len: int
    n_unlabeled: int
    targets: list[str] | None

    @property
    def names(self) -> list[str]:
        """Modality names ``x1``, ``x2``, ..."""
        return [f"x{m + 1}" for m in range(self.modalities)]

    @property
    def total(self) -> int:
        """Samples generated: labeled and unlabeled."""
        return self.n + self.n_unlabeled

    @property
    def k(self) -> int:
        """Input width of each ``g_m``: ``[w_s; w_m; n_s; n_m]``."""
        return self.d_shared + self.d_unique + 2 * self.d_nuisance

    @property
    def latent_blocks(self) -> list[tuple[str, int]]:
        """``(name, size)`` of each latent block, in the fixed order of their streams."""
        names = self.names
        return (
            [("shared", self.d_shared)]
            + [(f"unique:{m}", self.d_unique) for m in names]
            + [("nuisance:shared", self.d_nuisance)]
            + [(f"nuisance:{m}", self.d_nuisance) for m in names]
        )


def _checked_options(
    seed: Any,
    n: Any,
    d_shared: Any,
    d_unique: Any,
    d_nuisance: Any,
    dim: Any,
    noise: Any,
    label_noise: Any,
    modalities: Any,
    kind: Any,
    seq_len: Any,
    n_unlabeled: Any,
    targets: Any,
) -> _Options:
    """:func:`load`'s options, checked; an :class:`InputError` naming the first bad one."""
    owner = "synthetic"
    seed = check_int(owner, "seed", seed, minimum=0)
    n = check_int(owner, "n", n, minimum=10)
    d_shared = check_int(owner, "d_shared", d_shared, minimum=2)
    d_unique = check_int(owner, "d_unique", d_unique, minimum=2)
    d_nuisance = check_int(owner, "d_nuisance", d_nuisance, minimum=0)
    dim = check_int(owner, "dim", dim, minimum=1)
    noise = check_float(owner, "noise", noise, minimum=0)
    label_noise = check_float(owner, "label_noise", label_noise, 0, 0.5, max_open=True)
    modalities = check_int(owner, "modalities", modalities, minimum=2)
    kind = check_choice(owner, "kind", kind, KINDS)
    seq_len = check_int(owner, "seq_len", seq_len, minimum=4)
    n_unlabeled = check_int(owner, "n_unlabeled", n_unlabeled, minimum=0)
    kept = None if targets is None else _kept_targets(targets, target_names(modalities))
    return _Options(
        seed=seed,
        n=n,
        d_shared=d_shared,
        d_unique=d_unique,
        d_nuisance=d_nuisance,
        dim=dim,
        noise=noise,
        label_noise=label_noise,
        modalities=modalities,
        kind=kind,
        seq_len=seq_len,
        n_unlabeled=n_unlabeled,
        targets=kept,
    )


def _kept_targets(targets: Any, known: list[str]) -> list[str]:
    """The canonical names of the targets to keep, in the fixed order of ``known``."""
    if isinstance(targets, str) or not isinstance(targets, Sequence) or not targets:
        raise InputError(
            f"synthetic: targets must be a non-empty list of target names, got {targets!r}"
        )
    wanted = {_canonical_target(t, known) for t in targets}
    return [t for t in known if t in wanted]


def _canonical_target(name: Any, known: list[str]) -> str:
    """The canonical spelling of a target name (``mix@1`` -> ``mix@1.0``), or an error."""
    if isinstance(name, str) and name in known:
        return name
    if isinstance(name, str) and name.startswith("mix@"):
        try:
            r = float(name[4:])
        except ValueError:
            r = math.nan
        for canon, ratio in MIX_RATIOS.items():
            if r == ratio:
                return canon
    raise InputError(
        f"synthetic: targets has an unknown target {name!r}; known: {', '.join(known)}"
    )


# ------------------------------------------------------------------------------------------
# The random maps


def _unit_pair(rng: np.random.Generator, d: int) -> np.ndarray:
    """Two orthonormal columns ``(d, 2)``, drawn uniformly (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.standard_normal((d, 2)))
    return q * np.sign(np.diag(r))  # sign fix makes the draw unique and uniform


class _RandomMLP:
    """``g_m``: a fixed random ``k -> HIDDEN -> HIDDEN -> dim`` tanh MLP with standardised
    outputs. Parameters come from the ``map`` stream, the standardisation from a fixed
    reference sample, so the map depends on (seed, modality, sizes) only."""

    def __init__(self, seed: int, modality: int, k: int, dim: int) -> None:
        rng = _rng(seed, "map", modality)

        def draw(shape: tuple[int, ...], scale: float) -> np.ndarray:
            return (rng.standard_normal(shape) * scale).astype(np.float32)

        self.w1 = draw((k, HIDDEN), GAIN / math.sqrt(k))
        self.b1 = draw((HIDDEN,), BIAS_STD)
        self.w2 = draw((HIDDEN, HIDDEN), GAIN / math.sqrt(HIDDEN))
        self.b2 = draw((HIDDEN,), BIAS_STD)
        self.w3 = draw((HIDDEN, dim), 1 / math.sqrt(HIDDEN))
        self.mean = np.zeros(dim, dtype=np.float32)
        self.std = np.ones(dim, dtype=np.float32)
        ref = self(_rng(seed, "reference", modality).standard_normal((N_REFERENCE, k)))
        self.mean, self.std = ref.mean(0), ref.std(0)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """``(..., k)`` latents -> ``(..., dim)`` features, float32; each row's features depend
        on that row's latents only, bit for bit (see :func:`_in_row_blocks`)."""
        # float32 halves the cost of the sequence variant; 2-D products use BLAS, 3-D do not.
        flat = z.reshape(-1, z.shape[-1]).astype(np.float32)
        out = _in_row_blocks(self._forward, flat, self.w3.shape[1])
        return out.reshape(*z.shape[:-1], -1)

    def _forward(self, flat: np.ndarray) -> np.ndarray:
        h = np.tanh(flat @ self.w1 + self.b1)
        h = np.tanh(h @ self.w2 + self.b2)
        return (h @ self.w3 - self.mean) / self.std


def _in_row_blocks(
    fn: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, width: int
) -> np.ndarray:
    """``fn`` applied to ``rows`` ``(N, k)`` in blocks of exactly ``ROW_BLOCK`` rows (the last
    one zero-padded), giving ``(N, width)``.

    Why: a BLAS kernel may block a matrix product differently for different row counts, so
    row ``i`` of one 700-row product can differ in the last bits from row ``i`` of a 500-row
    product (seen with OpenBLAS's Haswell kernel). Every product here has the same shape and
    row ``i`` always sits at position ``i % ROW_BLOCK``, so a sample's features do not depend
    on how many samples are generated, for any kernel and thread count.
    """
    n = rows.shape[0]
    out = np.empty((n, width), dtype=np.float32)
    block = np.zeros((ROW_BLOCK, rows.shape[1]), dtype=rows.dtype)
    for start in range(0, n, ROW_BLOCK):
        stop = min(start + ROW_BLOCK, n)
        block[: stop - start] = rows[start:stop]
        block[stop - start :] = 0
        out[start:stop] = fn(block)[: stop - start]
    return out


def _trajectories(
    seed: int, modality: int, z: np.ndarray, lengths: np.ndarray, t_max: int
) -> np.ndarray:
    """Latent trajectories ``(N, t_max, k)`` for latents ``z`` ``(N, k)``: ``z(t)`` (see the
    module docstring) sampled at ``L_i`` evenly spaced times in ``[0, 1]``; steps beyond a
    sample's length hold the value at ``t=0`` (they are zeroed later)."""
    k = z.shape[1]
    rng = _rng(seed, "trajectory", modality)
    mixers = np.stack([_orthogonal(rng, k) for _ in range(N_BASIS)])  # (J, k, k)
    coef = np.einsum("jab,nb->nja", mixers, z)  # (N, J, k): latent-dependent basis weights
    steps = np.arange(t_max)[None, :]
    # Each sample spans the whole trajectory whatever its length: lengths set sampling rates.
    t = np.where(steps < lengths[:, None], steps / np.maximum(lengths[:, None] - 1, 1), 0.0)
    freqs = np.arange(1, N_BASIS + 1)
    basis = math.sqrt(2) * np.cos(math.pi * t[..., None] * freqs)  # (N, T, J), unit mean square
    moving = np.einsum("ntj,nja->nta", basis, coef)
    return (
        math.sqrt(1 - TEMPORAL_SHARE) * z[:, None, :] + math.sqrt(TEMPORAL_SHARE / N_BASIS) * moving
    )


def _orthogonal(rng: np.random.Generator, k: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.sign(np.diag(r))


# ------------------------------------------------------------------------------------------
# Targets


def _component(w: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Unit-variance target component ``f(w)`` ``(N,)``: linear plus quadratic projection."""
    linear = w @ pair[:, 0]
    quadratic = ((w @ pair[:, 1]) ** 2 - 1) / math.sqrt(2)  # zero mean, unit variance
    return math.sqrt(1 - NONLINEAR_SHARE) * linear + math.sqrt(NONLINEAR_SHARE) * quadratic


def _signals(
    seed: int, w_s: np.ndarray, w_u: list[np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Real-valued target signals ``(N,)`` by name, and the projections that define them."""
    n_mod = len(w_u)
    pairs = [_unit_pair(_rng(seed, "targets", b), w.shape[1]) for b, w in enumerate([w_s, *w_u])]
    f_s = _component(w_s, pairs[0])
    f_u = [_component(w, p) for w, p in zip(w_u, pairs[1:], strict=True)]
    unique_sum = np.sum(f_u, axis=0) / math.sqrt(n_mod)
    signals = {"shared": f_s}
    signals.update({f"unique:x{m + 1}": f for m, f in enumerate(f_u)})
    for name, r in MIX_RATIOS.items():
        signals[name] = math.sqrt(1 - r) * f_s + math.sqrt(r) * unique_sum
    syn_rng = _rng(seed, "targets", _SYNERGY_KEY)
    draws = [syn_rng.standard_normal(w.shape[1]) for w in w_u[:2]]
    c = [np.asarray(v / np.linalg.norm(v)) for v in draws]
    signals["synergy"] = (w_u[0] @ c[0]) * (w_u[1] @ c[1])
    blocks = ["shared"] + [f"unique:x{m + 1}" for m in range(n_mod)]
    params = {
        "components": {
            b: {"linear": p[:, 0].tolist(), "quadratic": p[:, 1].tolist()}
            for b, p in zip(blocks, pairs, strict=True)
        },
        "synergy": {"x1": c[0].tolist(), "x2": c[1].tolist()},
    }
    return signals, params


def _labels(
    seed: int, index: int, signal: np.ndarray, label_noise: float
) -> tuple[np.ndarray, float, int]:
    """Balanced 0/1 labels ``(N,)`` int64 from a signal: median threshold, then flips."""
    threshold = float(np.median(signal))
    y = (signal > threshold).astype(np.int64)
    n_flip = round(label_noise * len(y))
    flip = _rng(seed, "labels", index).permutation(len(y))[:n_flip]
    y[flip] ^= 1
    return y, threshold, n_flip


# ------------------------------------------------------------------------------------------
# The steps of load


def _draw_latents(o: _Options) -> dict[str, np.ndarray]:
    """Every latent block ``(N, size)`` float64, each from its own stream."""
    return {
        name: _rng(o.seed, "latents", i).standard_normal((o.total, d))
        for i, (name, d) in enumerate(o.latent_blocks)
    }


def _observations(
    o: _Options, latents: dict[str, np.ndarray]
) -> tuple[dict[str, ModalitySpec], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Specs, float32 arrays and (sequences) lengths of every modality."""
    specs: dict[str, ModalitySpec] = {}
    arrays: dict[str, np.ndarray] = {}
    lengths: dict[str, np.ndarray] = {}
    ranges = sequence_length_ranges(o.seq_len, o.modalities)
    for i, m in enumerate(o.names):
        z = np.concatenate(
            [
                latents["shared"],
                latents[f"unique:{m}"],
                latents["nuisance:shared"],
                latents[f"nuisance:{m}"],
            ],
            axis=1,
        )
        if o.kind == "vector":
            x = _vector_modality(o, i, z)
            specs[m] = ModalitySpec(m, "vector", (o.dim,))
        else:
            x, lens = _sequence_modality(o, i, z, ranges[i])
            lengths[m] = lens.astype(np.int64)
            specs[m] = ModalitySpec(m, "sequence", (o.dim,))
        arrays[m] = x.astype(np.float32)
    return specs, arrays, lengths


def _vector_modality(o: _Options, i: int, z: np.ndarray) -> np.ndarray:
    """``x_m = g_m(z) + noise * eps`` ``(N, dim)`` of modality ``i``."""
    g = _RandomMLP(o.seed, i, o.k, o.dim)
    noise_rng = _rng(o.seed, "noise", i)
    return g(z) + o.noise * noise_rng.standard_normal((o.total, o.dim), dtype=np.float32)


def _sequence_modality(
    o: _Options, i: int, z: np.ndarray, length_range: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``x_m[t] = g_m(z(t)) + noise * eps`` ``(N, T_m, dim)``, zero-padded at the end, and
    the lengths ``(N,)`` of modality ``i``."""
    g = _RandomMLP(o.seed, i, o.k, o.dim)
    noise_rng = _rng(o.seed, "noise", i)
    lo, hi = length_range
    lens = _rng(o.seed, "lengths", i).integers(lo, hi + 1, size=o.total)
    x = g(_trajectories(o.seed, i, z, lens, hi))
    x += o.noise * noise_rng.standard_normal(x.shape, dtype=np.float32)
    x *= (np.arange(hi)[None, :] < lens[:, None])[..., None]  # zero padding at the end
    return x, lens


def _targets(
    o: _Options, signals: dict[str, np.ndarray]
) -> tuple[dict[str, Target], dict[str, float]]:
    """The kept binary targets and the median threshold of each."""
    keep = target_names(o.modalities) if o.targets is None else o.targets
    targets: dict[str, Target] = {}
    thresholds: dict[str, float] = {}
    # The index in the full list keys each target's label stream, kept or not.
    for index, name in enumerate(target_names(o.modalities)):
        if name not in keep:
            continue
        y, thresholds[name], _ = _labels(o.seed, index, signals[name], o.label_noise)
        targets[name] = Target(name, y, "classification", ("0", "1"))
    return targets, thresholds


def _info(
    o: _Options, thresholds: dict[str, float], target_params: dict[str, Any]
) -> dict[str, Any]:
    """``data.info``: the options and every parameter of the generator."""
    info: dict[str, Any] = {
        "options": asdict(o),
        "generator": "mmfactor.data.synthetic.load",
        "seeding": "numpy default_rng([seed, stream, key]) per random quantity; streams "
        + ", ".join(f"{k}={v}" for k, v in _STREAMS.items()),
        "latents": dict(o.latent_blocks),
        "map": {
            "input": "[w_s; w_m; n_s; n_m]",
            "layers": [o.k, HIDDEN, HIDDEN, o.dim],
            "activation": "tanh",
            "gain": GAIN,
            "bias_std": BIAS_STD,
            "standardised_on": N_REFERENCE,
        },
        "targets": {
            "nonlinear_share": NONLINEAR_SHARE,
            "component": "sqrt(1-beta) a.w + sqrt(beta) ((b.w)^2 - 1)/sqrt(2)",
            "mix": "sqrt(1-r) f(w_s) + sqrt(r) sum_m f(w_m) / sqrt(M)",
            "synergy": "(c1.w_1)(c2.w_2) > median: XOR of signs",
            "thresholds": thresholds,
            "flipped_per_target": round(o.label_noise * o.total),
            **target_params,
        },
        "unlabeled": "indices n..N-1 (split 'unlabeled'): their target values exist but are "
        "not to be used for training or model selection",
    }
    if o.kind == "sequence":
        ranges = sequence_length_ranges(o.seq_len, o.modalities)
        info["sequence"] = {
            "length_ranges": {m: list(r) for m, r in zip(o.names, ranges, strict=True)},
            "basis": f"sqrt(2) cos(pi j t), j=1..{N_BASIS}, t in [0, 1]",
            "temporal_share": TEMPORAL_SHARE,
            "padding": "zeros at the end",
        }
    return info


# ------------------------------------------------------------------------------------------


def load(
    seed: int = 0,
    n: int = 6000,
    d_shared: int = 8,
    d_unique: int = 8,
    d_nuisance: int = 4,
    dim: int = 100,
    noise: float = 0.1,
    label_noise: float = 0.05,
    modalities: int = 2,
    kind: str = "vector",
    seq_len: int = 30,
    n_unlabeled: int = 0,
    targets: Sequence[str] | None = None,
) -> MultimodalDataset:
    """Generate the ground-truth benchmark (see the module docstring for the model).

    Args:
        seed: seeds everything; the same options and seed give identical arrays.
        n: labeled samples (split 70/15/15 into train/valid/test).
        d_shared, d_unique, d_nuisance: sizes of ``w_s``, each ``w_m``, and of ``n_s`` and
            each ``n_m`` (``d_nuisance=0`` removes the nuisances).
        dim: features per modality (per time step for sequences).
        noise: standard deviation of the Gaussian observation noise (features have unit scale).
        label_noise: fraction of labels flipped in every target, in ``[0, 0.5)``.
        modalities: number of modalities (>= 2), named ``x1``, ``x2``, ...
        kind: ``"vector"`` or ``"sequence"``.
        seq_len: longest sequence length (``kind="sequence"``); see
            :func:`sequence_length_ranges` for the per-modality ranges.
        n_unlabeled: extra samples forming the ``unlabeled`` split.
        targets: names of the targets to keep (default: all of :func:`target_names`).

    Returns:
        A :class:`MultimodalDataset` named ``"synthetic"`` of ``N = n + n_unlabeled`` samples:
        arrays ``(N, dim)`` float32 per modality, or ``(N, T_m, dim)`` with ``lengths``;
        binary targets ``(N,)``; ``latents`` ``{"shared": (N, d_shared), "unique:x<m>":
        (N, d_unique), "nuisance:shared": (N, d_nuisance), "nuisance:x<m>": (N, d_nuisance)}``
        float32; ``info`` with the options and the generator parameters; default target
        ``"mix@0.5"`` (or the first kept target).

    Raises:
        InputError: an invalid option value (the message names the option).
    """
    o = _checked_options(
        seed,
        n,
        d_shared,
        d_unique,
        d_nuisance,
        dim,
        noise,
        label_noise,
        modalities,
        kind,
        seq_len,
        n_unlabeled,
        targets,
    )
    latents = _draw_latents(o)
    specs, arrays, lengths = _observations(o, latents)
    unique = [latents[f"unique:{m}"] for m in o.names]
    signals, target_params = _signals(o.seed, latents["shared"], unique)
    target_objs, thresholds = _targets(o, signals)
    splits = random_splits(o.n, seed=o.seed)
    if o.n_unlabeled:
        splits["unlabeled"] = np.arange(o.n, o.total, dtype=np.int64)
    return MultimodalDataset(
        modalities=specs,
        arrays=arrays,
        targets=target_objs,
        splits=splits,
        lengths=lengths,
        latents={name: v.astype(np.float32) for name, v in latents.items()},
        info=_info(o, thresholds, target_params),
        name="synthetic",
        default_target="mix@0.5" if "mix@0.5" in target_objs else next(iter(target_objs)),
    )
