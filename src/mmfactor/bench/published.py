"""Published results the bench's tables put beside ours, each with its source and protocol.

Bimodal Trifeatures (Hermann & Lampinen, NeurIPS 2020; the bimodal version and the protocol
of Dufumier et al., "What to align in multimodal contrastive learning?", ICLR 2025): encoders
pre-trained without labels (unbiased pairs for redundancy and uniqueness, biased pairs for
synergy) at 224 px for 100 epochs, frozen, then a linear probe; test balanced accuracy in %.
The rows of Cross, Cross+Self, FactorCL and CoMM are CoMM's Table 2 as Wen et al. quote it
("InfMasking", NeurIPS 2025), whose own row is last.
"""

from __future__ import annotations

#: The targets of the three columns: redundancy, uniqueness (the mean over the modalities'
#: ``unique:<m>`` targets) and synergy.
RUS_COLUMNS = {"redundancy": ("shared",), "uniqueness": ("unique:",), "synergy": ("synergy",)}

#: ``data set -> [(published name, our method or None, (R, U, S) in %)]``.
PUBLISHED_RUS: dict[str, list[tuple[str, str | None, tuple[float, float, float]]]] = {
    "trifeatures": [
        ("Cross", "clip", (100.0, 11.6, 50.0)),
        ("Cross+Self", "cross-self", (99.7, 86.9, 50.0)),
        ("FactorCL", "factorcl-ssl", (99.8, 62.5, 46.5)),
        ("CoMM", None, (99.9, 86.8, 71.4)),
        ("InfMasking", None, (99.9, 90.6, 77.0)),
    ],
}
