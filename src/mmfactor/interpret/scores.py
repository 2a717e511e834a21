"""Score gradients: where on the input a per-sample score (MUCMM's common and individual
scores) comes from (Shi & Niethammer 2023, abstract: "gradients of the scores ... on the
input").

:func:`score_gradients` returns ``d s(sample) / d x_m(sample)`` for every score of a model
with ``scores(batch) -> {name: (B,)}`` and every modality, shaped like the input (the model
runs in eval mode, so samples do not interact and one backward pass of the summed score gives
each sample's own gradient); padding steps are zero. :func:`plot_score_gradients` draws them
as a picture suited to each input: heat maps for image-shaped inputs (images, or vectors
given an ``image_shape``), per-step gradient norms for sequences, per-feature bars for
vectors.

In the linear setting (identity encoders, linear heads) ``grad_x1 s_c = W_1^T c~_2 / std``
and ``grad_x1 s_u,1 = V_1^T u~_1 / std``: the gradients of all samples span the rows of the
common and individual heads' weights, which match the true loadings (tested on ``linear``).

Example:
    >>> import mmfactor as mf
    >>> from mmfactor.data.batching import make_loader
    >>> data = mf.datasets.load("linear", n=200, dims=[6, 5])
    >>> model = mf.methods.build("mucmm", data.modalities, embed_dim=2,
    ...                          encoder={"vector": "identity"})
    >>> batch = next(iter(make_loader(data, data.indices("test"), 8)))
    >>> grads = score_gradients(model, batch)
    >>> sorted(grads), grads["score:common"]["x2"].shape
    (['score:common', 'score:x1', 'score:x2'], (8, 5))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmfactor.data.batching import Batch
from mmfactor.errors import InputError


def score_gradients(
    model: Any,
    batch: Batch,
    scores: Sequence[str] | None = None,
    smooth: int = 0,
    noise: float = 0.15,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """``grads[score][modality]``: ``(B, *input shape)`` (sequences ``(B, T, D)``).

    Args:
        model: a trained model with ``scores(batch) -> {name: (B,)}`` (``mucmm``).
        batch: the inputs to explain.
        scores: which scores (default: all).
        smooth: 0 for the plain gradient; n > 0 averages the gradients at n noisy copies
            of the input (SmoothGrad, Smilkov et al. 2017), Gaussian noise of standard
            deviation ``noise`` times each modality's value range in the batch. The plain
            gradient of a non-linear network over raw pixels is dominated by
            high-frequency noise; its average over a neighbourhood shows the structure.
        seed: seeds the noise.
    """
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 0 or noise < 0:
        raise InputError(f"smooth must be an integer >= 0 and noise >= 0, got {smooth}, {noise}")
    if smooth == 0:
        return _gradients(model, batch, scores)
    generator = torch.Generator().manual_seed(seed)
    spread = {m: float(v.max() - v.min()) * noise for m, v in batch.x.items()}
    total: dict[str, dict[str, np.ndarray]] = {}
    for _ in range(smooth):
        x = {
            m: v + spread[m] * torch.randn(v.shape, generator=generator).to(v)
            for m, v in batch.x.items()
        }
        for name, per_modality in _gradients(model, replace(batch, x=x), scores).items():
            for m, g in per_modality.items():
                acc = total.setdefault(name, {})
                acc[m] = acc[m] + g / smooth if m in acc else g / smooth
    return total


def _gradients(
    model: Any, batch: Batch, scores: Sequence[str] | None
) -> dict[str, dict[str, np.ndarray]]:
    if not callable(getattr(model, "scores", None)):
        raise InputError(f"{type(model).__name__} has no per-sample scores (mucmm has)")
    was_training = model.training
    model.eval()
    try:
        x = {m: v.detach().float().clone().requires_grad_(True) for m, v in batch.x.items()}
        values = model.scores(replace(batch, x=x))
        names = list(scores or values)
        for name in names:
            if name not in values:
                raise InputError(f"no score {name!r}; scores: {', '.join(values)}")
        inputs = list(x.values())
        out: dict[str, dict[str, np.ndarray]] = {}
        for name in names:
            grads = torch.autograd.grad(
                values[name].sum(), inputs, retain_graph=True, allow_unused=True
            )
            out[name] = {}
            for (m, v), g in zip(x.items(), grads, strict=True):
                g = torch.zeros_like(v) if g is None else g.detach()
                if m in batch.mask:  # padding steps carry no input
                    g = g * batch.mask[m].to(g.dtype)[..., None]
                out[name][m] = g.cpu().numpy()
        return out
    finally:
        model.train(was_training)


def plot_score_gradients(
    grads: Mapping[str, Mapping[str, np.ndarray]],
    path: str | Path | None = None,
    image_shape: Mapping[str, tuple[int, int]] | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    max_samples: int = 6,
    titles: Sequence[str] | None = None,
) -> Any:
    """Draw score gradients; saves to ``path`` (PNG, atomically) if given, returns the figure.

    - Image-shaped modalities (``(B, C, H, W)`` gradients, or vectors with an
      ``image_shape`` ``(H, W)``): one row per sample (up to ``max_samples``), one column
      per score, plus the input itself first when ``inputs`` holds it; signed heat maps
      (red: raising the pixel raises the score), colour scale symmetric per panel.
    - Sequences ``(B, T, D)``: per score, the gradient norm over features at each step, one
      thin line per sample and their mean.
    - Vectors ``(B, D)``: per score, the mean absolute gradient of each feature (bars).

    ``titles``: one label per sample (for example its class) for the image rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = dict(image_shape or {})
    score_names = list(grads)
    modalities = list(next(iter(grads.values())))
    image_mods = [m for m in modalities if m in shapes or grads[score_names[0]][m].ndim == 4]
    other_mods = [m for m in modalities if m not in image_mods]
    n = min(max_samples, len(next(iter(grads[score_names[0]].values()))))

    def as_image(m: str, values: np.ndarray) -> np.ndarray:
        if m in shapes:
            return values.reshape(len(values), *shapes[m])
        return values.mean(1)  # (B, C, H, W) -> (B, H, W)

    columns: list[tuple[str, str | None]] = []  # (modality, score; None: the input)
    for m in image_mods:
        if inputs is not None and m in inputs:
            columns.append((m, None))
        columns += [(m, s) for s in score_names]
    rows = n if image_mods else 0
    height = 1.6 * rows + 2.2 * len(other_mods) * (1 if other_mods else 0)
    width = max(1.6 * len(columns), 4.5 * len(score_names) if other_mods else 0)
    fig = plt.figure(figsize=(max(width, 4.0), max(height, 2.0)), constrained_layout=True)
    grid = fig.add_gridspec(rows + len(other_mods), 1)
    if image_mods:
        sub = grid[:rows, 0].subgridspec(rows, len(columns))
        for j, (m, score) in enumerate(columns):
            source = inputs[m] if score is None else grads[score][m]  # type: ignore[index]
            maps = as_image(m, np.asarray(source)[:n])
            for i in range(n):
                ax = fig.add_subplot(sub[i, j])
                if score is None:
                    ax.imshow(maps[i], cmap="gray_r")
                else:
                    limit = float(np.abs(maps[i]).max()) or 1.0
                    ax.imshow(maps[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"{m}: {'input' if score is None else score}", fontsize=8)
                if j == 0 and titles is not None:
                    ax.set_ylabel(str(titles[i]), fontsize=8)
    for r, m in enumerate(other_mods):
        sub = grid[rows + r, 0].subgridspec(1, len(score_names))
        for j, score in enumerate(score_names):
            ax = fig.add_subplot(sub[0, j])
            g = np.asarray(grads[score][m])
            if g.ndim == 3:
                norms = np.sqrt((g**2).sum(-1))
                for line in norms[:n]:
                    ax.plot(line, color="0.7", lw=0.8)
                ax.plot(norms.mean(0), color="C0", lw=2, label="mean")
                ax.set_xlabel("time step")
                ax.set_ylabel("|ds / dx_t|")
            else:
                flat = np.abs(g.reshape(len(g), -1)).mean(0)
                ax.bar(np.arange(flat.size), flat, width=1.0, color="C0")
                if not flat.any():
                    ax.text(0.5, 0.5, "0 everywhere", transform=ax.transAxes, ha="center")
                ax.set_xlabel("feature")
                ax.set_ylabel("mean |ds / dx_j|")
            ax.set_title(f"{m}: {score}", fontsize=9)
    if path is not None:
        from mmfactor.io import atomic_write

        atomic_write(path, lambda f: fig.savefig(f, format=Path(path).suffix[1:] or "png", dpi=120))
    return fig
