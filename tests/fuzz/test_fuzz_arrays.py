"""Fuzzed ``arrays`` files: ``.npz`` archives, HDF5 files and their YAML/JSON mapping side
files, mutated from valid seeds. Every case must load (and give a batch) or fail with an
``InputError`` of one line naming the file; never another exception, a hang or a memory
blow-up (the sandbox caps both). ``MMFACTOR_FUZZ_EXAMPLES=2000`` runs a longer campaign."""

from __future__ import annotations

import io
import json
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from tests.data.test_array_files import MAPPING  # the valid mapping the loader tests use
from tests.fuzz.mutate import (
    FUZZ,
    HUGE_ROWS,
    apply_bytes,
    apply_structure,
    byte_mutations,
    structural_mutations,
)
from tests.fuzz.sandbox import Sandbox, check

N, T = 40, 6
CONVENTION = {
    "feat_a": "x_a",
    "feat_b": "x_b",
    "len_b": "lengths_b",
    "pres_b": "present_b",
    "lab": "y",
    "s": "y_s",
    "part": "split",
}


def seed_arrays(convention: bool) -> dict[str, np.ndarray]:
    """A valid file's arrays: a vector and a sequence modality (lengths, 3 samples absent),
    a class label, a sentiment score and a split array; by mapping or by naming convention."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, T + 1, size=N)
    present = np.ones(N, dtype=bool)
    present[3:6] = False
    lengths[3:6] = 0
    b = rng.normal(size=(N, T, 3)).astype(np.float32)
    b[np.arange(T)[None, :] >= lengths[:, None]] = 0.0
    score = np.clip(rng.normal(scale=1.5, size=N), -3, 3).astype(np.float32)
    arrays = {
        "feat_a": rng.normal(size=(N, 4)).astype(np.float32),
        "feat_b": b,
        "len_b": lengths,
        "pres_b": present,
        "s": score,
        "lab": np.digitize(score, [-0.5, 0.5]).astype(np.int64),
        "part": np.repeat(["train", "valid", "test"], [28, 6, 6]),
    }
    return {CONVENTION[k]: v for k, v in arrays.items()} if convention else arrays


def as_array(value: Any) -> np.ndarray:
    try:
        return np.asarray(value)
    except (ValueError, RecursionError):
        out = np.empty(1, dtype=object)
        out[0] = value
        return out


@dataclass(frozen=True)
class ClaimRows:
    """The header (npz) or data set shape (HDF5) of array ``key`` (every array when
    ``key`` is -1) claims ``rows`` rows; only the real rows are stored."""

    key: int
    rows: int


def claims(arrays: dict[str, Any], claim: ClaimRows | None) -> dict[str, int]:
    if claim is None or not arrays:
        return {}
    keys = list(arrays)
    chosen = keys if claim.key < 0 else [keys[claim.key % len(keys)]]
    return dict.fromkeys(chosen, claim.rows)


claim_rows = st.none() | st.builds(ClaimRows, st.integers(-1, 8), st.sampled_from(HUGE_ROWS))


# ----------------------------------------------------------------------------- .npz


def npy_bytes(a: np.ndarray, rows: int | None) -> bytes:
    buf = io.BytesIO()
    if rows is None or a.dtype.hasobject:
        np.lib.format.write_array(buf, a, allow_pickle=True)
    else:
        header = np.lib.format.header_data_from_array_1_0(a)
        header["shape"] = (rows, *a.shape[1:])
        np.lib.format.write_array_header_2_0(buf, header)
        buf.write(np.ascontiguousarray(a).tobytes())
    return buf.getvalue()


@dataclass(frozen=True)
class Member:
    """Zip-level changes of member ``key``: its stored name, and byte mutations of its
    ``.npy`` bytes (written with a correct CRC, so they reach NumPy's parser)."""

    key: int
    name: str | None
    mutations: tuple[Any, ...]


members = st.lists(
    st.builds(
        Member,
        st.integers(0, 8),
        st.none() | st.sampled_from(["x_a", "x_a.txt", "x_b.npy", "dir/", "split.npy"]),
        byte_mutations(2).map(tuple) | st.just(()),
    ),
    max_size=2,
)


def write_npz(
    path: Path, arrays: dict[str, Any], rows: dict[str, int], member: list[Member], deflate: bool
) -> None:
    keys = list(arrays)
    changes = {keys[m.key % len(keys)]: m for m in member} if keys else {}
    compression = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=compression) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate member names are a case, not a mistake
        for key, value in arrays.items():
            try:
                data = npy_bytes(as_array(value), rows.get(key))
            except (ValueError, RecursionError, TypeError):
                continue  # not writable (a deep list): the key is dropped
            name = key + ".npy"
            if key in changes:
                data = apply_bytes(data, list(changes[key].mutations))
                name = changes[key].name or name
            zf.writestr(name, data)


