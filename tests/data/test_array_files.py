"""The generic ``arrays`` loader (``spec/data.md`` sections 6 and 7): mappings, the naming
convention, lazy HDF5 reading, the CLI end to end, and a corpus of broken files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from mmfactor.cli import main
from mmfactor.data.array_files import H5Array, load_arrays
from mmfactor.data.batching import make_loader
from mmfactor.errors import InputError

N, T = 120, 12
MAPPING = {
    "modalities": {
        "a": "feat_a",
        "b": {"key": "feat_b", "kind": "sequence", "lengths": "len_b", "present": "pres_b"},
    },
    "targets": {
        "label": {"key": "lab", "kind": "classification"},
        "score": {"key": "s", "kind": "regression", "sentiment": True},
    },
    "split": "part",
    "default_target": "label",
}


def make_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A vector modality, an end-padded sequence modality (5 samples absent, length 0), a
    sentiment score in [-3, 3], a 3-class label and a split array."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=N)
    present = np.ones(N, dtype=bool)
    present[5:10] = False
    lengths[5:10] = 0
    b = rng.normal(size=(N, T, 4)).astype(np.float32)
    b[np.arange(T)[None, :] >= lengths[:, None]] = 0.0
    score = np.clip(rng.normal(scale=1.5, size=N), -3, 3).astype(np.float32)
    split = rng.permutation(np.repeat(["train", "valid", "test"], [84, 18, 18]))
    return {
        "feat_a": rng.normal(size=(N, 6)).astype(np.float32),
        "feat_b": b,
        "len_b": lengths,
        "pres_b": present,
        "s": score,
        "lab": np.digitize(score, [-0.5, 0.5]).astype(np.int64),
        "part": split,
    }


def write_h5(path: Path, arrays: dict[str, np.ndarray], compress: tuple[str, ...] = ()) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if v.dtype.kind == "U":
                v = v.astype("S")  # HDF5 stores fixed-length bytes
            if k in compress:
                f.create_dataset(k, data=v, chunks=(16, *v.shape[1:]), compression="gzip")
            else:
                f.create_dataset(k, data=v)
    return path


def write_mapping(path: Path, mapping: dict = MAPPING) -> None:
    path.write_text(yaml.safe_dump(mapping))


def test_npz_with_side_yaml(tmp_path):
    src = make_arrays()
    np.savez(tmp_path / "data.npz", **src)
    write_mapping(tmp_path / "data.yaml")  # the stem form of the side file
    data = load_arrays(str(tmp_path / "data.npz"))

    assert data.name == "arrays" and len(data) == N
    assert {m: s.kind for m, s in data.modalities.items()} == {"a": "vector", "b": "sequence"}
    assert data.modalities["a"].shape == (6,) and data.modalities["b"].shape == (4,)
    np.testing.assert_array_equal(data.arrays["b"], src["feat_b"])  # exact: read, not computed
    np.testing.assert_array_equal(data.lengths["b"], np.maximum(src["len_b"], 1))
    np.testing.assert_array_equal(data.present["b"], src["pres_b"])
    assert data.present["a"].all()
    for s in ("train", "valid", "test"):
        np.testing.assert_array_equal(data.indices(s), np.flatnonzero(src["part"] == s))
    assert data.targets["label"].kind == "classification"
    assert data.targets["label"].task.n_classes == 3
    assert data.targets["score"].kind == "regression" and data.targets["score"].sentiment
    assert not data.targets["label"].sentiment
    assert data.default_target == "label"
    assert data.info["format"] == "npz" and data.info["path"] == str(tmp_path / "data.npz")
    assert data.info["mapping"]["modalities"]["a"]["kind"] == "vector"
    assert data.info["mapping_source"] == str(tmp_path / "data.yaml")


def test_mapping_option_json_and_dict(tmp_path):
    src = make_arrays()
    np.savez(tmp_path / "data.npz", **src)
    (tmp_path / "m.json").write_text(json.dumps(MAPPING))
    from_json = load_arrays(str(tmp_path / "data.npz"), mapping=str(tmp_path / "m.json"))
    from_dict = load_arrays(str(tmp_path / "data.npz"), mapping=MAPPING)
    drop_info = [
        {k: v for k, v in d.summary().items() if k != "info"} for d in (from_json, from_dict)
    ]
    # exact: the summaries' float statistics come from the same arrays by the same computation
    assert drop_info[0] == drop_info[1]
    assert from_json.info["mapping"] == from_dict.info["mapping"]
    assert from_dict.info["mapping_source"] == "the mapping option"


def test_naming_convention_and_random_splits(tmp_path):
    rng = np.random.default_rng(1)
    split = np.repeat([0, 1, 2], [80, 20, 20])
    np.savez(
        tmp_path / "conv.npz",
        x_a=rng.normal(size=(N, 5)),  # float64: converted to float32
        x_b=rng.normal(size=(N, T, 3)).astype(np.float32),
        y=np.arange(N) % 2,
        y_extra=rng.normal(size=(N, 1)),
        split=split,
        ids=np.arange(N),
    )
    with pytest.warns(UserWarning, match="ids"):
        data = load_arrays(str(tmp_path / "conv.npz"))
    assert data.modality_names == ["a", "b"] and data.arrays["a"].dtype == np.float32
    assert data.modalities["b"].kind == "sequence" and (data.lengths["b"] == T).all()
    assert data.target_names == ["y", "extra"] and data.default_target == "y"
    assert data.targets["y"].kind == "classification"
    assert data.targets["extra"].kind == "regression" and data.targets["extra"].values.shape == (N,)
    np.testing.assert_array_equal(data.indices("valid"), np.arange(80, 100))
    assert data.info["mapping_source"] == "naming convention"

    # Without a split array: a seeded 70/15/15 split, stratified on the classes of y.
    np.savez(tmp_path / "nosplit.npz", x_a=rng.normal(size=(N, 5)), y=np.arange(N) % 2)
    one = load_arrays(str(tmp_path / "nosplit.npz"), seed=3)
    two = load_arrays(str(tmp_path / "nosplit.npz"), seed=3)
    assert {k: len(v) for k, v in one.splits.items()} == {"train": 84, "valid": 18, "test": 18}
    assert all(np.array_equal(one.splits[k], two.splits[k]) for k in one.splits)
    assert (one.targets["y"].values[one.indices("test")] == 1).sum() == 9


def check_batches(data, src: dict[str, np.ndarray], num_workers: int = 0) -> int:
    """Every batch of the train split equals the source arrays; returns the batch count.
    Exact: batches copy the stored values (floats included), they compute none."""
    count = 0
    loader = make_loader(data, data.indices("train"), 32, target="score", num_workers=num_workers)
    for batch in loader:
        idx = batch.index.numpy()
        t_max = int(np.maximum(src["len_b"][idx], 1).max())
        np.testing.assert_array_equal(batch.x["a"].numpy(), src["feat_a"][idx])
        np.testing.assert_array_equal(batch.x["b"].numpy(), src["feat_b"][idx, :t_max])
        np.testing.assert_array_equal(batch.present["b"].numpy(), src["pres_b"][idx])
        np.testing.assert_array_equal(batch.y.numpy(), src["s"][idx])
        count += 1
    return count


def test_hdf5_contiguous_is_memory_mapped(tmp_path):
    src = make_arrays()
    path = write_h5(tmp_path / "data.h5", src)
    write_mapping(tmp_path / "data.h5.yaml")  # the full-name form of the side file
    data = load_arrays(str(path))
    assert isinstance(data.arrays["a"], np.memmap) and isinstance(data.arrays["b"], np.memmap)
    assert data.info["format"] == "hdf5"
    np.testing.assert_array_equal(data.indices("test"), np.flatnonzero(src["part"] == "test"))
    assert check_batches(data, src) == 3


def test_hdf5_compressed_reads_lazily(tmp_path):
    src = make_arrays()
    src64 = {**src, "feat_a": src["feat_a"].astype(np.float64)}  # not float32: lazy too
    path = write_h5(tmp_path / "data.h5", src64, compress=("feat_b",))
    write_mapping(tmp_path / "data.h5.yaml")
    data = load_arrays(str(path))
    assert isinstance(data.arrays["a"], H5Array) and isinstance(data.arrays["b"], H5Array)
    assert check_batches(data, src) == 3
    assert check_batches(data, src, num_workers=1) == 3

    lazy = data.arrays["b"]
    assert lazy.shape == (N, T, 4) and lazy.ndim == 3 and len(lazy) == N
    # Exact below: lazy reads copy the stored floats.
    idx = np.array([7, 3, 3, 100, -1])
    np.testing.assert_array_equal(lazy[idx, :5], src["feat_b"][idx, :5])
    np.testing.assert_array_equal(lazy[2], src["feat_b"][2])
    np.testing.assert_array_equal(np.asarray(lazy), src["feat_b"])
    clone = pickle.loads(pickle.dumps(lazy))  # spawned workers: path and key only
    np.testing.assert_array_equal(clone[10:12], src["feat_b"][10:12])
    sub = data.subset(np.array([4, 1]))
    np.testing.assert_array_equal(sub.arrays["b"], src["feat_b"][[4, 1]])


def test_training_streams_a_lazy_hdf5_file_through_workers(tmp_path):
    """Two DataLoader worker processes read the chunked, compressed file a batch at a time;
    the trained weights equal those of reading in the trainer itself.
    (``benchmarks/larger_than_memory.py`` trains on a file twice the memory cap.)"""
    import torch

    import mmfactor as mf

    src = make_arrays()
    path = write_h5(tmp_path / "data.h5", src, compress=("feat_a", "feat_b"))
    write_mapping(tmp_path / "data.h5.yaml")
    weights = []
    for workers in (0, 2):
        data = load_arrays(str(path))
        assert isinstance(data.arrays["a"], H5Array)
        torch.manual_seed(0)
        model = mf.methods.build("clip", data.modalities, embed_dim=8)
        mf.fit(model, data, max_epochs=2, batch_size=16, num_workers=workers, progress=False)
        weights.append(model.state_dict())
    # Exact: workers only read the batches; the training itself runs in this process on the
    # same batches (same values, same shapes) either way: the same computation.
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_fit_and_evaluate_through_the_cli(tmp_path, capsys):
    path = write_h5(tmp_path / "data.h5", make_arrays())
    write_mapping(tmp_path / "data.h5.yaml")
    small = ["--set", "method.embed_dim=16", "--set", "method.encoder_options={hidden: 16}"]
    for method in ("clip", "supervised"):
        run = tmp_path / method
        code = main(
            ["fit", "--method", method, "--data", f"arrays:{path}", "--epochs", "1",
             "--out", str(run), "--set", "train.progress=false", "--target", "score", *small]
        )  # fmt: skip
        assert code == 0, capsys.readouterr().err
        capsys.readouterr()
        assert main(["evaluate", str(run), "--json"]) == 0
        records = json.loads(capsys.readouterr().out)
        metrics = {r["metric"] for r in records if r["target"] == "score"}
        assert {"acc2_has0", "acc2_non0", "f1_has0", "acc7", "mae", "corr"} <= metrics


# ----------------------------------------------------------------------------- broken files


def broken_missing_key(d: Path) -> Path:
    np.savez(d / "f.npz", **make_arrays())
    write_mapping(d / "f.npz.yaml", {**MAPPING, "targets": {"label": "nope"}})
    return d / "f.npz"


def broken_unequal_n(d: Path) -> Path:
    np.savez(d / "f.npz", x_a=np.zeros((N, 3)), x_b=np.zeros((N - 1, 2)), y=np.arange(N) % 2)
    return d / "f.npz"


def broken_target_shape(d: Path) -> Path:
    np.savez(d / "f.npz", x_a=np.zeros((N, 3)), y=np.zeros((N, 2)))
    return d / "f.npz"


def broken_nan(d: Path) -> Path:
    src = make_arrays()
    src["feat_a"][np.flatnonzero(src["part"] == "test")[3], 2] = np.nan
    np.savez(d / "f.npz", **src)
    write_mapping(d / "f.yaml")
    return d / "f.npz"


def broken_nan_lazy(d: Path) -> Path:
    src = make_arrays()
    src["feat_b"][np.flatnonzero(src["part"] == "valid")[0], 0, 1] = np.inf
    write_h5(d / "f.h5", src, compress=("feat_b",))
    write_mapping(d / "f.yaml")
    return d / "f.h5"


def broken_split_value(d: Path) -> Path:
    split = np.repeat(["train", "valid", "test", "banana"], [60, 20, 20, 20])
    np.savez(d / "f.npz", x_a=np.zeros((N, 3)), y=np.arange(N) % 2, split=split)
    return d / "f.npz"


def broken_lengths(d: Path) -> Path:
    src = make_arrays()
    src["len_b"][np.flatnonzero(src["part"] == "train")[0]] = T + 1
    np.savez(d / "f.npz", **src)
    write_mapping(d / "f.yaml")
    return d / "f.npz"


def truncated_h5(d: Path) -> Path:
    path = write_h5(d / "f.h5", make_arrays())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def truncated_npz(d: Path) -> Path:
    np.savez(d / "f.npz", **make_arrays())
    raw = (d / "f.npz").read_bytes()
    (d / "f.npz").write_bytes(raw[: len(raw) // 2])
    return d / "f.npz"


def object_npz(d: Path) -> Path:
    objects = np.empty(N, dtype=object)
    objects[:] = [{"i": i} for i in range(N)]
    np.savez(d / "f.npz", x_a=np.zeros((N, 3)), x_obj=objects, y=np.arange(N) % 2)
    return d / "f.npz"


def unknown_kind(d: Path) -> Path:
    np.savez(d / "f.npz", **make_arrays())
    mods = {**MAPPING["modalities"], "a": {"key": "feat_a", "kind": "spectrum"}}
    write_mapping(d / "f.npz.yml", {**MAPPING, "modalities": mods})
    return d / "f.npz"


def missing_file(d: Path) -> Path:
    return d / "absent.h5"


BROKEN = [
    (broken_missing_key, ["'nope'", "f.npz.yaml"]),
    (broken_unequal_n, ["'x_b'", "119", "120"]),
    (broken_target_shape, ["'y'", "(120, 2)"]),
    (broken_nan, ["split 'test'", "'feat_a'", "NaN"]),
    (broken_nan_lazy, ["split 'valid'", "'feat_b'", "infinite"]),
    (broken_split_value, ["'split'", "'banana'"]),
    (broken_lengths, ["split 'train'", "'len_b'", f"length {T + 1}"]),
    (truncated_h5, ["truncated"]),
    (truncated_npz, ["truncated or corrupt"]),
    (object_npz, ["'x_obj'", "object array"]),
    (unknown_kind, ["'modalities.a.kind'", "'spectrum'", "f.npz.yml"]),
    (missing_file, ["no such file"]),
]


@pytest.mark.parametrize(("make", "expected"), BROKEN, ids=[m.__name__ for m, _ in BROKEN])
def test_broken_files_give_one_line(tmp_path, capsys, make, expected):
    path = make(tmp_path)
    assert main(["data", "inspect", f"arrays:{path}"]) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert path.name in err
    for text in expected:
        assert text in err, (text, err)


def test_mapping_schema_errors(tmp_path):
    np.savez(tmp_path / "f.npz", **make_arrays())
    path = str(tmp_path / "f.npz")
    with pytest.raises(InputError, match="'colour'.*unknown mapping entry"):
        load_arrays(path, mapping={**MAPPING, "colour": 1})
    with pytest.raises(InputError, match="'modalities.b.size'.*unknown entry"):
        load_arrays(path, mapping={"modalities": {"b": {"key": "feat_b", "size": 3}}})
    with pytest.raises(InputError, match="'targets.label.kind'"):
        load_arrays(
            path,
            mapping={
                "modalities": {"a": "feat_a"},
                "targets": {"label": {"key": "lab", "kind": "ordinal"}},
            },
        )
    with pytest.raises(InputError, match="a vector needs 2 axes"):
        load_arrays(path, mapping={"modalities": {"b": {"key": "feat_b", "kind": "vector"}}})
    with pytest.raises(InputError, match="no such mapping file"):
        load_arrays(path, mapping=str(tmp_path / "absent.yaml"))
