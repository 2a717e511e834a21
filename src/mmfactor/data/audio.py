"""Audio files: read a recording (WAV, FLAC, OGG and the other formats libsndfile reads)
into a mono float32 signal and its sample rate, resample it, and turn it into a sequence of
log-mel or MFCC frames; :func:`from_audio_files` builds a data set from recordings.

Reading goes through `soundfile <https://python-soundfile.readthedocs.io>`_ (libsndfile), the
extra ``mmfactor[audio]``. Every problem with a file, from a missing file to a header that
claims more samples than the file holds, is an :class:`~mmfactor.errors.InputError` of one
line naming the file: nothing is allocated from a header's word before that word is checked
against the file's size.

Features (short-time Fourier transform, mel filterbank, DCT) and resampling come from
`librosa <https://librosa.org>`_, in the same extra; it (and numba under it) is imported on
first use, so importing this module stays cheap. Features are time-major, ``(frames, F)``,
as the package's sequence modalities are ``(N, T, F)`` with per-row lengths.

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
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmfactor.checks import check_choice, check_float, check_int
from mmfactor.errors import InputError

if TYPE_CHECKING:
    from mmfactor.data.dataset import MultimodalDataset

__all__ = [
    "FEATURES",
    "audio_features",
    "from_audio_files",
    "log_mel",
    "mfcc",
    "read_audio",
    "resample",
]

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


# --- resampling and features (librosa) ---------------------------------------------------------

#: The features :func:`audio_features` computes, each with the options it takes.
FEATURES: dict[str, tuple[str, ...]] = {
    "log-mel": ("n_mels", "win_ms", "hop_ms", "fmin", "fmax", "top_db"),
    "mfcc": ("n_mfcc", "n_mels", "win_ms", "hop_ms", "fmin", "fmax", "top_db"),
}

#: librosa's resampler: soxr's high-quality mode. soxr is a required dependency of librosa
#: since 0.10 (it is librosa's default), so it needs no package beyond librosa's own; the
#: ``kaiser_*`` modes would need resampy, an optional extra that librosa does not install.
RES_TYPE = "soxr_hq"

#: Power floor before the logarithm: ``10 log10(max(power, AMIN))`` dB (librosa's default).
AMIN = 1e-10


def _librosa() -> Any:
    try:
        import librosa
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise InputError(
            "audio features and resampling need librosa: pip install 'mmfactor[audio]'"
        ) from exc
    return librosa


def _signal(owner: str, signal: Any) -> np.ndarray:
    """``signal`` as a finite, non-empty 1-D float32 array."""
    try:
        x = np.asarray(signal, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{owner}: signal must be a 1-D array of samples ({exc})") from exc
    if x.ndim != 1 or x.size == 0:
        raise InputError(
            f"{owner}: signal must be a non-empty 1-D array of samples (mono), got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise InputError(f"{owner}: signal holds samples that are not finite (NaN or infinite)")
    return x


def _mel_options(
    owner: str,
    rate: Any,
    n_mels: Any,
    win_ms: Any,
    hop_ms: Any,
    fmin: Any,
    fmax: Any,
    top_db: Any,
) -> tuple[dict[str, Any], float | None]:
    """Checked options, as librosa's ``melspectrogram`` keywords, and ``top_db``."""
    rate = check_int(owner, "rate", rate, 1, hint="samples per second")
    n_mels = check_int(owner, "n_mels", n_mels, 1)
    win_ms = check_float(owner, "win_ms", win_ms, 0, min_open=True)
    hop_ms = check_float(owner, "hop_ms", hop_ms, 0, min_open=True)
    if win_ms < hop_ms:
        raise InputError(
            f"{owner}: win_ms must be >= hop_ms (frames would skip samples), got "
            f"win_ms={win_ms:g} < hop_ms={hop_ms:g}"
        )
    hop = round(hop_ms * rate / 1000)
    if hop < 1:
        raise InputError(
            f"{owner}: hop_ms must span at least one sample at {rate} Hz "
            f"(>= {1000 / rate:g} ms), got {hop_ms:g}"
        )
    win = round(win_ms * rate / 1000)  # >= hop: rounding is monotone
    nyquist = rate / 2
    fmin = check_float(owner, "fmin", fmin, 0, nyquist, max_open=True, hint="Hz")
    if fmax is None:
        fmax = nyquist
    else:
        fmax = check_float(
            owner,
            "fmax",
            fmax,
            fmin,
            nyquist,
            min_open=True,
            hint=f"Hz, above fmin and at most rate / 2 = {nyquist:g} Hz at {rate} Hz",
        )
    if top_db is not None:
        top_db = check_float(owner, "top_db", top_db, 0, min_open=True, hint="dB, or None")
    n_fft = 1 << (win - 1).bit_length()  # the window zero-padded to a power of two
    options = {
        "sr": rate,
        "n_fft": n_fft,
        "win_length": win,
        "hop_length": hop,
        "n_mels": n_mels,
        "fmin": fmin,
        "fmax": fmax,
    }
    return options, top_db


