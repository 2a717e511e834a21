"""Numbers in ``--set`` and config files: exponent floats as people write them."""

from __future__ import annotations

import pytest
import yaml

from mmfactor.cli import main
from mmfactor.config import load_yaml, parse_set, resolve
from mmfactor.errors import InputError
from mmfactor.yamlio import load_yaml_text


@pytest.mark.parametrize(
    "raw, value",
    [
        ("1e-3", 1e-3),
        ("1E5", 1e5),
        ("-2.5e-1", -0.25),
        ("5e-4", 5e-4),
        ("+3e2", 300.0),
        (".5e-3", 5e-4),
        ("1.0e-3", 1e-3),
        ("0.001", 1e-3),
    ],
)
def test_set_reads_exponent_floats(raw: str, value: float) -> None:
    path, parsed = parse_set(f"train.lr={raw}")
    assert path == ["train", "lr"]
    assert isinstance(parsed, float)
    assert parsed == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("raw", ["e5", "1e", ".e5", "1e-3x", "abc"])
def test_strings_that_are_not_numbers_stay_strings(raw: str) -> None:
    assert load_yaml_text(raw) == raw


def test_integers_and_plain_yaml_are_unchanged() -> None:
    text = "a: 10\nb: true\nc: null\nd: [1, 2.5]\ne: '1e-3'\n"
    # exact: the same parse by plain PyYAML, a quoted 1e-3 staying a string
    assert load_yaml_text(text) == yaml.safe_load(text)


def test_config_file_and_resolved_run_take_exponent_floats(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 5e-4\n  weight_decay: 1E-5\n")
    assert load_yaml(path)["train"] == {"lr": 5e-4, "weight_decay": 1e-5}
    cfg = resolve("clip", "synthetic", config=load_yaml(path), sets=["train.max_epochs=1"])
    assert cfg["train"]["lr"] == pytest.approx(5e-4)


def test_fit_accepts_lr_written_with_an_exponent(tmp_path, capsys) -> None:
    code = main(
        [
            *("fit", "--method", "supervised", "--data", "synthetic"),
            *("--set", "data.n=200", "--set", "train.lr=1e-3", "--epochs", "1"),
            *("--out", str(tmp_path / "run")),
        ]
    )
    assert code == 0, capsys.readouterr().err


def test_bad_yaml_still_names_the_file(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train: [1e-3\n")
    with pytest.raises(InputError, match="bad.yaml"):
        load_yaml(path)
