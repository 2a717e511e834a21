"""MUCMM on top of a frozen pre-trained text encoder (all-MiniLM-L6-v2, offline).

Pairs each handwritten digit of ``uci-mfeat`` (the 240-pixel view) with a generated caption
that names the digit in one of several phrasings and adds an ink colour drawn at random::

    "someone wrote the number seven, in blue ink"

The digit is what the two modalities share; the ink colour is what only the text holds. The
captions are embedded once by the frozen sentence encoder (``embed_texts``, no network),
and ``mucmm`` trains its light heads on the 384-d embeddings (``identity`` encoder: the
frozen model *is* the text encoder) and on the pixels (an MLP). A linear probe then asks
which factor holds what: the digit should be readable from the common codes, the ink
colour from the text's individual code and not from the common ones.

Needs ``pip install 'mmfactor[text]'``. Run: ``python examples/frozen_text_mucmm.py``
(about 30 seconds on 2 cores).
"""

from __future__ import annotations

import numpy as np
import torch

import mmfactor as mf
from mmfactor.encoders.pretrained import embed_texts

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PHRASES = [
    "a handwritten {}",
    "the digit {}",
    "someone wrote the number {}",
    "a scanned image of a {}",
]
INKS = ["red", "blue", "green", "black"]


def captions(digits: np.ndarray, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """A caption per digit and the ink colour index it mentions."""
    rng = np.random.default_rng(seed)
    ink = rng.integers(len(INKS), size=len(digits))
    phrase = rng.integers(len(PHRASES), size=len(digits))
    numeral = rng.random(len(digits)) < 0.5  # "7" or "seven"
    texts = [
        PHRASES[p].format(str(d) if num else NUMBER_WORDS[d]) + f", in {INKS[i]} ink"
        for d, p, num, i in zip(digits, phrase, numeral, ink, strict=True)
    ]
    return texts, ink


def run(seed: int = 0, max_epochs: int = 60) -> dict[str, dict[str, float]]:
    """Train and probe; returns ``{target: {factor block: accuracy}}`` on the test split."""
    mfeat = mf.datasets.load("uci-mfeat", views=["pix"], seed=seed)
    digits = mfeat.targets["digit"].values
    texts, ink = captions(digits, seed)
    data = mf.from_arrays(
        {"text": embed_texts(texts), "pix": mfeat.arrays["pix"]},
        targets={"digit": digits, "ink": ink},
        splits=mfeat.splits,
    )
    torch.manual_seed(seed)
    model = mf.methods.build(
        "mucmm",
        data.modalities,
        embed_dim=10,
        individual_dim=10,
        encoder={"text": "identity", "pix": "mlp"},
        encoder_options={"mlp": {"hidden": [256]}},
        feature_dim=256,
        common_loss="dcca",
    )
    mf.fit(model, data, target="digit", max_epochs=max_epochs, batch_size=256, progress=False)
    records = mf.evaluate(model, data, targets=["digit", "ink"], seed=seed)
    table: dict[str, dict[str, float]] = {}
    for r in records:
        if r["metric"] == "accuracy":
            table.setdefault(r["target"], {})[r["factors"]] = r["value"]
    return table


def main() -> None:
    table = run()
    blocks = list(next(iter(table.values())))
    print("| target | " + " | ".join(blocks) + " |")
    print("|---|" + "---|" * len(blocks))
    for target, row in table.items():
        print(f"| {target} | " + " | ".join(f"{row[b]:.3f}" for b in blocks) + " |")
    print(f"(chance: digit 0.1, ink {1 / len(INKS):.2f})")


if __name__ == "__main__":
    main()
