"""av-digits: FSDD's recordings (official test split, a speaker-balanced validation draw)
paired with UCI digit images of the same digit and split; targets by construction."""

import numpy as np
import pytest

import mmfactor as mf
from mmfactor.cli import main
from mmfactor.data.av_digits import GROUP_ONE
from mmfactor.data.embedded import read_embedded
from mmfactor.errors import InputError


@pytest.fixture(scope="module")
def data() -> mf.MultimodalDataset:
    return mf.datasets.load("av-digits")


def test_splits_follow_fsdd_and_the_validation_draw_is_speaker_balanced(data) -> None:
    repetition = data.meta["repetition"]
    assert {s: len(v) for s, v in data.splits.items()} == {"train": 2400, "valid": 300, "test": 300}
    assert (repetition[data.splits["test"]] < 5).all()
    assert (repetition[np.concatenate([data.splits["train"], data.splits["valid"]])] >= 5).all()
    speaker, digit = data.target("speaker").values, data.target("digit").values
    valid = data.splits["valid"]
    cells = np.bincount(speaker[valid] * 10 + digit[valid], minlength=60)
    assert (cells == 5).all()  # 5 repetitions of every speaker x digit


def test_images_match_the_digit_and_stay_in_one_split(data) -> None:
    uci_digit = read_embedded("uci_mfeat")["digit"]
    image, digit = data.meta["image"], data.target("digit").values
    assert (uci_digit[image] == digit).all()
    used = [set(image[idx]) for idx in data.splits.values()]
    assert not (used[0] & used[1] or used[0] & used[2] or used[1] & used[2])
    for idx in data.splits.values():  # each image of a split x digit used floor/ceil times
        for d in range(10):
            counts = np.unique(image[idx][digit[idx] == d], return_counts=True)[1]
            assert counts.max() - counts.min() <= 1


def test_targets_are_defined_as_documented(data) -> None:
    pixels = read_embedded("uci_mfeat")["pix"]
    image, digit = data.meta["image"], data.target("digit").values
    ink_sum = pixels[image].sum(1)
    ink = data.target("ink").values
    for d in range(10):  # more ink than the digit's median image <=> ink == 1
        rows = digit == d
        assert ink_sum[rows][ink[rows] == 1].min() > ink_sum[rows][ink[rows] == 0].max()
    names = np.array(data.target("speaker").classes)
    group = np.isin(names[data.target("speaker").values], GROUP_ONE)
    assert (data.target("synergy").values == (ink ^ group)).all()
    assert 0.45 < data.target("synergy").values.mean() < 0.55
    for alias, name in (("shared", "digit"), ("unique:audio", "speaker"), ("unique:image", "ink")):
        assert (data.target(alias).values == data.target(name).values).all()


def test_audio_frames_and_lengths(data) -> None:
    audio, lengths = data.arrays["audio"], data.lengths["audio"]
    assert audio.shape == (3000, lengths.max(), 40) and audio.dtype == np.float32
    assert 0 <= audio.min() and audio.max() <= 1
    step = np.arange(audio.shape[1])
    assert not audio[step[None, :] >= lengths[:, None]].any()  # padding is zero
    # every recording reaches its own peak (1.0 = 0 dB relative to the peak)
    assert np.allclose(audio.max((1, 2)), 1.0)
    short = mf.datasets.load("av-digits", max_frames=50)
    assert short.arrays["audio"].shape[1] == 50
    assert (short.lengths["audio"] == np.minimum(lengths, 50)).all()
    np.testing.assert_array_equal(short.arrays["audio"][:, :50], audio[:, :50])


def test_seeded_matching_and_bad_options(data) -> None:
    again = mf.datasets.load("av-digits")
    np.testing.assert_array_equal(again.meta["image"], data.meta["image"])
    other = mf.datasets.load("av-digits", seed=1)
    assert (other.meta["image"] != data.meta["image"]).any()
    with pytest.raises(InputError, match="valid"):
        mf.datasets.load("av-digits", valid=45)
    with pytest.raises(InputError, match="max_frames"):
        mf.datasets.load("av-digits", max_frames=0)


def test_inspect_names_the_licence_and_attribution(capsys) -> None:
    assert main(["data", "inspect", "av-digits"]) == 0
    text = capsys.readouterr().out
    assert "CC BY-SA 4.0" in text and "ShareAlike" in text and "FSDD" in text
