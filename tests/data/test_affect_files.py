"""The MultiBench and MMSA pickle loaders (spec/data.md sections 4, 5 and 7)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import mmfactor as mf
from mmfactor.cli import main
from mmfactor.data.examples import write_mmsa, write_multibench
from mmfactor.data.files import front_to_end
from mmfactor.errors import InputError

# Small MMSA files: the exact layout with shorter sequences and narrower features.
SMALL_MMSA = {"text": 32, "audio": 5, "vision": 20, "t_text": 12, "t_audio": 30, "t_vision": 40}


def _dump(path, doc, protocol=4):
    path.write_bytes(pickle.dumps(doc, protocol=protocol))
    return path


def _tiny_multibench():
    """Three samples of T = 4, front-padded by hand; sample 1 is empty."""
    text = np.zeros((3, 4, 300), np.float32)
    audio = np.zeros((3, 4, 74), np.float32)
    vision = np.zeros((3, 4, 35), np.float32)
    text[0, 2:] = [[1.0], [2.0]]  # length 2
    audio[0, 2:, 0] = [-np.inf, 5.0]
    text[2, 1:] = 3.0  # length 3
    vision[2, 0] = 7.0  # vision real one step earlier: the sample starts there
    labels = np.array([0.0, 1.0, -2.4], np.float32).reshape(3, 1, 1)
    split = {"vision": vision, "audio": audio, "text": text, "labels": labels}
    return {s: {k: v.copy() for k, v in split.items()} for s in ("train", "valid", "test")}


def test_multibench_front_padding_becomes_end_padding(tmp_path):
    path = _dump(tmp_path / "mosi_raw.pkl", _tiny_multibench())
    with pytest.warns(UserWarning, match="dropped 3 empty samples"):
        data = mf.datasets.load("multibench", path=str(path))
    train = data.indices("train")
    assert len(train) == 2  # the empty sample is gone
    np.testing.assert_array_equal(data.lengths["text"][train], [2, 4])
    # Exact: loading moves the stored values (and writes 0 for -inf / padding), computes none.
    np.testing.assert_array_equal(data.arrays["text"][train[0], :, 0], [1, 2, 0, 0])
    np.testing.assert_array_equal(data.arrays["audio"][train[0], :, 0], [0, 5, 0, 0])  # -inf -> 0
    np.testing.assert_array_equal(data.arrays["vision"][train[1], :, 0], [7, 0, 0, 0])
    np.testing.assert_array_equal(data.arrays["text"][train[1], :, 0], [0, 3, 3, 3])
    assert data.info["dropped_empty"] == {"train": 1, "valid": 1, "test": 1}
    assert any("-inf values replaced by 0" in n for n in data.info["notes"])


def test_multibench_names_both_binarisation_conventions(tmp_path):
    doc = _tiny_multibench()
    path = _dump(tmp_path / "mosi_raw.pkl", doc)
    data = mf.datasets.load("multibench", path=str(path), drop_empty=False)
    y = data.targets["sentiment"].values[data.indices("train")]
    np.testing.assert_allclose(y, [0.0, 1.0, -2.4], rtol=1e-6)
    assert data.default_target == "sentiment" and data.targets["sentiment"].sentiment
    # y = 0 is positive under FactorCL/MFM's y >= 0, negative under MultiBench's y > 0.
    assert data.targets["binary-ge0"].values[data.indices("train")].tolist() == [1, 1, 0]
    assert data.targets["binary-gt0"].values[data.indices("train")].tolist() == [0, 1, 0]
    assert data.targets["sentiment7"].values[data.indices("train")].tolist() == [3, 4, 1]
    assert data.lengths["text"][data.indices("train")][1] == 1  # kept empty: one zero step


@pytest.mark.parametrize(
    ("family", "labels", "target", "dims"),
    [
        ("mosi_raw", "sentiment", "sentiment", (35, 74)),
        ("mosi_data", "sentiment", "sentiment", (20, 5)),
        ("humor", "binary", "label", (371, 81)),
    ],
)
def test_multibench_families_and_id_forms(tmp_path, family, labels, target, dims):
    path = tmp_path / f"{family}.pkl"
    doc = write_multibench(path, family, sizes=(12, 6, 6), steps=10, empty=1)
    with pytest.warns(UserWarning, match="dropped 3 empty"):
        data = mf.datasets.load("multibench", path=str(path))
    assert data.info["labels"] == labels and data.default_target == target
    assert (data.modalities["vision"].dim, data.modalities["audio"].dim) == dims
    assert data.info["family"].startswith(mf.data.multibench.FAMILIES[dims][:8])
    assert [len(data.indices(s)) for s in ("train", "valid", "test")] == [11, 5, 5]
    ids = data.meta["id"][data.indices("train")]
    raw = doc["train"]["id"][1:]
    if family == "mosi_raw":  # strings
        assert ids.tolist() == raw.tolist()
    elif family == "mosi_data":  # MulT rows [video, start, end] as bytes
        assert ids.tolist() == [r[0].decode() for r in raw]
        np.testing.assert_allclose(
            data.meta["start"][data.indices("train")], raw[:, 1].astype(float)
        )
    else:  # numeric rows, the key first
        assert ids.tolist() == [str(int(r[0])) for r in raw]


def test_multibench_reads_numpy1_python2_pickles(tmp_path):
    doc = _tiny_multibench()
    blob = pickle.dumps(doc, protocol=2).replace(b"numpy._core", b"numpy.core")
    assert b"numpy.core.multiarray" in blob
    path = tmp_path / "mosi_data.pkl"
    path.write_bytes(blob)
    with pytest.warns(UserWarning):
        data = mf.datasets.load("multibench", path=str(path))
    assert len(data) == 6


def test_front_to_end_matches_a_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7, 3))
    lengths = np.array([7, 1, 3, 0, 5])
    expected = np.zeros_like(x)
    for i, n in enumerate(lengths):
        if n:
            expected[i, :n] = x[i, 7 - n :]
    np.testing.assert_array_equal(front_to_end(x, lengths), expected)  # exact: values copied


@pytest.mark.parametrize("aligned", [True, False])
def test_mmsa_lengths_masks_and_targets(tmp_path, aligned):
    path = tmp_path / ("aligned_50.pkl" if aligned else "unaligned_50.pkl")
    doc = write_mmsa(path, aligned=aligned, sizes=(10, 4, 5), dims=SMALL_MMSA)
    data = mf.datasets.load("mmsa", path=str(path))
    train = data.indices("train")
    mask = doc["train"]["text_bert"][:, 1]
    np.testing.assert_array_equal(data.lengths["text"][train], mask.sum(1))
    assert data.info["aligned"] is aligned
    if aligned:
        assert data.arrays["audio"].shape[1] == SMALL_MMSA["t_text"]
        assert (data.lengths["audio"] == SMALL_MMSA["t_text"]).all()
    else:
        raw = np.array(doc["train"]["audio_lengths"])
        np.testing.assert_array_equal(data.lengths["audio"][train], np.maximum(raw, 1))
        np.testing.assert_array_equal(data.present["audio"][train], raw > 0)
        assert not data.present["vision"][train[0]]  # length 0: that sample has no vision
    assert np.isfinite(data.arrays["audio"]).all()  # -inf -> 0
    np.testing.assert_allclose(
        data.targets["sentiment"].values[train], doc["train"]["regression_labels"]
    )
    assert data.targets["sentiment"].sentiment
    assert data.targets["class"].classes == ("negative", "neutral", "positive")
    assert data.meta["raw_text"][train[2]] == doc["train"]["raw_text"][2]
    assert data.meta["id"][train[0]] == "trainvid0$_$0"


def test_mmsa_bert_ids_and_sims_unimodal_labels(tmp_path):
    path = tmp_path / "unaligned_39.pkl"
    doc = write_mmsa(path, sims=True, sizes=(10, 4, 5), dims={**SMALL_MMSA, "t_text": 9})
    data = mf.datasets.load("mmsa", path=str(path), text="bert")
    assert data.modalities["text"].shape == (3,)
    train = data.indices("train")
    np.testing.assert_array_equal(  # exact: token ids copied
        data.arrays["text"][train][:, :, 0], doc["train"]["text_bert"][:, 0]
    )
    assert {"sentiment:T", "sentiment:A", "sentiment:V"} <= set(data.targets)
    assert "sentiment7" not in data.targets and not data.targets["sentiment"].sentiment
    np.testing.assert_allclose(
        data.targets["sentiment:A"].values[train], doc["train"]["regression_labels_A"]
    )


def test_data_inspect_detects_the_format_and_reports(tmp_path, capsys):
    mb = tmp_path / "mosi_raw.pkl"
    write_multibench(mb, sizes=(12, 6, 6), steps=10, empty=1)
    mmsa = tmp_path / "custom_name.pkl"  # not a released name: told by its keys
    write_mmsa(mmsa, sizes=(10, 4, 5), dims=SMALL_MMSA)
    assert main(["data", "inspect", str(mb)]) == 0
    out = capsys.readouterr()
    assert "format: multibench" in out.out and "lengths" in out.out
    assert "binary-gt0" in out.out and "empty samples dropped" in out.out
    assert main(["data", "inspect", str(mmsa)]) == 0
    out = capsys.readouterr().out
    assert "format: mmsa" in out and "per-sample fields: annotation, id, raw_text" in out


# --- broken files: exit code 2, one line naming the file, the split and the key ---------


def _mutations():
    def drop_split(d):
        del d["valid"]

    def drop_key(d):
        del d["test"]["audio"]

    def unequal_n(d):
        d["train"]["vision"] = d["train"]["vision"][:-1]

    def label_shape(d):
        d["train"]["labels"] = np.zeros((len(d["train"]["labels"]), 2), np.float32)

    def nan(d):
        d["valid"]["vision"][1, -1, 0] = np.nan

    def string_inside(d):
        d["test"]["text"] = "not an array"

    def object_inside(d):
        d["train"]["audio"] = InputError("not data")  # a class the unpickler refuses

    return {
        "missing split": (drop_split, "valid", None),
        "missing key": (drop_key, "test", "audio"),
        "unequal N": (unequal_n, "train", "vision"),
        "label shape": (label_shape, "train", "labels"),
        "NaN": (nan, "valid", "vision"),
        "wrong type": (string_inside, "test", "text"),
        "object": (object_inside, None, None),
    }


@pytest.mark.parametrize("case", list(_mutations()))
def test_broken_multibench_files_exit_2_with_one_line(tmp_path, capsys, case):
    mutate, split, key = _mutations()[case]
    doc = write_multibench(tmp_path / "ok.pkl", sizes=(8, 4, 4), steps=6, empty=0)
    mutate(doc)
    path = _dump(tmp_path / "mosi_raw.pkl", doc)
    assert main(["data", "inspect", f"multibench:{path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    if split:
        assert f"split '{split}'" in err
    if key:
        assert f"key '{key}'" in err
    if case == "object":
        assert "refusing to load" in err


@pytest.mark.parametrize(
    ("key", "bad", "split"),
    [
        ("audio_lengths", lambda v: [999] * len(v), "train"),
        ("regression_labels", lambda v: np.full((len(v), 2), 0.5, np.float32), "train"),
        ("text_bert", lambda v: v[:, :2], "train"),
        ("classification_labels", lambda v: v + 5, "train"),
    ],
)
def test_broken_mmsa_files_exit_2_with_one_line(tmp_path, capsys, key, bad, split):
    doc = write_mmsa(tmp_path / "ok.pkl", sizes=(6, 3, 3), dims=SMALL_MMSA)
    doc[split][key] = bad(doc[split][key] if key != "audio_lengths" else doc[split][key])
    path = _dump(tmp_path / "unaligned_50.pkl", doc)
    assert main(["data", "inspect", f"mmsa:{path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err and f"split '{split}'" in err and f"key '{key}'" in err


def test_truncated_and_unknown_files_exit_2(tmp_path, capsys):
    path = tmp_path / "mosi_raw.pkl"
    write_multibench(path, sizes=(8, 4, 4), steps=6, empty=0)
    path.write_bytes(path.read_bytes()[:5000])
    other = tmp_path / "other.pkl"
    _dump(other, {"train": {"x": np.zeros(3)}})
    for spec in (str(path), str(other), str(tmp_path / "notes.txt")):
        assert main(["data", "inspect", spec]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and spec in err


# --- end to end: a generated file of each format trains and is scored with the sentiment
# metrics through the CLI ------------------------------------------------------------------

SENTIMENT_METRICS = {"acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr"}
SMALL_MODEL = [
    "--set",
    "method.embed_dim=16",
    "--set",
    "method.encoder_options.transformer={d_model: 10, heads: 5, layers: 1}",
    "--set",
    "train.progress=false",
]


def _write(kind, tmp_path):
    if kind == "multibench":
        path = tmp_path / "mosi_raw.pkl"
        write_multibench(path, sizes=(48, 16, 24), steps=12, empty=1)
    else:
        path = tmp_path / f"{kind.split('-')[1]}_50.pkl"
        write_mmsa(path, aligned=kind == "mmsa-aligned", sizes=(40, 16, 24), dims=SMALL_MMSA)
    return f"{kind.split('-')[0]}:{path}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["multibench", "mmsa-aligned", "mmsa-unaligned"])
@pytest.mark.parametrize("method", ["clip", "supervised"])
def test_one_epoch_through_the_cli_then_sentiment_metrics(tmp_path, capsys, kind, method):
    import json

    run = tmp_path / "run"
    args = ["fit", "--method", method, "--data", _write(kind, tmp_path), "--epochs", "1"]
    assert main([*args, *SMALL_MODEL, "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    on_sentiment = [r for r in records if r["target"] == "sentiment" and r["factors"] == "all"]
    assert SENTIMENT_METRICS <= {r["metric"] for r in on_sentiment}
    assert all(np.isfinite(r["value"]) for r in on_sentiment)
    if method == "supervised":  # its head is scored with them too
        head = {r["metric"] for r in records if r["protocol"] == "head"}
        assert SENTIMENT_METRICS <= head


@pytest.mark.parametrize(
    ("spec", "option", "message"),
    [
        ("multibench", "data.modalities=[text,smell]", "unknown modality 'smell'"),
        ("multibench", "data.labels=ordinal", "labels must be one of"),
        ("mmsa", "data.text=glove", "text must be one of"),
    ],
)
def test_bad_loader_options_exit_2(tmp_path, capsys, spec, option, message):
    path = tmp_path / "f.pkl"
    args = ["fit", "--method", "clip", "--data", f"{spec}:{path}", "--set", option]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
