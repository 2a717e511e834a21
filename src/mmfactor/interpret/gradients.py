"""Factor gradients: how strongly each factor depends on each input step or feature.

MFM's interpretation (Tsai et al., ICLR 2019, Sec. 4.3) follows the gradient flow from a
factor back to each modality's input over time. :func:`factor_gradients` computes, for every
factor block of any method's :class:`~mmfactor.methods.base.Factors` and every modality, the
norm of the Jacobian of the block with respect to that modality's input, per sample::

    G[b, t] = || d F_b / d x_m[b, t, :] ||_F        (sequences: per time step)
    G[b, j] = || d F_b / d x_m[b, j] ||_2           (vectors: per feature)

one backward pass per factor dimension (the model runs in eval mode, so samples do not
interact and the batch gradient of ``F[:, k].sum()`` holds each sample's own gradient).
Padding steps are zero. :func:`plot_factor_gradients` draws one panel per modality.

Example:
    >>> import mmfactor as mf
    >>> from mmfactor.data.batching import make_loader
    >>> data = mf.datasets.load("synthetic", n=200, kind="sequence")
    >>> model = mf.methods.build("mfm", data.modalities, embed_dim=8, z_dim=4, f_dim=2)
    >>> model.bind_task(data.target().task)
    >>> batch = next(iter(make_loader(data, data.indices("test"), 4)))
    >>> grads = factor_gradients(model, batch)
    >>> grads["shared"]["x1"].shape == (4, batch.x["x1"].shape[1])
    True
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmfactor.data.batching import Batch
from mmfactor.errors import InputError


def factor_gradients(
    model: Any, batch: Batch, factors: list[str] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """``grads[factor][modality]``: ``(B, T)`` for sequences, ``(B, D)`` for vectors,
    ``(B, C, H, W)`` for images (norm over factor dimensions only).

    Args:
        model: a trained method (anything with ``encode(batch) -> Factors``).
        batch: the inputs to explain.
        factors: factor blocks (``shared``, ``specific:<m>``); default: all but ``all``.
    """
    was_training = model.training
    model.eval()
    try:
        x = {m: v.detach().clone().requires_grad_(True) for m, v in batch.x.items()}
        blocks = model.encode(replace(batch, x=x)).blocks()
        names = factors or [b for b in blocks if b != "all"]
        for name in names:
            if name not in blocks:
                raise InputError(f"no factor block {name!r}; blocks: {', '.join(blocks)}")
        out: dict[str, dict[str, np.ndarray]] = {}
        inputs = list(x.values())
        for name in names:
            block = blocks[name]
            squares = [torch.zeros_like(v) for v in inputs]
            for k in range(block.shape[1]):
                grads = torch.autograd.grad(
                    block[:, k].sum(), inputs, retain_graph=True, allow_unused=True
                )
                for acc, g in zip(squares, grads, strict=True):
                    if g is not None:
                        acc += g.detach() ** 2
            out[name] = {}
            for m, acc in zip(x, squares, strict=True):
                if m in batch.mask:  # a sequence: sum over features, padding steps zero
                    acc = acc.sum(-1) * batch.mask[m].to(acc.dtype)
                out[name][m] = acc.sqrt().cpu().numpy()
        return out
    finally:
        model.train(was_training)


def plot_factor_gradients(
    grads: dict[str, dict[str, np.ndarray]],
    sample: int | None = 0,
    path: str | Path | None = None,
    marks: dict[str, list[int]] | None = None,
) -> Any:
    """One panel per modality: each factor's gradient norm over time steps (sequences) or
    feature index (vectors, flattened images) for one sample, or with ``sample=None`` the
    mean over the batch with a +-1 std band. ``marks`` shades known steps per modality (for
    example where a signal was placed). Saves to ``path`` if given; returns the figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modalities = list(next(iter(grads.values())))
    fig, axes = plt.subplots(len(modalities), 1, figsize=(7, 2.4 * len(modalities)), squeeze=False)
    for ax, m in zip(axes[:, 0], modalities, strict=True):
        for factor, per_modality in grads.items():
            rows = per_modality[m].reshape(len(per_modality[m]), -1)
            values = rows.mean(0) if sample is None else rows[sample]
            steps = np.arange(values.size)
            (line,) = ax.plot(steps, values, label=factor, marker=".")
            if sample is None:
                spread = rows.std(0)
                ax.fill_between(
                    steps, values - spread, values + spread, alpha=0.2, color=line.get_color(), lw=0
                )
        for step in (marks or {}).get(m, []):
            ax.axvspan(step - 0.5, step + 0.5, color="orange", alpha=0.25, lw=0)
        what = "mean over the batch" if sample is None else f"sample {sample}"
        ax.set_title(f"modality {m} ({what})")
        ax.set_xlabel("time step / feature")
        ax.set_ylabel("|dF / dx|")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        from mmfactor.io import atomic_write

        atomic_write(path, lambda f: fig.savefig(f, format=Path(path).suffix[1:] or "png", dpi=120))
    return fig
