"""What a run directory holds, and weights of older versions: renamed parameters load under
their new names, weights that do not fit fail naming the versions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import mmfactor as mf
from mmfactor import runs
from mmfactor.config import resolve
from mmfactor.errors import InputError
from mmfactor.io import rename_state_keys
from mmfactor.methods.base import Method
from mmfactor.methods.registry import method_class


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "method, expected",
    [
        (
            "clip",
            {"model.pt", "metrics.json", "checkpoints/last.ckpt", "logs/attempt0/metrics.csv"},
        ),
        ("cca", {"model.pt", "metrics.json"}),  # closed form only: no checkpoints, no logs
    ],
)
def test_fit_writes_what_runs_documents(toy, tmp_path, method, expected):
    model = mf.methods.build(method, toy.modalities, embed_dim=4)
    mf.fit(model, toy, max_epochs=2, batch_size=64, out=tmp_path, progress=False)
    assert files_under(tmp_path) == expected
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["mmfactor_version"] == mf.__version__
    assert set(metrics) == {
        "epochs",
        "train_seconds",
        "samples_per_second",
        "best_valid_loss",
        "target",
        "history",
        "mmfactor_version",
        "status",
        "skipped_steps",
    }
    assert metrics["status"] == "ok" and metrics["skipped_steps"] == 0
    documented = runs.__doc__ or ""
    for name in [*expected, "config.yaml", *metrics]:
        assert f"``{re.sub(r'attempt0', 'attemptK', name)}``" in documented, name


def test_rename_state_keys_renames_whole_dotted_prefixes():
    state = {"head.w": 1, "headx.w": 2, "head": 3, "enc.head.w": 4, "a.b.c": 5}
    renamed = rename_state_keys(state, {"head": "heads.y", "a": "x", "a.b": "z"})
    # the longest prefix wins; a prefix is whole names, from the start of the key
    assert renamed == {"heads.y.w": 1, "headx.w": 2, "heads.y": 3, "enc.head.w": 4, "z.c": 5}


class Renamed(Method):
    """A method whose ``head`` was called ``old_head`` in an older version."""

    name = "renamed"
    renamed_parameters = {"old_head": "head"}

    def __init__(self, modalities):
        super().__init__(modalities, embed_dim=4, encoder_options={"hidden": []})
        self.head = nn.Linear(4, 2)


def test_old_parameter_names_load_under_the_new_ones(toy):
    torch.manual_seed(0)
    written = Renamed(toy.modalities)
    old = {k.replace("head.", "old_head.", 1): v for k, v in written.state_dict().items()}
    assert "old_head.weight" in old and "head.weight" not in old
    model = Renamed(toy.modalities)
    runs.load_weights(model, old, "run/model.pt", "0.0.1")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in written.state_dict().items())


def test_weights_that_do_not_fit_name_both_versions(toy):
    model = Renamed(toy.modalities)
    state = {**model.state_dict(), "gone.weight": torch.zeros(2)}
    with pytest.raises(InputError) as err:
        runs.load_weights(model, state, "run/model.pt", "0.0.1")
    message = str(err.value)
    assert "run/model.pt" in message and "mmfactor 0.0.1" in message
    assert f"installed mmfactor {mf.__version__}" in message and "'gone.weight'" in message
    state = dict(model.state_dict())
    state["head.weight"] = torch.zeros(3, 4)
    with pytest.raises(InputError, match=r"unknown mmfactor.*other shape 'head\.weight'"):
        runs.load_weights(model, state, "run/model.pt", None)


def test_load_run_renames_old_keys_or_fails_naming_the_run(tmp_path, monkeypatch):
    cfg = resolve(
        "clip",
        "synthetic",
        data_options={"n": 300},
        overrides={"train": {"max_epochs": 1, "progress": False}, "method": {"embed_dim": 4}},
    )
    run, _ = runs.train_from_config(cfg, tmp_path)
    trained = {k: v.clone() for k, v in run.model.state_dict().items()}
    # As an older version would have written it: the first encoder under another name.
    prefix = next(iter(trained)).split(".")[0]
    old = {f"old_{k}": v for k, v in trained.items() if k.startswith(prefix + ".")}
    old.update({k: v for k, v in trained.items() if not k.startswith(prefix + ".")})
    torch.save(old, tmp_path / "model.pt")

    with pytest.raises(InputError, match=re.escape(str(tmp_path)) + ".*missing.*unexpected"):
        runs.load_run(tmp_path)
    renamed = {f"old_{prefix}": prefix}
    monkeypatch.setattr(method_class("clip"), "renamed_parameters", renamed, raising=False)
    model, _, _ = runs.load_run(tmp_path)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in trained.items())
