"""The PID of Trifeatures' targets, from the images through their patch features: each
target's dominant part is the one the data set was designed to have."""

import numpy as np
import pytest

import mmfactor as mf
from mmfactor.encoders.patches import PatchFeatures, with_patch_features
from mmfactor.errors import InputError

DESIGNED = {
    "shared": "redundancy",  # the shape both images show
    "unique:x1": "unique:x1",  # each image's own texture
    "unique:x2": "unique:x2",
    "colour:x1": "unique:x1",
    "synergy": "synergy",  # colour of x1 with texture of x2
}


@pytest.fixture(scope="module")
def trifeatures(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMFACTOR_CACHE_DIR", str(cache))
        data = mf.datasets.load("trifeatures", size=32, n=4000)
    return data, with_patch_features(data, rows=np.arange(len(data)))


@pytest.mark.slow
@pytest.mark.parametrize("target", DESIGNED)
def test_each_target_s_dominant_part_is_the_designed_one(trifeatures, target):
    data, features = trifeatures
    pid = mf.diagnostics.information_decomposition(features, target, shuffles=3)
    assert pid.dominant == DESIGNED[target], pid.parts


@pytest.mark.slow
def test_the_decomposition_reads_images_through_patch_features(trifeatures):
    """By default the decomposition reads images through patch features fitted on the rows
    used; the flattened pixels, linear in position, lose most of the shape's redundancy."""
    data, _ = trifeatures
    own = mf.diagnostics.information_decomposition(data, "shared", split="valid", shuffles=0)
    assert own.settings["images"] == "patches"
    pixels = mf.diagnostics.information_decomposition(
        data, "shared", images="pixels", split="valid", shuffles=0
    )
    assert pixels.redundancy < 0.5 * own.redundancy, (pixels.parts, own.parts)


def test_patch_features_validate_their_input():
    images = np.zeros((4, 3, 4, 4), dtype=np.uint8)
    with pytest.raises(InputError, match="smaller than the 5 px window"):
        PatchFeatures().fit(images)
    with pytest.raises(InputError, match="call fit before transform"):
        PatchFeatures().transform(images)
    with pytest.raises(InputError, match="k must be"):
        PatchFeatures(k=0)
