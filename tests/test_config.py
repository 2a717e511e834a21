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


# The families before each data set declared its own (config.dataset_family's hard-coded
# rule: multibench and mmsa files are sequences; every other data set is its own family).
FAMILIES = {
    "synthetic": "synthetic",
    "factorcl-synthetic": "factorcl-synthetic",
    "uci-mfeat": "uci-mfeat",
    "nutrimouse": "nutrimouse",
    "multibench": "sequence",
    "mmsa": "sequence",
    "arrays": "arrays",
    "linear": "linear",
    "trifeatures": "image",
    "av-digits": "av-digits",
}


def test_every_data_set_declares_the_family_it_had() -> None:
    from mmfactor.config import dataset_family
    from mmfactor.data import available

    assert set(available()) == set(FAMILIES)  # a new data set: add its family here
    for name, family in FAMILIES.items():
        assert dataset_family(name) == family
        assert dataset_family(name, {"path": "x.pkl", "seed": 1}) == family
    assert dataset_family("synthetic", {"kind": "sequence"}) == "sequence"
    assert dataset_family("synthetic", {"kind": "vector", "n": 10}) == "synthetic"
    assert dataset_family("not-registered") == "not-registered"


def test_a_registered_loader_declares_its_family() -> None:
    from mmfactor.config import dataset_family
    from mmfactor.data import registry

    before = dict(registry._LOADERS)
    try:
        registry.register_loader("my-seq", "mmfactor.data.linear", "load_linear", "sequence")
        registry.register_loader(
            "my-kind",
            "mmfactor.data.linear",
            "load_linear",
            lambda options: "sequence" if options.get("steps") else "my-kind",
        )
        registry.register_loader("my-own", "mmfactor.data.linear", "load_linear")
        assert dataset_family("my-seq") == "sequence"
        assert dataset_family("my-kind", {"steps": 5}) == "sequence"
        assert dataset_family("my-kind") == "my-kind"
        assert dataset_family("my-own") == "my-own"
    finally:
        registry._LOADERS.clear()
        registry._LOADERS.update(before)


def test_set_errors_name_the_sets_argument() -> None:
    with pytest.raises(InputError, match=r"^sets: expected section.key=value, got 'oops'$"):
        parse_set("oops")
    with pytest.raises(InputError, match=r"^sets: the key of 'lr=1' must start with data\."):
        parse_set("lr=1")


def test_train_section_checks_name_the_key() -> None:
    base = {"train": {"max_epochs": 1}}
    with pytest.raises(InputError, match=r"^train: batch_size must be an integer >= 1"):
        resolve("clip", "synthetic", config=base, sets=["train.batch_size=0"])
    with pytest.raises(
        InputError, match=r"^train: optimizer must be one of adam, adamw, sgd, got 'lion'"
    ):
        resolve("clip", "synthetic", config=base, sets=["train.optimizer=lion"])
    with pytest.raises(InputError, match=r"^train: patience .*\(0: no early stopping\), got -1"):
        resolve("clip", "synthetic", config=base, sets=["train.patience=-1"])
    cfg = resolve("clip", "synthetic", sets=["train.checkpoint_interval=.inf"])
    assert cfg["train"]["checkpoint_interval"] == float("inf")  # accepted, as before