@FUZZ
@given(
    convention=st.booleans(),
    structure=structural_mutations() | st.just([]),
    claim=claim_rows,
    member=members,
    deflate=st.booleans(),
    raw=byte_mutations() | st.just([]),
)
def test_npz(
    sandbox: Sandbox, tmp_path_factory, convention, structure, claim, member, deflate, raw
):
    arrays = apply_structure(seed_arrays(convention), structure)
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as d:
        path = Path(d) / "data.npz"
        write_npz(path, arrays, claims(arrays, claim), member, deflate)
        if raw:
            path.write_bytes(apply_bytes(path.read_bytes(), raw))
        if not convention:
            (Path(d) / "data.yaml").write_text(yaml.safe_dump(MAPPING))
        check(sandbox.run("arrays", path=str(path)), path)


# ----------------------------------------------------------------------------- HDF5

LAYOUTS = ("contiguous", "chunked", "gzip")


def write_h5(path: Path, arrays: dict[str, Any], rows: dict[str, int], layout: str) -> None:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            a = as_array(value)
            if a.dtype.kind == "U":
                a = np.char.encode(a, "utf-8")  # HDF5 stores bytes
            try:
                if a.dtype.hasobject:
                    a = a.astype(h5py.string_dtype())
                chunked = layout != "contiguous" and a.ndim > 0 and a.size > 0
                options: dict[str, Any] = {}
                if chunked:
                    options["chunks"] = (min(8, len(a)), *a.shape[1:])
                    options["compression"] = "gzip" if layout == "gzip" else None
                if key in rows and a.ndim > 0:
                    shape = (rows[key], *a.shape[1:])
                    ds = f.create_dataset(key, shape=shape, dtype=a.dtype, **options)
                    if chunked:  # a contiguous one stays unwritten (else a huge sparse file)
                        ds[: len(a)] = a
                else:
                    f.create_dataset(key, data=a, **options)
            except (ValueError, TypeError, OSError, RecursionError):
                continue  # not storable in HDF5 (datetimes, odd names): the key is dropped


@FUZZ
@given(
    convention=st.booleans(),
    structure=structural_mutations() | st.just([]),
    claim=claim_rows,
    layout=st.sampled_from(LAYOUTS),
    raw=byte_mutations() | st.just([]),
)
def test_hdf5(sandbox: Sandbox, tmp_path_factory, convention, structure, claim, layout, raw):
    arrays = apply_structure(seed_arrays(convention), structure)
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as d:
        path = Path(d) / "data.h5"
        write_h5(path, arrays, claims(arrays, claim), layout)
        if raw:
            path.write_bytes(apply_bytes(path.read_bytes(), raw))
        if not convention:
            (Path(d) / "data.h5.yaml").write_text(yaml.safe_dump(MAPPING))
        check(sandbox.run("arrays", path=str(path)), path)


# ----------------------------------------------------------------------------- mappings