def _log_mel(x: np.ndarray, options: Mapping[str, Any], top_db: float | None) -> np.ndarray:
    librosa = _librosa()
    with warnings.catch_warnings():
        # A recording shorter than one FFT is zero-padded, as documented: no warning per file.
        warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large", category=UserWarning)
        power = librosa.feature.melspectrogram(
            y=x, window="hann", center=True, pad_mode="constant", power=2.0, **options
        )  # (n_mels, frames); Slaney mel scale and area-normalised filters (librosa's defaults)
    db = librosa.power_to_db(power, ref=1.0, amin=AMIN, top_db=top_db)
    return np.ascontiguousarray(db.T, dtype=np.float32)


def resample(signal: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """``signal`` sampled at ``rate`` Hz resampled to ``target_rate`` Hz, float32.

    librosa's ``resample`` with ``res_type="soxr_hq"`` (:data:`RES_TYPE`): soxr is one of
    librosa's required dependencies (and its default resampler since 0.10), so no further
    package is needed, and it band-limits before decimating. The output has
    ``ceil(len(signal) * target_rate / rate)`` samples; at equal rates the signal comes back
    as it is (as float32). Shapes: ``(n,)`` -> ``(n',)``.

    Example:
        >>> resample(np.zeros(16000, np.float32), 16000, 8000).shape
        (8000,)
    """
    x = _signal("resample", signal)
    rate = check_int("resample", "rate", rate, 1, hint="Hz")
    target_rate = check_int("resample", "target_rate", target_rate, 1, hint="Hz")
    if rate == target_rate:
        return x
    out = _librosa().resample(x, orig_sr=rate, target_sr=target_rate, res_type=RES_TYPE)
    return np.ascontiguousarray(out, dtype=np.float32)


def log_mel(
    signal: np.ndarray,
    rate: int,
    *,
    n_mels: int = 40,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Log-mel spectrogram of ``signal`` (sampled at ``rate`` Hz), time-major, in dB.

    Frames of ``win_ms`` (Hann window, zero-padded to the next power of two for the FFT) every
    ``hop_ms``; the power spectrum (``|STFT|^2``) goes through librosa's ``n_mels`` mel
    filters between ``fmin`` and ``fmax`` (default ``rate / 2``; Slaney's mel scale,
    area-normalised filters), and then ``librosa.power_to_db`` with ``ref=1``: ``10
    log10(max(power, 1e-10))`` dB on an absolute scale (comparable across recordings), values
    below the recording's maximum minus ``top_db`` raised to that level (``top_db=None``:
    only the 1e-10 floor, -100 dB). Frames are centred (the signal is zero-padded by half an
    FFT at both ends; a signal shorter than one FFT is zero-padded too), so there are ``1 +
    len(signal) // hop`` of them, ``hop = round(hop_ms * rate / 1000)`` samples.

    Shapes: ``(n,)`` -> ``(frames, n_mels)`` float32.

    Raises:
        InputError: an option out of range (named), ``win_ms < hop_ms``, ``fmax`` above
            ``rate / 2``, or a signal that is empty, not 1-D or not finite.

    Example:
        >>> t = np.arange(16000) / 16000
        >>> log_mel(np.sin(2 * np.pi * 1000 * t), 16000).shape
        (101, 40)
    """
    options, top_db = _mel_options("log_mel", rate, n_mels, win_ms, hop_ms, fmin, fmax, top_db)
    return _log_mel(_signal("log_mel", signal), options, top_db)


def mfcc(
    signal: np.ndarray,
    rate: int,
    *,
    n_mfcc: int = 13,
    n_mels: int = 40,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients: the orthonormal DCT-II (librosa's ``mfcc``, no
    liftering) of each frame of :func:`log_mel` (same options), its first ``n_mfcc``
    coefficients (``n_mfcc <= n_mels``; coefficient 0 follows the frame's log energy).

    Shapes: ``(n,)`` -> ``(frames, n_mfcc)`` float32.

    Example:
        >>> mfcc(np.random.default_rng(0).normal(size=4000), 8000).shape  # 0.5 s
        (51, 13)
    """
    options, top_db = _mel_options("mfcc", rate, n_mels, win_ms, hop_ms, fmin, fmax, top_db)
    n_mfcc = check_int("mfcc", "n_mfcc", n_mfcc, 1, options["n_mels"], hint="at most n_mels")
    db = _log_mel(_signal("mfcc", signal), options, top_db)
    coefficients = _librosa().feature.mfcc(S=db.T, n_mfcc=n_mfcc, dct_type=2, norm="ortho")
    return np.ascontiguousarray(coefficients.T, dtype=np.float32)


def _paths(owner: str, paths: Any) -> list[Any]:
    if isinstance(paths, str | bytes | os.PathLike) or not hasattr(paths, "__iter__"):
        raise InputError(
            f"{owner}: paths must be a list of audio file paths, got {type(paths).__name__}"
        )
    out = list(paths)
    if not out:
        raise InputError(f"{owner}: paths is empty; give at least one audio file")
    return out


def audio_features(
    paths: Sequence[str | os.PathLike[str]],
    *,
    rate: int | None = None,
    features: str = "log-mel",
    max_frames: int | None = None,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of each recording in ``paths``, padded into one batch of sequences.

    Each file is read (:func:`read_audio`, channels averaged), resampled to ``rate`` Hz when
    given (:func:`resample`; without ``rate`` every file must have the first one's rate),
    and turned into ``features``: ``"log-mel"`` (:func:`log_mel`) or ``"mfcc"``
    (:func:`mfcc`), with ``options`` (:data:`FEATURES` lists those each takes). With
    ``max_frames`` a recording keeps only its first ``max_frames`` frames (its length is
    truncated too). Rows are zero-padded at the end to the longest.

    Shapes: ``N`` paths -> features ``(N, T_max, F)`` float32 and lengths ``(N,)`` int64,
    ``F`` = ``n_mels`` or ``n_mfcc``.

    Raises:
        InputError: a file that cannot be read (the message names it), a file whose rate
            differs from the first one's when ``rate`` is not given (named), an unknown or
            out-of-range option, or an empty ``paths``.
    """
    owner = "audio_features"
    paths = _paths(owner, paths)
    check_choice(owner, "features", features, FEATURES)
    unknown = sorted(set(options) - set(FEATURES[features]))
    if unknown:
        raise InputError(
            f"{owner}: unknown option(s) {', '.join(unknown)} for features={features!r}; "
            f"it takes {', '.join(FEATURES[features])}"
        )
    if rate is not None:
        rate = check_int(owner, "rate", rate, 1, hint="Hz, or None")
    if max_frames is not None:
        max_frames = check_int(owner, "max_frames", max_frames, 1, hint="or None")
    compute = log_mel if features == "log-mel" else mfcc
    rows: list[np.ndarray] = []
    first: tuple[Any, int] | None = None
    for path in paths:
        signal, file_rate = read_audio(path)
        if rate is not None:
            signal, file_rate = resample(signal, file_rate, rate), rate
        elif first is None:
            first = (path, file_rate)
        elif file_rate != first[1]:
            raise InputError(
                f"{path}: sampled at {file_rate} Hz, but {first[0]} at {first[1]} Hz; pass "
                "rate= to resample every recording to one rate"
            )
        rows.append(compute(signal, file_rate, **options)[:max_frames])
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.zeros((len(rows), int(lengths.max()), rows[0].shape[1]), dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, lengths


def from_audio_files(
    audio: Sequence[str | os.PathLike[str]],
    *,
    modality: str = "audio",
    other: Mapping[str, np.ndarray] | None = None,
    y: np.ndarray | Sequence[Any] | None = None,
    targets: Mapping[str, np.ndarray] | None = None,
    target_kinds: Mapping[str, str] | None = None,
    splits: Mapping[str, np.ndarray] | np.ndarray | None = None,
    present: Mapping[str, np.ndarray] | None = None,
    lengths: Mapping[str, np.ndarray] | None = None,
    kinds: Mapping[str, str] | None = None,
    rate: int | None = None,
    features: str = "log-mel",
    max_frames: int | None = None,
    seed: int = 0,
    name: str = "audio",
    **feature_options: Any,
) -> MultimodalDataset:
    """A data set whose modality ``modality`` is the features of the recordings ``audio``
    (one file per sample), a ``sequence`` ``(N, T_max, F)`` with its per-sample lengths,
    alongside the array modalities in ``other``.

    The audio goes through :func:`audio_features` (``rate``, ``features``, ``max_frames``
    and ``feature_options`` such as ``n_mels`` or ``hop_ms``); everything else is
    :func:`~mmfactor.data.arrays.from_arrays`'s (``lengths`` and ``kinds`` then concern the
    modalities in ``other``; ``present`` may flag the audio too).

    Example:
        >>> import numpy as np, soundfile, tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> paths = [os.path.join(folder, f"{k}.wav") for k in range(3)]
        >>> for k, path in enumerate(paths):  # 0.1 s, 0.2 s and 0.3 s tones at 16 kHz
        ...     soundfile.write(path, np.sin(np.arange(1600 * (k + 1)) / (k + 2)), 16000)
        >>> data = from_audio_files(paths, other={"meta": np.eye(3)}, y=[0, 1, 0],
        ...                         splits=np.array(["train", "valid", "test"]), n_mels=20)
        >>> data.modalities["audio"], data.lengths["audio"].tolist()
        (ModalitySpec(name='audio', kind='sequence', shape=(20,)), [11, 21, 31])
    """
    from mmfactor.data.arrays import from_arrays

    owner = "from_audio_files"
    if not isinstance(modality, str) or not modality:
        raise InputError(f"{owner}: modality must be a non-empty name, got {modality!r}")
    other = dict(other or {})
    for option, given in (("other", other), ("lengths", lengths), ("kinds", kinds)):
        if given and modality in given:
            raise InputError(
                f"{owner}: {option} names {modality!r}, the audio modality's own name; "
                "give the audio another name with modality="
            )
    x, audio_lengths = audio_features(
        audio, rate=rate, features=features, max_frames=max_frames, **feature_options
    )
    return from_arrays(
        {modality: x, **other},
        None if y is None else np.asarray(y),
        targets=targets,
        target_kinds=target_kinds,
        splits=splits,
        present=present,
        lengths={modality: audio_lengths, **(lengths or {})},
        kinds={modality: "sequence", **(kinds or {})},
        seed=seed,
        name=name,
    )
