"""Build ``src/mmfactor/data/files/av_digits.npz`` (the audio of the ``av-digits`` data set)
from the Free Spoken Digit Dataset's WAV files.

Usage::

    python tools/build_av_digits.py [--source ../shared/data/fsdd] [--out src/mmfactor/data/files]

Needs the ``audio`` extra (soundfile, librosa). Every recording listed in the source's
``SHA256SUMS`` is checked against its SHA-256 before it is read, and the folder must hold
exactly the listed files. Each recording becomes log-mel frames
(:func:`mmfactor.data.audio.log_mel`: 40 bands, 25 ms windows, 10 ms hop, at FSDD's 8 kHz),
in dB relative to the recording's peak, clipped at -80 dB and quantised to 8 bits
(``value / 255 * 80 - 80`` dB). Written (``np.savez_compressed``, no pickled objects):

- ``mel`` (total frames, 40) uint8, the recordings' frames one after another, and
  ``offsets`` (3001,) int64: recording ``i`` is ``mel[offsets[i]:offsets[i + 1]]``;
- ``digit``, ``speaker``, ``repetition`` (3000,) int64, ``names`` (3000,) the file stems,
  ``speakers`` (6,) and ``accents`` (6,) strings (from ``speakers.csv``);
- ``settings``: the feature settings as JSON; ``sums_sha256``: the SHA-256 of ``SHA256SUMS``.

FSDD (Z. Jackson et al.) is CC BY-SA 4.0: the features derived here are shared under the same
licence (ShareAlike), with the attribution in ``mmfactor.data.av_digits``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from mmfactor.data.audio import log_mel, read_audio

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"n_mels": 40, "win_ms": 25.0, "hop_ms": 10.0}
DB_FLOOR = -80.0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checked_files(source: Path) -> list[Path]:
    """The recordings listed in ``SHA256SUMS``, each checked; exits naming a bad file."""
    folder = source / "recordings"
    listed: dict[str, str] = {}
    for line in (source / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            listed[name] = digest
    present = {p.name for p in folder.glob("*.wav")}
    if present != set(listed):
        extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
        raise SystemExit(f"{folder}: extra files {extra[:3]}, missing files {missing[:3]}")
    for name, digest in listed.items():
        if _sha256(folder / name) != digest:
            raise SystemExit(f"{folder / name}: SHA-256 differs from SHA256SUMS")
    return [folder / name for name in listed]


def _quantised(db: np.ndarray) -> np.ndarray:
    relative = np.clip(db - db.max(), DB_FLOOR, 0.0)
    return np.rint((relative - DB_FLOOR) / -DB_FLOOR * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared/data/fsdd")
    parser.add_argument("--out", type=Path, default=ROOT / "src/mmfactor/data/files")
    args = parser.parse_args()
    start = time.perf_counter()
    with (args.source / "speakers.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    speakers = [r["speaker"] for r in rows]
    accents = [r["accent"] for r in rows]
    files = _checked_files(args.source)
    checked = time.perf_counter()

    def key(path: Path) -> tuple[int, int, int]:
        digit, speaker, repetition = path.stem.split("_")
        return speakers.index(speaker), int(digit), int(repetition)

    files.sort(key=key)
    labels = np.array([key(p) for p in files], dtype=np.int64)
    frames, rate = [], None
    for path in files:
        signal, file_rate = read_audio(path)
        if rate is None:
            rate = file_rate
        elif file_rate != rate:
            raise SystemExit(f"{path}: {file_rate} Hz, the others {rate} Hz")
        frames.append(_quantised(log_mel(signal, file_rate, **SETTINGS)))
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    import librosa  # the version goes into the settings

    settings = {
        **SETTINGS,
        "rate": rate,
        "scale": "dB relative to the recording's peak, clipped at -80 dB; value / 255 * 80 - 80",
        "function": "mmfactor.data.audio.log_mel",
        "librosa": librosa.__version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "av_digits.npz"
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        mel=np.concatenate(frames),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        speaker=labels[:, 0],
        digit=labels[:, 1],
        repetition=labels[:, 2],
        names=np.array([p.stem for p in files]),
        speakers=np.array(speakers),
        accents=np.array(accents),
        settings=np.array(json.dumps(settings)),
        sums_sha256=np.array(_sha256(args.source / "SHA256SUMS")),
    )
    tmp.replace(out)  # atomic: a killed build leaves the old file
    done = time.perf_counter()
    print(
        f"{out}: {len(files)} recordings, {lengths.sum()} frames (longest {lengths.max()}, "
        f"median {int(np.median(lengths))}), {out.stat().st_size / 1e6:.2f} MB; checksums "
        f"{checked - start:.1f} s, features {done - checked:.1f} s"
    )


if __name__ == "__main__":
    main()