VALUES = (
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "a\nb",
    "nope",
    "feat_a",
    "feat_b",
    "len_b",
    "lab",
    "s",
    "part",
    "vector",
    "sequence",
    "image",
    "classification",
    "regression",
    [],
    ["feat_a"],
    {},
    {"key": "feat_a"},
    {"key": ["x"]},
    "x" * 300,
)
#: Where in the mapping a mutation lands: the top level, a section, or one entry.
LEVELS = ((), ("modalities",), ("targets",), ("modalities", "b"), ("targets", "score"))
#: (suffix, text) of mappings that are hard on a parser: an alias bomb ("billion laughs": 10**9
#: list entries from 1 KB of YAML, here where a message would print the value), deep nesting,
#: unhashable keys, a Python tag, two documents, a byte-order mark.
CRAFTED = (
    (
        ".yaml",
        "modalities: {a: feat_a}\nsplit: [&a [x, x, x, x, x, x, x, x, x, x], "
        + ", ".join(
            f"&{c} [{', '.join([f'*{p}'] * 10)}]"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "]\n",
    ),
    (".yaml", "modalities: {a: {key: feat_a}}\ndefault_target: *x\n"),
    (".yaml", "modalities: " + "[" * 5000 + "]" * 5000 + "\n"),
    (".yaml", "modalities: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"),
    (".json", '{"modalities": ' + "[" * 100000 + "]" * 100000 + "}"),
    (".yaml", "modalities:\n  ? [a, b]\n  : feat_a\n"),
    (".yaml", "%YAML 1.1\n--- !!python/object:os.system\nargs: [echo hi]\n"),
    (".yaml", "modalities: {a: feat_a}\n---\nmodalities: {b: feat_b}\n"),
    (".yaml", "\ufeffmodalities: {a: feat_a}\n"),
)


@dataclass(frozen=True)
class Edit:
    level: int
    key: int
    op: str  # drop, rename, set
    value: int


edits = st.lists(
    st.builds(
        Edit,
        st.integers(0, len(LEVELS) - 1),
        st.integers(0, 8),
        st.sampled_from(("drop", "rename", "set")),
        st.integers(0, len(VALUES) - 1),
    ),
    max_size=3,
)


def edit_mapping(mapping: dict[str, Any], changes: list[Edit]) -> Any:
    doc = json.loads(json.dumps(mapping))  # a deep copy
    for e in changes:
        node: Any = doc
        for part in LEVELS[e.level]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not node:
            continue
        key = list(node)[e.key % len(node)]
        value = json.loads(json.dumps(VALUES[e.value]))  # a copy: never a node inside itself
        if e.op == "drop":
            del node[key]
        elif e.op == "rename" and isinstance(value, str):
            node[value] = node.pop(key)
        else:
            node[key] = value
    return doc


@FUZZ
@given(
    suffix=st.sampled_from([".yaml", ".json"]),
    changes=edits,
    raw=byte_mutations() | st.just([]),
)
def test_mapping(sandbox: Sandbox, tmp_path_factory, suffix, changes, raw):
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as d:
        path = Path(d) / "data.npz"
        np.savez(path, **seed_arrays(convention=False))
        side = Path(d) / ("data" + suffix)
        doc = edit_mapping(MAPPING, changes)
        text = json.dumps(doc) if suffix == ".json" else yaml.safe_dump(doc)
        side.write_bytes(apply_bytes(text.encode(), raw))
        check(sandbox.run("arrays", path=str(path)), path, side)


def test_seeds_load(sandbox: Sandbox, tmp_path):
    """The unmutated seeds load: the fuzz tests start from valid files."""
    for convention in (False, True):
        arrays = seed_arrays(convention)
        npz, h5 = tmp_path / f"{convention}.npz", tmp_path / f"{convention}.h5"
        write_npz(npz, arrays, {}, [], deflate=False)
        write_h5(h5, arrays, {}, "gzip")
        for path in (npz, h5):
            if not convention:
                path.with_name(path.name + ".yaml").write_text(yaml.safe_dump(MAPPING))
            outcome = sandbox.run("arrays", path=str(path))
            assert outcome.kind == "ok", outcome.detail


@pytest.mark.parametrize("crafted", range(len(CRAFTED)))
def test_crafted_mappings(sandbox: Sandbox, tmp_path, crafted):
    suffix, text = CRAFTED[crafted]
    path, side = tmp_path / "data.npz", tmp_path / ("data" + suffix)
    np.savez(path, **seed_arrays(convention=False))
    side.write_text(text)
    check(sandbox.run("arrays", path=str(path)), path, side)
