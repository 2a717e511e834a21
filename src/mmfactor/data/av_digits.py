"""av-digits: real spoken digits paired with real handwritten digits.

Audio: every recording of the Free Spoken Digit Dataset (FSDD; Z. Jackson et al., CC BY-SA
4.0): 3,000 8 kHz recordings, 6 speakers x 10 digits x 50 repetitions, as log-mel frames
(40 bands, 25 ms windows, 10 ms hop) computed by ``tools/build_av_digits.py`` with
:func:`mmfactor.data.audio.log_mel` and embedded in ``files/av_digits.npz`` (dB over each
recording's peak, clipped at -80 dB, quantised to 8 bits). The embedded features are derived
from FSDD and are shared under the same licence, CC BY-SA 4.0 (ShareAlike).

Images: the 2,000 handwritten digits of UCI "Multiple Features" (R. Duin, CC BY 4.0; its
``pix`` view, 16 x 15 pixels of 0-6 ink, already embedded), one channel.

Pairs. FSDD's official split (repetitions 0-4: test) stays; ``valid`` takes ``valid``
repetitions of each speaker x digit from the rest by a seeded draw (speaker-balanced). Each
digit's 200 images are split 160 / 20 / 20 (train / valid / test) by a seeded draw, and every
recording gets an image of its own digit from its own split (each image of a split used
``ceil`` or ``floor`` of recordings / images times, by a seeded matching): no image is in two
splits, no recording either.

Targets, and where the information is (by construction; measured by
:func:`mmfactor.diagnostics.information_decomposition`):

- ``digit`` = ``shared`` (10 classes): in both modalities (redundancy);
- ``speaker`` = ``unique:audio`` (6) and ``accent`` (4: USA, German, Belgian French, Greek):
  in the audio only;
- ``ink`` = ``unique:image`` (2): whether the image holds more ink than the median image of
  its digit (the sum of its pixels), a property of the handwriting that no recording carries;
- ``synergy`` (2): ``ink`` XOR the speaker's group (``george``, ``jackson``, ``lucas``: 0;
  ``nicolas``, ``theo``, ``yweweler``: 1). Either modality alone predicts it at chance: a
  model has to combine the two.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from mmfactor.checks import check_int
from mmfactor.data.dataset import ModalitySpec, MultimodalDataset, Target
from mmfactor.data.embedded import read_embedded
from mmfactor.errors import InputError

FSDD_SOURCE = (
    "Free Spoken Digit Dataset (FSDD), Z. Jackson and contributors, "
    "https://github.com/Jakobovski/free-spoken-digit-dataset (commit 26eb9aa)"
)
FSDD_LICENSE = (
    "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/). The log-mel features "
    "embedded in mmfactor are derived from FSDD's recordings and are shared under the same "
    "licence (ShareAlike); credit the FSDD authors when you use or share them."
)
#: Images of each digit per split (of its 200 UCI images).
IMAGE_SPLIT = {"train": 160, "valid": 20, "test": 20}
#: FSDD's official test split: repetitions 0-4.
TEST_REPETITIONS = 5
#: The speakers' group in the ``synergy`` target (alphabetical halves).
GROUP_ONE = ("nicolas", "theo", "yweweler")
DB_FLOOR = -80.0


def _image_splits(digit: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Image indices per split: each digit's images drawn 160 / 20 / 20."""
    out: dict[str, list[np.ndarray]] = {s: [] for s in IMAGE_SPLIT}
    for d in range(10):
        own = rng.permutation(np.flatnonzero(digit == d))
        start = 0
        for split, count in IMAGE_SPLIT.items():
            out[split].append(own[start : start + count])
            start += count
    return {s: np.concatenate(v) for s, v in out.items()}


def _recording_splits(
    speaker: np.ndarray, digit: np.ndarray, repetition: np.ndarray, valid: int, seed: int
) -> np.ndarray:
    """Split number per recording: 0 train, 1 valid, 2 test (repetitions 0-4). ``valid``
    repetitions of every speaker x digit move from train to valid (a seeded draw)."""
    split = np.where(repetition < TEST_REPETITIONS, 2, 0)
    rng = np.random.default_rng([seed, 1])
    cell = speaker * 10 + digit
    key = np.where(split == 0, rng.random(len(cell)), np.inf)
    order = np.lexsort((key, cell))  # by cell, train rows first in random order
    rank = np.empty(len(cell), dtype=np.int64)
    starts = np.searchsorted(cell[order], cell[order])
    rank[order] = np.arange(len(cell)) - starts
    split[(split == 0) & (rank < valid)] = 1
    return split


