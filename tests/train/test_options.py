"""Training options: one typed, validated record; fit's keywords become one."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest

import mmfactor as mf
from mmfactor.config import TRAIN_DEFAULTS
from mmfactor.errors import InputError
from mmfactor.train import TrainOptions
from mmfactor.train.options import option_names, train_defaults


def test_defaults_are_the_config_defaults():
    assert train_defaults() == TRAIN_DEFAULTS
    assert list(train_defaults()) == list(TRAIN_DEFAULTS)  # same order in config.yaml
    assert option_names() == tuple(TRAIN_DEFAULTS)


def test_every_option_is_typed_and_frozen():
    hints = typing.get_type_hints(TrainOptions)
    assert set(hints) == set(option_names())
    for name, value in train_defaults().items():
        assert isinstance(value, typing.get_args(hints[name]) or hints[name]), name
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainOptions().lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_epochs": 0}, "train: max_epochs must be an integer >= 1, got 0"),
        ({"batch_size": True}, "train: batch_size must be an integer >= 1, got True"),
        ({"devices": 1.5}, "train: devices must be an integer >= 1, got 1.5"),
        ({"checkpoint_interval": -1}, "train: checkpoint_interval must be a number >= 0"),
        ({"lr": 0}, "train: lr must be a number > 0, got 0"),
        ({"estimator_lr": "big"}, "train: estimator_lr must be a number > 0, got 'big'"),
        ({"optimizer": "lbfgs"}, "train: optimizer must be one of adam, adamw, sgd"),
        ({"seed": 1.0}, "train: seed must be an integer, got 1.0"),
        ({"unlabeled_ratio": -0.5}, "train: unlabeled_ratio must be a number in [0, 1000000)"),
        ({"patience": -1}, "train: patience must be an integer >= 0 (0: no early stopping)"),
    ],
)
def test_bad_values_fail_naming_the_option(options, message):
    with pytest.raises(InputError) as err:
        TrainOptions(**options)
    assert str(err.value).startswith(message)


def test_values_are_stored_as_their_declared_types():
    opts = TrainOptions(lr=1, batch_size=np.int64(64), checkpoint_interval=0, seed=np.int32(3))
    assert (type(opts.lr), type(opts.batch_size), type(opts.seed)) == (float, int, int)
    assert type(opts.checkpoint_interval) is float and opts.checkpoint_interval == 0


def test_fit_rejects_an_unknown_keyword_naming_it(toy):
    model = mf.methods.build("clip", toy.modalities, embed_dim=4)
    with pytest.raises(InputError, match=r"^learning_rate: not a training option of fit") as err:
        mf.fit(model, toy, max_epochs=1, learning_rate=0.1)
    assert err.value.argument == "learning_rate"
    with pytest.raises(InputError, match=r"^train: batch_size must be an integer >= 1, got 0"):
        mf.fit(model, toy, batch_size=0)
