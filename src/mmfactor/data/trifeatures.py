"""``trifeatures``: bimodal Trifeatures, procedural images of an object with three attributes.

The images follow Hermann & Lampinen, "What shapes feature representations? Exploring
datasets, architectures, and training" (NeurIPS 2020): an object of one of 10 shapes
(:data:`SHAPES`) in one of 10 colours (:data:`COLOURS`), filled with one of 10 textures
(:data:`TEXTURES`), on a grey (0.5) background, at a random position and a random rotation
of up to 45 degrees either way; the object's box is 128/224 (57%) of the image side. The
pairs follow the bimodal version of Dufumier et al., "What to align in multimodal
contrastive learning?" (CoMM, ICLR 2025): two images form a pair when they share the
**shape** (the redundant attribute), while colour and texture are independent between them.

Targets (all classification):

- ``shared``: the common shape (10 classes), redundancy;
- ``unique:x1`` / ``unique:x2``: the texture of image 1 / image 2 (10 classes), uniqueness;
- ``synergy``: 1 if (colour of x1, texture of x2) is one of 10 *correlated pairs*, else 0
  (the correlated pairs are a fixed seeded permutation colour -> texture,
  :func:`correlated_textures`); neither image alone tells it. About 10% of unbiased pairs
  are positive, so a probe is scored by balanced accuracy (chance: 50%);
- ``colour:x1`` / ``colour:x2``: the colour of each image (10 classes).

Rendering (our own NumPy code; nothing is downloaded), vectorised over a batch of images:
each sub-pixel is turned and moved into the object's frame; shapes are inside-tests
(half-planes, rectangles, a circle), textures periodic functions of the object-frame
coordinates with a random phase per image (``noise``: cells from an integer hash), drawn in
the object's colour with marks at 35% of it (55% of the way to white for the dark blue,
purple and ocean). Sub-pixels: 4x4 per pixel below 64 px, 2x2 from 64 px, averaged
(anti-aliasing). The texture period is 10 px at 224 px (the paper's scale) but at least 5 px,
so textures stay recognisable at 32 px. The object always lies wholly inside the image.

Images and splits. ``per_combination`` renders of each of the 1000 (shape, colour, texture)
triples form the image pool. A seeded permutation of each shape's images gives 20% of them
to ``test`` and 80% to train (CoMM's 80/20, here stratified by shape), an eighth of which
(10% of the pool) is carved out for ``valid``, *before* any pair is drawn: no image of a
test pair is in a train or valid pair. Pairs are drawn uniformly without replacement among
the ordered pairs of distinct images of one split: ``n`` train, ``round(n / 7)`` valid and
``round(n / 4)`` test pairs (capped at what exists, with a note in ``info``). The pool, its
split and the correlated pairs depend on ``(size, per_combination, seed)`` only, never on
``n`` or ``biased``.

``biased=True`` (the synergy pre-training set): ``train`` and ``valid`` hold only correlated
pairs (``synergy`` is 1 for all); ``test`` stays **unbiased**, the same pairs as with
``biased=False``. The benchmark pre-trains on the biased ``train`` and fits and scores its
probes on an unbiased data set of the same seed.

Published setting: 224 px, 3 renders per triple (2400 train and 600 test images), up to
10,000 pairs, ResNet-size encoders. Our CPU default: 32 px with the same counts.

Cache. The pool is stored as ``trifeatures-<size>px-<per_combination>x-seed<seed>-<key>.npz``
in ``$MMFACTOR_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/mmfactor``, else
``~/.cache/mmfactor``; ``<key>`` hashes the renderer version, size, renders per triple and
seed. It is written atomically (a temporary file in that directory, then renamed) and read
with ``np.load(allow_pickle=False)``; an unreadable or mismatched file is rendered again,
with a warning. ``cache=False`` renders in memory without touching the disk.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mmfactor.checks import check_bool, check_int
from mmfactor.data.dataset import ModalitySpec, MultimodalDataset, Target
from mmfactor.data.trifeatures_render import (
    BOX,
    COLOURS,
    MAX_ANGLE,
    MIN_PERIOD_PX,
    N_TRIPLES,
    PERIOD,
    RENDERER_VERSION,
    SHAPES,
    TEXTURES,
    correlated_textures,
    draw_geometry,
    render,
    stream_rng,
    supersampling,
)

SPLIT_SHARES = {"train": 0.7, "valid": 0.1, "test": 0.2}
PAIR_SHARES = {"train": 1.0, "valid": 1 / 7, "test": 1 / 4}  # pairs per split, times n

# ------------------------------------------------------------------------------------------
# The image pool and its cache


def pool_attributes(per_combination: int) -> dict[str, np.ndarray]:
    """``shape``, ``colour``, ``texture`` ``(1000 per_combination,)`` of the pool's images:
    image ``i`` renders triple ``i // per_combination``, numbered shape-major."""
    triple = np.arange(N_TRIPLES * per_combination, dtype=np.int64) // per_combination
    n_c, n_t = len(COLOURS), len(TEXTURES)
    return {"shape": triple // (n_c * n_t), "colour": triple // n_t % n_c, "texture": triple % n_t}


def render_pool(size: int, per_combination: int, seed: int) -> np.ndarray:
    """The pool's images ``(1000 per_combination, 3, size, size)`` uint8, uncached."""
    attrs = pool_attributes(per_combination)
    geometry = draw_geometry(len(attrs["shape"]), seed)
    return render(attrs["shape"], attrs["colour"], attrs["texture"], geometry, size)


def cache_dir() -> Path:
    """``$MMFACTOR_CACHE_DIR``, else ``$XDG_CACHE_HOME/mmfactor``, else ``~/.cache/mmfactor``."""
    if os.environ.get("MMFACTOR_CACHE_DIR"):
        return Path(os.environ["MMFACTOR_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mmfactor"


def cache_key(size: int, per_combination: int, seed: int) -> str:
    """The content key of a pool: a hash of the renderer version and the pool's options."""
    text = f"trifeatures|renderer={RENDERER_VERSION}|size={size}|pc={per_combination}|{seed}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_path(size: int, per_combination: int, seed: int) -> Path:
    """Where the pool of these options is cached (see the module docstring)."""
    key = cache_key(size, per_combination, seed)
    name = f"trifeatures-{size}px-{per_combination}x-seed{seed}-{key}.npz"
    return cache_dir() / name


def image_pool(size: int, per_combination: int, seed: int, cache: bool = True) -> np.ndarray:
    """The pool's images (:func:`render_pool`), read from the cache when there, else
    rendered (and cached when ``cache``)."""
    if not cache:
        return render_pool(size, per_combination, seed)
    path = cache_path(size, per_combination, seed)
    expected = (N_TRIPLES * per_combination, 3, size, size)
    if path.exists():
        images = _read_cache(path, cache_key(size, per_combination, seed), expected)
        if images is not None:
            return images
    images = render_pool(size, per_combination, seed)
    _write_cache(path, cache_key(size, per_combination, seed), images)
    return images


def _read_cache(path: Path, key: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached images, or ``None`` (with a warning) if the file is unreadable or holds
    something else."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored_key = str(npz["key"][()])
            images = np.asarray(npz["images"])
        problem = (
            "its key does not match"
            if stored_key != key
            else f"it holds {images.dtype} {images.shape}, not uint8 {shape}"
            if images.dtype != np.uint8 or images.shape != shape
            else None
        )
    except Exception as exc:  # any unreadable cache is rendered again
        problem = " ".join(str(exc).split()) or type(exc).__name__
    if problem is None:
        return images
    warnings.warn(
        f"trifeatures: cache file {path} is unusable ({problem}); rendering again",
        UserWarning,
        stacklevel=3,
    )
    return None


def _write_cache(path: Path, key: str, images: np.ndarray) -> None:
    """Store the pool atomically; a cache that cannot be written only warns."""
    from mmfactor.io import atomic_write

    try:
        atomic_write(path, lambda f: np.savez(f, images=images, key=np.array(key)), durable=False)
    except OSError as exc:
        warnings.warn(f"trifeatures: cannot write the cache {path}: {exc}", stacklevel=3)


# ------------------------------------------------------------------------------------------
# Splits and pairs


def image_splits(per_combination: int, seed: int) -> dict[str, np.ndarray]:
    """Sorted pool indices of each split's images: per shape, a seeded 80/20 train/test
    split of its images (CoMM's, stratified so that no shape dominates the pairs, whose
    number grows with the square of the images), then an eighth of the train images for
    ``valid`` (70/10/20 in all)."""
    rng = stream_rng(seed, "split")
    shape = pool_attributes(per_combination)["shape"]
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for s in range(len(SHAPES)):
        order = rng.permutation(np.flatnonzero(shape == s))
        n_test = round(len(order) * SPLIT_SHARES["test"])
        n_valid = round(len(order) * SPLIT_SHARES["valid"])
        parts["test"].append(order[:n_test])
        parts["valid"].append(order[n_test : n_test + n_valid])
        parts["train"].append(order[n_test + n_valid :])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}


def _pair_groups(
    images: np.ndarray, attrs: dict[str, np.ndarray], mapping: np.ndarray, biased: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The allowed pairs of ``images`` as groups ``(firsts, seconds)``: any first with any
    other second of the group. Unbiased: one group per shape; biased: one per (shape, colour
    c of the first image), seconds of texture ``mapping[c]``."""
    groups = []
    for s in range(len(SHAPES)):
        same = images[attrs["shape"][images] == s]
        if not biased:
            groups.append((same, same))
            continue
        for c in range(len(COLOURS)):
            firsts = same[attrs["colour"][same] == c]
            groups.append((firsts, same[attrs["texture"][same] == mapping[c]]))
    return groups


def draw_pairs(
    rng: np.random.Generator, groups: list[tuple[np.ndarray, np.ndarray]], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` ordered pairs ``(first, second)`` of distinct images, uniformly without
    replacement among the allowed pairs of ``groups`` (all of them if fewer), in random
    order. Pairs are numbered group by group; ``n`` plus the number of same-image pairs are
    drawn, the same-image ones dropped and the first ``n`` kept."""
    firsts = [np.asarray(a, dtype=np.int64) for a, _ in groups]
    seconds = [np.asarray(b, dtype=np.int64) for _, b in groups]
    sizes = np.array([len(a) * len(b) for a, b in zip(firsts, seconds, strict=True)])
    total = int(sizes.sum())
    same = sum(len(np.intersect1d(a, b)) for a, b in zip(firsts, seconds, strict=True))
    n = min(n, total - same)
    if n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    flat = rng.choice(total, size=min(total, n + same), replace=False)
    ends = np.cumsum(sizes)
    group = np.searchsorted(ends, flat, side="right")
    within = flat - (ends - sizes)[group]
    n_second = np.array([len(b) for b in seconds])[group]
    first_start = np.cumsum([0] + [len(a) for a in firsts])[group]
    second_start = np.cumsum([0] + [len(b) for b in seconds])[group]
    i1 = np.concatenate(firsts)[first_start + within // n_second]
    i2 = np.concatenate(seconds)[second_start + within % n_second]
    keep = np.flatnonzero(i1 != i2)[:n]
    return i1[keep], i2[keep]


# ------------------------------------------------------------------------------------------
# The data set


def _targets(
    i1: np.ndarray, i2: np.ndarray, attrs: dict[str, np.ndarray], mapping: np.ndarray
) -> dict[str, Target]:
    colours, textures = tuple(COLOURS), TEXTURES
    synergy = (mapping[attrs["colour"][i1]] == attrs["texture"][i2]).astype(np.int64)
    return {
        "shared": Target("shared", attrs["shape"][i1], "classification", SHAPES),
        "unique:x1": Target("unique:x1", attrs["texture"][i1], "classification", textures),
        "unique:x2": Target("unique:x2", attrs["texture"][i2], "classification", textures),
        "synergy": Target("synergy", synergy, "classification", ("0", "1")),
        "colour:x1": Target("colour:x1", attrs["colour"][i1], "classification", colours),
        "colour:x2": Target("colour:x2", attrs["colour"][i2], "classification", colours),
    }


def _info(
    options: dict[str, Any],
    mapping: np.ndarray,
    image_counts: dict[str, int],
    synergy_rates: dict[str, float | None],
    cache_file: str | None,
) -> dict[str, Any]:
    size, ss = options["size"], supersampling(options["size"])
    return {
        "options": options,
        "generator": "mmfactor.data.trifeatures.load",
        "source": "Trifeatures (Hermann & Lampinen, NeurIPS 2020); bimodal pairs sharing the "
        "shape (Dufumier et al., CoMM, ICLR 2025); our own NumPy renderer",
        "targets": {
            "shared": "the shape of both images (10 classes): redundancy",
            "unique:x1": "the texture of x1 (10 classes): uniqueness",
            "unique:x2": "the texture of x2 (10 classes): uniqueness",
            "synergy": "1 if (colour of x1, texture of x2) is a correlated pair: synergy; "
            "about 10% positive on unbiased pairs, score it by balanced accuracy",
            "colour:x1": "the colour of x1 (10 classes)",
            "colour:x2": "the colour of x2 (10 classes)",
        },
        "correlated_pairs": {
            colour: TEXTURES[int(t)] for colour, t in zip(COLOURS, mapping, strict=True)
        },
        "splits": {
            "train": "biased pairs (synergy always 1)" if options["biased"] else "unbiased pairs",
            "valid": "biased pairs (synergy always 1)" if options["biased"] else "unbiased pairs",
            "test": "unbiased pairs of test images only",
        },
        "images": image_counts,
        "synergy_positive_rate": synergy_rates,
        "renderer": f"version {RENDERER_VERSION}; {ss}x{ss} sub-pixels per pixel; object box "
        f"{BOX * size:.1f} px; texture period {max(PERIOD * size, MIN_PERIOD_PX):.1f} px; "
        f"rotation up to {MAX_ANGLE:g} degrees either way",
        "published_setting": "224 px, 3 renders per triple (2400 train / 600 test images), up "
        "to 10,000 pairs; linear probes scored by balanced accuracy",
        "cpu_setting": "32 px (size=32), 3 renders per triple, 10,000 train pairs",
        "cache": cache_file,
    }


def load(
    seed: int = 0,
    n: int = 10_000,
    size: int = 32,
    per_combination: int = 3,
    biased: bool = False,
    cache: bool = True,
) -> MultimodalDataset:
    """Bimodal Trifeatures (see the module docstring): pairs of images sharing the shape.

    Args:
        seed: seeds the image placement, the image split, the correlated pairs and the pairs.
        n: train pairs; ``valid`` gets ``round(n / 7)`` and ``test`` ``round(n / 4)`` (each
            capped at the number of allowed pairs of its images).
        size: image side in pixels (32 on CPU; the paper's is 224).
        per_combination: renders of each (shape, colour, texture) triple (3, as CoMM).
        biased: ``train`` and ``valid`` hold only correlated pairs (the synergy pre-training
            set); ``test`` stays unbiased.
        cache: read and write the rendered images in the cache directory (:func:`cache_dir`).

    Returns:
        A :class:`MultimodalDataset` named ``"trifeatures"``: images ``x1``, ``x2``
        ``(N, 3, size, size)`` uint8; targets ``shared``, ``unique:x1``, ``unique:x2``,
        ``synergy``, ``colour:x1``, ``colour:x2`` (default ``shared``); ``meta`` ``image:x1``
        and ``image:x2``, the images' indices in the pool (:func:`pool_attributes`).

    Raises:
        InputError: an invalid option value (the message names the option).
    """
    owner = "trifeatures"
    seed = check_int(owner, "seed", seed, minimum=0)
    n = check_int(owner, "n", n, minimum=10)
    size = check_int(owner, "size", size, minimum=16, maximum=512, hint="pixels")
    per_combination = check_int(owner, "per_combination", per_combination, 1, 100)
    biased = check_bool(owner, "biased", biased)
    cache = check_bool(owner, "cache", cache)

    images = image_pool(size, per_combination, seed, cache)
    attrs = pool_attributes(per_combination)
    mapping = correlated_textures(seed)
    pools = image_splits(per_combination, seed)
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    notes = []
    for number, split in enumerate(("train", "valid", "test")):
        split_biased = biased and split != "test"
        wanted = round(n * PAIR_SHARES[split])
        groups = _pair_groups(pools[split], attrs, mapping, split_biased)
        pairs[split] = draw_pairs(
            stream_rng(seed, "pairs", number, int(split_biased)), groups, wanted
        )
        if len(pairs[split][0]) < wanted:
            notes.append(f"{split}: only {len(pairs[split][0])} allowed pairs, not {wanted}")
    i1 = np.concatenate([p[0] for p in pairs.values()])
    i2 = np.concatenate([p[1] for p in pairs.values()])
    counts = np.cumsum([0] + [len(p[0]) for p in pairs.values()])
    splits = {s: np.arange(counts[k], counts[k + 1], dtype=np.int64) for k, s in enumerate(pairs)}
    targets = _targets(i1, i2, attrs, mapping)
    options = {"seed": seed, "n": n, "size": size, "per_combination": per_combination}
    options |= {"biased": biased, "cache": cache}
    synergy = targets["synergy"].values
    rates = {
        s: round(float(synergy[idx].mean()), 4) if idx.size else None for s, idx in splits.items()
    }
    info = _info(
        options,
        mapping,
        {k: len(v) for k, v in pools.items()},
        rates,
        str(cache_path(size, per_combination, seed)) if cache else None,
    )
    if notes:
        info["notes"] = notes
    spec = (3, size, size)
    return MultimodalDataset(
        modalities={m: ModalitySpec(m, "image", spec) for m in ("x1", "x2")},
        arrays={"x1": images[i1], "x2": images[i2]},
        targets=targets,
        splits=splits,
        meta={"image:x1": i1, "image:x2": i2},
        info=info,
        name="trifeatures",
        default_target="shared",
    )