def _match_images(
    rec_digit: np.ndarray, rec_split: np.ndarray, img_digit: np.ndarray, pools: list[np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    """An image index per recording: of its digit and split, images dealt in a random order
    so each image of a cell is used ``floor`` or ``ceil`` of recordings / images times."""
    image = np.empty(len(rec_digit), dtype=np.int64)
    for s, pool in enumerate(pools):
        for d in range(10):
            rows = rng.permutation(np.flatnonzero((rec_split == s) & (rec_digit == d)))
            own = rng.permutation(pool[img_digit[pool] == d])
            image[rows] = own[np.arange(len(rows)) % len(own)]
    return image


def load(seed: int = 0, valid: int = 5, max_frames: int | None = None) -> MultimodalDataset:
    """av-digits (see the module docstring): spoken and handwritten digits in pairs.

    Args:
        seed: seeds the validation draw, the image split and the matching.
        valid: repetitions per speaker x digit moved from train to valid (0-44).
        max_frames: keep at most this many frames (10 ms each) of a recording (``None``: all;
            the longest is given in ``info``).

    Returns:
        A :class:`MultimodalDataset` named ``"av-digits"`` of 3,000 pairs (train 2,700 -
        60 x ``valid``, valid 60 x ``valid``, test 300): ``audio`` ``(N, T, 40)`` float32
        log-mel frames in [0, 1] (0 = 80 dB under the recording's peak) with ``lengths``,
        ``image`` ``(N, 1, 16, 15)`` float32 ink in [0, 1]; targets ``shared``/``digit``,
        ``unique:audio``/``speaker``, ``accent``, ``unique:image``/``ink``, ``synergy``
        (default ``digit``); ``meta`` ``repetition`` (FSDD's index in the file name) and
        ``image`` (the UCI row).

    Raises:
        InputError: an invalid option value (the message names it).
    """
    owner = "av-digits"
    seed = check_int(owner, "seed", seed, minimum=0)
    valid = check_int(owner, "valid", valid, minimum=0, maximum=44)
    if max_frames is not None:
        max_frames = check_int(owner, "max_frames", max_frames, minimum=1)
    raw = read_embedded("av_digits")
    uci = read_embedded("uci_mfeat")
    pixels, img_digit = uci["pix"], uci["digit"].astype(np.int64)
    speakers = [str(s) for s in raw["speakers"]]
    accents = [str(a) for a in raw["accents"]]
    rec_digit, speaker = raw["digit"].astype(np.int64), raw["speaker"].astype(np.int64)
    repetition = raw["repetition"].astype(np.int64)

    rec_split = _recording_splits(speaker, rec_digit, repetition, valid, seed)
    rng = np.random.default_rng([seed, 2])
    image_pools = _image_splits(img_digit, rng)
    image = _match_images(rec_digit, rec_split, img_digit, list(image_pools.values()), rng)

    offsets = raw["offsets"].astype(np.int64)
    lengths = np.diff(offsets)
    if max_frames is not None:
        lengths = np.minimum(lengths, max_frames)
    frames = raw["mel"]
    n, n_mels = len(rec_digit), frames.shape[1]
    audio = np.zeros((n, int(lengths.max()), n_mels), dtype=np.float32)
    step = np.arange(audio.shape[1])
    valid_step = step[None, :] < lengths[:, None]
    rows, cols = np.nonzero(valid_step)
    audio[rows, cols] = frames[offsets[rows] + cols].astype(np.float32) / 255.0

    ink_sum = pixels.sum(1)
    median = np.array([np.median(ink_sum[img_digit == d]) for d in range(10)])
    ink_of_image = (ink_sum > median[img_digit]).astype(np.int64)
    ink = ink_of_image[image]
    group = np.isin(np.array(speakers), GROUP_ONE).astype(np.int64)[speaker]
    accent_names = sorted(set(accents))
    accent = np.array([accent_names.index(a) for a in accents], dtype=np.int64)[speaker]
    digits = tuple(str(d) for d in range(10))

    def target(name: str, values: np.ndarray, classes: tuple[str, ...]) -> Target:
        return Target(name, values, "classification", classes)

    targets = {
        "digit": target("digit", rec_digit, digits),
        "speaker": target("speaker", speaker, tuple(speakers)),
        "accent": target("accent", accent, tuple(accent_names)),
        "ink": target("ink", ink, ("less", "more")),
        "synergy": target("synergy", ink ^ group, ("0", "1")),
    }
    for alias, name in (("shared", "digit"), ("unique:audio", "speaker"), ("unique:image", "ink")):
        targets[alias] = target(alias, targets[name].values, targets[name].classes)
    splits = {s: np.flatnonzero(rec_split == k) for k, s in enumerate(("train", "valid", "test"))}
    settings = json.loads(str(raw["settings"]))
    info: dict[str, Any] = {
        "options": {"seed": seed, "valid": valid, "max_frames": max_frames},
        "source": FSDD_SOURCE + "; images: UCI Machine Learning Repository, Multiple "
        "Features (R. Duin), CC BY 4.0",
        "attribution": "audio: the FSDD authors (Z. Jackson et al.); images: R. Duin (UCI)",
        "license": FSDD_LICENSE,
        "audio_features": settings,
        "longest_recording_frames": int(np.diff(offsets).max()),
        "targets": {
            "digit / shared": "the spoken and written digit (10 classes): redundancy",
            "speaker / unique:audio": "who speaks (6 speakers): audio only",
            "accent": "the speaker's accent (4 classes): audio only",
            "ink / unique:image": "the image holds more ink than its digit's median image "
            "(2 classes): image only",
            "synergy": "ink XOR the speaker's group (nicolas, theo, yweweler: 1): needs both",
        },
        "splits": {
            "train": "FSDD repetitions 5-49 less valid; 160 images per digit",
            "valid": f"{valid} repetitions per speaker x digit drawn from 5-49; 20 images "
            "per digit",
            "test": "FSDD's official test split (repetitions 0-4); 20 images per digit",
        },
    }
    if not len(splits["train"]):
        raise InputError("av-digits: no train pairs left")
    return MultimodalDataset(
        modalities={
            "audio": ModalitySpec("audio", "sequence", (n_mels,)),
            "image": ModalitySpec("image", "image", (1, 16, 15)),
        },
        arrays={"audio": audio, "image": (pixels[image] / 6.0).reshape(n, 1, 16, 15)},
        targets=targets,
        splits=splits,
        lengths={"audio": lengths},
        meta={"repetition": repetition, "image": image},
        info=info,
        name="av-digits",
        default_target="digit",
    )
