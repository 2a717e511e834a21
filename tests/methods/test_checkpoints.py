"""Weights written by mmfactor 0.1 load into the renamed methods (FactorCL's heads and pair
critics, MIRD's CLUB networks), by each method's ``renamed_parameters``.

``data/state_keys_0_1.json`` holds the state-dict keys and shapes of small models exactly as
mmfactor 0.1 built them (dumped once with that version's code).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mmfactor as mf
from mmfactor.errors import InputError
from mmfactor.io import rename_state_keys
from mmfactor.runs import load_weights

OLD = json.loads((Path(__file__).parent / "data" / "state_keys_0_1.json").read_text())


def build(name: str) -> torch.nn.Module:
    method, _, three = name.partition("@")
    if three:
        rng = np.random.default_rng(0)
        data = mf.from_arrays(
            {m: rng.normal(size=(60, 3)) for m in ("a", "b", "c")}, y=np.arange(60) % 2
        )
    else:
        data = mf.datasets.load("synthetic", n=300, seed=0)
    options: dict = {"embed_dim": 8}
    if method != "factorcl-ssl":
        options["task"] = data.target().task
    if method.startswith("factorcl"):
        options.update(proj_dim=4, proj_hidden=8, critic_hidden=(8,))
    return mf.methods.build(method, data.modalities, **options)


@pytest.mark.parametrize("name", sorted(OLD["models"]))
def test_keys_written_by_version_0_1_map_onto_the_current_ones(name):
    model = build(name)
    old = {k: torch.zeros(shape) for k, shape in OLD["models"][name].items()}
    renamed = rename_state_keys(old, model.renamed_parameters)
    current = model.state_dict()
    assert list(renamed) == list(current)  # the same keys, in the same order
    assert all(renamed[k].shape == current[k].shape for k in current)
    load_weights(model, old, "model.pt", "0.1.0")  # strict: raises on any mismatch


def test_weights_that_do_not_fit_name_both_versions():
    model = build("mird")
    old = {k: torch.zeros(shape) for k, shape in OLD["models"]["factorcl-sup"].items()}
    with pytest.raises(
        InputError, match=r"mmfactor 0\.1\.0.*" + mf.__version__.replace(".", r"\.")
    ):
        load_weights(model, old, "model.pt", "0.1.0")
