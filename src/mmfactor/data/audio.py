"""Audio files: read a recording (WAV, FLAC, OGG and the other formats libsndfile reads)
into a mono float32 signal and its sample rate.

Reading goes through `soundfile <https://python-soundfile.readthedocs.io>`_ (libsndfile), the
extra ``mmfactor[audio]``. Every problem with a file, from a missing file to a header that
claims more samples than the file holds, is an :class:`~mmfactor.errors.InputError` of one
line naming the file: nothing is allocated from a header's word before that word is checked
against the file's size.

Example:
    >>> import numpy as np, soundfile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> soundfile.write(path, np.sin(np.arange(8000) / 5.0), 8000, subtype="PCM_16")
    >>> signal, rate = read_audio(path)
    >>> signal.shape, signal.dtype, rate
    ((8000,), dtype('float32'), 8000)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mmfactor.errors import InputError

__all__ = ["read_audio"]

#: Output samples a file may claim per byte it holds. Uncompressed formats hold one sample in
#: 1 to 8 bytes; lossless and lossy compression reach a few samples per byte on speech and
#: far more on silence, so the limit is generous: it only stops a header claiming, say,
#: 2**40 frames from becoming an allocation.
MAX_SAMPLES_PER_BYTE = 64


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise InputError(
            "reading audio files needs the soundfile package: pip install 'mmfactor[audio]'"
        ) from exc
    return soundfile


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read the recording at ``path``: its samples, the channels averaged to one, as float32 in
    ``[-1, 1]`` for integer formats, and its sample rate in Hz.

    Shapes: ``(frames,)``.

    Raises:
        InputError: the file is missing, is not audio libsndfile reads, holds no samples, has
            a header whose frame count the file's size cannot hold, or holds samples that are
            not finite (floating-point formats); the message is one line naming the file.
    """
    sf = _soundfile()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001  (libsndfile's errors have no common class)
        raise InputError(
            f"{path}: not an audio file soundfile can read ({_one_line(exc)})"
        ) from exc
    if info.samplerate <= 0 or info.channels <= 0:
        raise InputError(f"{path}: header gives {info.samplerate} Hz and {info.channels} channels")
    if info.frames <= 0:
        raise InputError(f"{path}: holds no audio frames")
    size = path.stat().st_size
    if info.frames * info.channels > MAX_SAMPLES_PER_BYTE * size:
        raise InputError(
            f"{path}: header claims {info.frames} frames of {info.channels} channels, more "
            f"than a {size}-byte file can hold"
        )
    try:
        samples = sf.read(str(path), dtype="float32", always_2d=True)[0]
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: cannot read its samples ({_one_line(exc)})") from exc
    if samples.shape[0] == 0:
        raise InputError(f"{path}: holds no audio frames")
    if not np.isfinite(samples).all():
        raise InputError(f"{path}: holds samples that are not finite (NaN or infinite)")
    return samples.mean(axis=1, dtype=np.float32), int(info.samplerate)
