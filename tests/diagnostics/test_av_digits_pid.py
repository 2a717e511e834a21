"""The PID of av-digits' targets by the projection estimator and by BATCH: each target's
dominant part is the one the data set was built to have (the digit in both modalities, the
speaker only in the audio, the ink only in the image, the XOR of the two in neither alone)."""

import numpy as np
import pytest

import mmfactor as mf
from mmfactor.encoders.patches import with_patch_features

DESIGNED = {
    "digit": "redundancy",
    "speaker": "unique:audio",
    "ink": "unique:image",
    "synergy": "synergy",
}


@pytest.fixture(scope="module")
def features():
    data = mf.datasets.load("av-digits")
    return with_patch_features(data, rows=np.arange(len(data)))


@pytest.mark.slow
@pytest.mark.parametrize("target", DESIGNED)
def test_projection_estimator_finds_the_designed_part(features, target):
    pid = mf.diagnostics.information_decomposition(features, target, shuffles=3)
    assert pid.dominant == DESIGNED[target], pid.parts


@pytest.mark.slow
@pytest.mark.parametrize("target", ["speaker", "synergy"])
def test_batch_estimator_finds_the_designed_part(features, target):
    pid = mf.diagnostics.information_decomposition(features, target, method="batch")
    assert pid.dominant == DESIGNED[target], pid.parts
