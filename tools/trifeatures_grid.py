"""Draw the Trifeatures grid of the README: one image per (shape, texture), shapes by row,
textures by column, the colour cycling along the diagonals.

    python tools/trifeatures_grid.py [--size 32] [--out docs/figures/trifeatures_grid_32px.png]
"""

from __future__ import annotations

import argparse

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mmfactor.data import trifeatures_render as tf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--out", default="docs/figures/trifeatures_grid_32px.png")
    args = parser.parse_args()
    shape = np.repeat(np.arange(10), 10)
    texture = np.tile(np.arange(10), 10)
    colour = (shape + texture) % 10
    images = tf.render(shape, colour, texture, tf.draw_geometry(100, 0), args.size)
    fig, axes = plt.subplots(10, 10, figsize=(12, 12.6))
    for i, ax in enumerate(axes.flat):
        ax.imshow(images[i].transpose(1, 2, 0), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if i % 10 == 0:
            ax.set_ylabel(tf.SHAPES[shape[i]], fontsize=9)
        if i < 10:
            ax.set_title(tf.TEXTURES[texture[i]], fontsize=9)
    fig.suptitle(f"trifeatures at {args.size} px: shapes by row, textures by column")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(args.out)


if __name__ == "__main__":
    main()
