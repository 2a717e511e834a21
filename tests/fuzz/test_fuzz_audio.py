"""Fuzzed audio files: WAV recordings (16-bit PCM mono as the Free Spoken Digit Dataset's,
32-bit float stereo) and a FLAC one, mutated in their bytes and in their header's size
fields. Every case must read (a finite mono float32 signal and a positive rate) or fail
with an ``InputError`` of one line naming the file; never another exception, a hang or a
memory blow-up (the sandbox caps both)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.mutate import FUZZ, HUGE_ROWS, apply_bytes, byte_mutations
from tests.fuzz.sandbox import Sandbox, check

from mmfactor.data.audio import read_audio
from mmfactor.errors import InputError


def _encode(signal: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, signal, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _seeds() -> dict[str, bytes]:
    t = np.arange(2000) / 8000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, -tone], 1)
    return {
        "pcm16": _encode(tone, 8000, "WAV", "PCM_16"),
        "float_stereo": _encode(stereo, 16000, "WAV", "FLOAT"),
        "flac": _encode(tone, 8000, "FLAC", "PCM_16"),
    }


SEEDS = _seeds()
SUFFIX = {"pcm16": ".wav", "float_stereo": ".wav", "flac": ".flac"}


def _chunk_size_offsets(data: bytes) -> list[int]:
    """Where a RIFF file stores sizes: the RIFF size, then each chunk's (fmt, data, ...)."""
    if data[:4] != b"RIFF":
        return []
    offsets, at = [4], 12
    while at + 8 <= len(data):
        offsets.append(at + 4)
        (size,) = struct.unpack_from("<I", data, at + 4)
        at += 8 + size + (size & 1)
    return offsets


@FUZZ
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    mutations=byte_mutations(),
    claim=st.one_of(st.none(), st.tuples(st.integers(0, 8), st.sampled_from(HUGE_ROWS))),
)
def test_audio(sandbox: Sandbox, tmp_path_factory, seed, mutations, claim):
    data = SEEDS[seed]
    if claim is not None:  # a size field claiming far more than the file holds
        offsets = _chunk_size_offsets(data)
        if offsets:
            at = offsets[claim[0] % len(offsets)]
            data = data[:at] + struct.pack("<I", min(claim[1], 2**32 - 1)) + data[at + 4 :]
    data = apply_bytes(data, mutations)
    path = tmp_path_factory.mktemp("audio") / f"rec{SUFFIX[seed]}"
    path.write_bytes(data)
    check(sandbox.run("audio", path=str(path)), path)


def test_seeds_read(sandbox: Sandbox, tmp_path):
    for name, data in SEEDS.items():
        path = tmp_path / f"{name}{SUFFIX[name]}"
        path.write_bytes(data)
        outcome = sandbox.run("audio", path=str(path))
        assert outcome.kind == "ok", outcome.detail
        signal, rate = read_audio(path)
        assert signal.dtype == np.float32 and signal.shape == (2000,)
        assert rate == (16000 if name == "float_stereo" else 8000)
        # Stereo channels of opposite sign average to silence; PCM keeps the tone to 1 LSB.
        expected = (
            0.0
            if name == "float_stereo"
            else 0.5 * np.sin(np.arange(2000) / 8000 * 2 * np.pi * 440)
        )
        np.testing.assert_allclose(signal, expected, atol=2 / 2**15)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an audio file"),
        (b"RIFF\x00\x00\x00\x00WAVE", "not an audio file"),
        (b"plain text, not sound\n" * 4, "not an audio file"),
    ],
)
def test_bad_files_are_input_errors(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_audio(path)
    assert str(path) in str(info.value) and len(str(info.value).splitlines()) == 1
    with pytest.raises(InputError, match="no such audio file"):
        read_audio(tmp_path / "missing.wav")


def test_non_finite_float_samples_are_refused(tmp_path):
    path = tmp_path / "nan.wav"
    signal = np.zeros(100)
    signal[10] = np.nan
    soundfile.write(path, signal, 8000, subtype="FLOAT")
    with pytest.raises(InputError, match="not finite"):
        read_audio(path)


def test_header_claiming_more_frames_than_the_file_holds(tmp_path):
    data = SEEDS["pcm16"]
    offsets = _chunk_size_offsets(data)
    path = Path(tmp_path / "claims.wav")
    for at in offsets:
        path.write_bytes(data[:at] + struct.pack("<I", 2**32 - 2) + data[at + 4 :])
        try:
            signal, _ = read_audio(path)  # libsndfile may clip the claim to the file
        except InputError as exc:
            assert str(path) in str(exc)
        else:
            assert len(signal) <= 2000
