"""Audio features: log-mel / MFCC shapes and values, resampling, batching of recordings into
padded sequences, argument checks, and data sets built from audio files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import mmfactor as mf
from mmfactor.data.audio import audio_features, from_audio_files, log_mel, mfcc, resample
from mmfactor.errors import InputError

librosa = pytest.importorskip("librosa")


def tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(folder: Path, name: str, signal: np.ndarray, rate: int) -> Path:
    path = folder / name
    soundfile.write(path, signal, rate, subtype="FLOAT")
    return path


def test_shapes_dtypes_and_frame_count() -> None:
    x = tone(440, 0.5, 16000)  # 8000 samples, hop 160: 1 + 8000 // 160 frames (centred)
    feats = log_mel(x, 16000)
    assert feats.shape == (51, 40) and feats.dtype == np.float32 and feats.flags.c_contiguous
    assert mfcc(x, 16000).shape == (51, 13)
    assert mfcc(x, 16000, n_mfcc=20, n_mels=64, hop_ms=20.0).shape == (26, 20)
    assert log_mel(x[:1], 16000).shape == (1, 40)  # a single sample still gives a frame
    assert np.isfinite(feats).all()


def test_log_mel_is_power_to_db_of_librosas_mel_spectrogram_clipped_at_top_db() -> None:
    x = tone(440, 0.3, 8000) + 0.01 * np.random.default_rng(0).normal(size=2400)
    feats = log_mel(x, 8000, n_mels=20, top_db=50.0)
    power = librosa.feature.melspectrogram(
        y=x.astype(np.float32), sr=8000, n_fft=256, win_length=200, hop_length=80, n_mels=20
    )
    np.testing.assert_allclose(feats, librosa.power_to_db(power, top_db=50.0).T, atol=1e-4)
    assert feats.max() - feats.min() <= 50.0 + 1e-4
    unclipped = log_mel(np.zeros(800, np.float32), 8000, top_db=None)
    np.testing.assert_allclose(unclipped, -100.0)  # silence: the 1e-10 power floor


def test_a_pure_tone_peaks_in_its_mel_band() -> None:
    rate, n_mels = 16000, 40
    centres = librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=rate / 2)[1:-1]
    for band in (8, 20, 33):
        feats = log_mel(tone(centres[band], 0.3, rate), rate, n_mels=n_mels)
        assert int(feats[2:-2].mean(0).argmax()) == band  # away from the zero-padded edges
    # fmin / fmax move the bands: the same tone peaks where that filterbank's centre is.
    centres = librosa.mel_frequencies(n_mels + 2, fmin=300.0, fmax=3400.0)[1:-1]
    feats = log_mel(tone(centres[10], 0.3, rate), rate, fmin=300.0, fmax=3400.0)
    assert int(feats.mean(0).argmax()) == 10


def test_resampling_keeps_duration_and_frequency_and_scales_the_sample_count() -> None:
    x = tone(1000, 1.0, 16000)
    y = resample(x, 16000, 8000)
    assert y.shape == (8000,) and y.dtype == np.float32
    assert resample(x[:1001], 16000, 8000).shape == (501,)  # ceil(1001 / 2)
    assert np.array_equal(resample(x, 16000, 16000), x)  # equal rates: unchanged
    # Frames are in milliseconds: one second is 101 frames at either rate; 40 ms hops, 26.
    a, b = log_mel(x, 16000, fmax=4000.0), log_mel(y, 8000)
    assert a.shape == b.shape == (101, 40)
    assert log_mel(y, 8000, win_ms=40.0, hop_ms=40.0).shape == (26, 40)
    assert a.mean(0).argmax() == b.mean(0).argmax()  # the tone stays in its band
    with pytest.raises(InputError, match="target_rate"):
        resample(x, 16000, 0)


def test_audio_features_pads_batches_and_truncates(tmp_path: Path) -> None:
    signals = [tone(300, 0.1, 8000), tone(600, 0.25, 8000), tone(900, 0.05, 8000)]
    paths = [write(tmp_path, f"{i}.wav", s, 8000) for i, s in enumerate(signals)]
    feats, lengths = audio_features(paths, n_mels=24)
    assert feats.shape == (3, 26, 24) and feats.dtype == np.float32
    assert lengths.dtype == np.int64 and lengths.tolist() == [11, 26, 6]
    for i, s in enumerate(signals):
        np.testing.assert_allclose(feats[i, : lengths[i]], log_mel(s, 8000, n_mels=24), atol=1e-5)
        assert (feats[i, lengths[i] :] == 0).all()
    coefficients, _ = audio_features([str(p) for p in paths], features="mfcc", n_mfcc=7)
    assert coefficients.shape == (3, 26, 7)
    short, short_lengths = audio_features(paths, max_frames=10)
    assert short.shape == (3, 10, 40) and short_lengths.tolist() == [10, 10, 6]
    np.testing.assert_array_equal(short[1], log_mel(signals[1], 8000)[:10])


def test_rates_must_match_unless_resampled(tmp_path: Path) -> None:
    a = write(tmp_path, "a.wav", tone(440, 0.2, 8000), 8000)
    b = write(tmp_path, "b.wav", tone(440, 0.2, 16000), 16000)
    with pytest.raises(InputError, match=r"b\.wav: sampled at 16000 Hz, but .*a\.wav at 8000"):
        audio_features([a, b])
    feats, lengths = audio_features([a, b], rate=8000)
    assert lengths.tolist() == [21, 21]  # the same duration: the same frames
    np.testing.assert_allclose(feats[0, 2:-2], feats[1, 2:-2], atol=1.0)  # dB, off the edges
    with pytest.raises(InputError, match="missing.wav"):
        audio_features([a, tmp_path / "missing.wav"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_mels": 0}, "n_mels must be an integer >= 1"),
        ({"n_mels": 4.0}, "n_mels"),
        ({"win_ms": 5.0}, "win_ms must be >= hop_ms"),
        ({"hop_ms": 0}, "hop_ms must be a number > 0"),
        ({"hop_ms": 0.01, "win_ms": 0.01}, "hop_ms must span at least one sample"),
        ({"fmax": 9000.0}, r"fmax must be .*rate / 2 = 8000"),
        ({"fmin": 500.0, "fmax": 400.0}, "fmax"),
        ({"fmin": -1.0}, "fmin"),
        ({"top_db": 0}, "top_db"),
    ],
)
def test_bad_feature_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        log_mel(tone(440, 0.1, 16000), 16000, **options)


def test_bad_arguments(tmp_path: Path) -> None:
    x = tone(440, 0.1, 16000)
    with pytest.raises(InputError, match="n_mfcc"):
        mfcc(x, 16000, n_mfcc=41)
    with pytest.raises(InputError, match="rate"):
        log_mel(x, 0)
    with pytest.raises(InputError, match="1-D"):
        log_mel(np.zeros((2, 100)), 16000)
    with pytest.raises(InputError, match="not finite"):
        log_mel(np.full(100, np.nan), 16000)
    path = write(tmp_path, "a.wav", x, 16000)
    with pytest.raises(InputError, match="unknown option.*n_mfcc"):
        audio_features([path], n_mfcc=13)
    with pytest.raises(InputError, match="features must be one of log-mel, mfcc"):
        audio_features([path], features="spectrogram")
    with pytest.raises(InputError, match="list of audio file paths"):
        audio_features(str(path))
    with pytest.raises(InputError, match="empty"):
        audio_features([])
    with pytest.raises(InputError, match="max_frames"):
        audio_features([path], max_frames=0)


def test_from_audio_files_builds_a_sequence_modality_beside_the_others(tmp_path: Path) -> None:
    paths = [
        write(tmp_path, f"{i}.wav", tone(200 * (i + 1), 0.05 * (i + 1), 8000), 8000)
        for i in range(6)
    ]
    other = {"text": np.arange(12.0).reshape(6, 2), "video": np.ones((6, 4, 3))}
    data = mf.datasets.from_audio_files(
        paths,
        modality="speech",
        other=other,
        y=np.array([0, 1] * 3),
        lengths={"video": np.array([1, 2, 3, 4, 4, 4])},
        splits=np.array(["train"] * 4 + ["valid", "test"]),
        features="mfcc",
        n_mfcc=5,
    )
    assert data.modality_names == ["speech", "text", "video"]
    assert data.modalities["speech"] == mf.datasets.ModalitySpec("speech", "sequence", (5,))
    assert data.arrays["speech"].shape == (6, 31, 5)
    assert data.lengths["speech"].tolist() == [6, 11, 16, 21, 26, 31]
    assert data.lengths["video"].tolist() == [1, 2, 3, 4, 4, 4]
    assert data.target().classes == ("0", "1") and data.splits["valid"].tolist() == [4]
    # Batches carry the step masks the sequence augmentations take.
    loader = mf.datasets.make_loader(data, data.indices("train"), batch_size=4)
    batch = next(iter(loader))
    assert batch.x["speech"].shape == (4, 21, 5)
    assert batch.mask["speech"].sum(1).tolist() == [6, 11, 16, 21]
    with pytest.raises(InputError, match="'speech'"):
        from_audio_files(paths, modality="speech", other={"speech": np.zeros((6, 2))})


def test_importing_the_module_does_not_import_librosa() -> None:
    code = (
        "import sys, mmfactor.data.audio; print('librosa' in sys.modules, 'numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
