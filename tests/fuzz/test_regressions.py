"""One plain test per loader bug the fuzzing found, each with the input that triggered it.
Cases that would hang, crash or fill memory if the bug came back run in the sandbox."""

from __future__ import annotations

import io
import pickle
import zipfile

import h5py
import numpy as np
import pytest
import yaml
from tests.fuzz.mutate import FlipBits
from tests.fuzz.sandbox import Sandbox
from tests.fuzz.test_fuzz_arrays import CRAFTED as CRAFTED_MAPPINGS
from tests.fuzz.test_fuzz_arrays import MAPPING, seed_arrays
from tests.fuzz.test_fuzz_pickles import CRAFTED, SMALL_MMSA, Lying, dump, seed

import mmfactor as mf
from mmfactor.data.examples import write_mmsa, write_multibench
from mmfactor.data.safe_pickle import loads_safe
from mmfactor.errors import InputError


def load_arrays(path, **options):
    return mf.datasets.load("arrays", path=str(path), **options)


def one_line_error(outcome_or_exc) -> str:
    message = str(outcome_or_exc)
    assert len(message.splitlines()) == 1, message
    return message


# ----------------------------------------------------------------------------- mappings


def test_deeply_nested_mapping_is_an_input_error(tmp_path):
    """Was a RecursionError out of PyYAML (and json) on 5000 nested brackets."""
    np.savez(tmp_path / "data.npz", **seed_arrays(convention=False))
    (tmp_path / "data.yaml").write_text("modalities: " + "[" * 5000 + "]" * 5000)
    with pytest.raises(InputError, match="data.yaml: cannot parse the mapping: nested too deeply"):
        load_arrays(tmp_path / "data.npz")
    (tmp_path / "data.yaml").unlink()
    (tmp_path / "data.json").write_text('{"modalities": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(InputError, match="data.json: cannot parse the mapping: nested too deeply"):
        load_arrays(tmp_path / "data.npz")


def test_alias_bomb_in_a_mapping_gives_a_short_message(sandbox: Sandbox, tmp_path):
    """Was a hang: the message printed the repr of 10**9 list entries made by YAML aliases."""
    np.savez(tmp_path / "data.npz", **seed_arrays(convention=False))
    (tmp_path / "data.yaml").write_text(CRAFTED_MAPPINGS[0][1])  # 10**9 entries in 300 bytes
    outcome = sandbox.run("arrays", path=str(tmp_path / "data.npz"))
    assert outcome.kind == "input_error", outcome.detail
    assert "key 'split': expected an array key, got [['x', 'x', 'x', 'x', ...]" in outcome.detail
    assert len(outcome.detail) < 400


def test_modality_kind_that_is_a_list(tmp_path):
    """Was a TypeError (unhashable list) from the kind look-up."""
    np.savez(tmp_path / "data.npz", **seed_arrays(convention=False))
    mapping = {"modalities": {"a": {"key": "feat_a", "kind": ["vector"]}}}
    with pytest.raises(InputError, match=r"modalities\.a\.kind.*unknown kind \['vector'\]"):
        load_arrays(tmp_path / "data.npz", mapping=mapping)
    mapping = {"modalities": {"a": "feat_a"}, "targets": {"y": "lab"}, "default_target": ["y"]}
    with pytest.raises(InputError, match=r"\['y'\] is not a target"):
        load_arrays(tmp_path / "data.npz", mapping=mapping)


# ----------------------------------------------------------------------------- .npz


def _npz(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(array: np.ndarray, shape=None) -> bytes:
    buf = io.BytesIO()
    header = np.lib.format.header_data_from_array_1_0(array)
    header["shape"] = array.shape if shape is None else shape
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + array.tobytes()


def test_npz_header_claiming_huge_rows(sandbox: Sandbox, tmp_path):
    """Was a MemoryError: NumPy allocates the rows a header claims before reading them."""
    path = tmp_path / "data.npz"
    x = np.zeros((4, 3), np.float32)
    _npz(path, {"x_a.npy": _npy(x, (2**31 + 1, 3)), "y.npy": _npy(np.arange(4))})
    outcome = sandbox.run("arrays", path=str(path))
    assert outcome.kind == "input_error", outcome.detail
    assert (
        "key 'x_a': the header declares shape (2147483649, 3) of float32 (25769803788 bytes), "
        "but 48 bytes are stored (truncated or corrupt?)"
    ) in outcome.detail


def test_npz_member_claiming_more_than_the_archive_holds(tmp_path):
    """A crafted file whose header and zip directory agree on 12 MB that the 300-byte
    archive does not hold: refused before NumPy allocates the 12 MB."""
    path = tmp_path / "data.npz"
    x = np.zeros((4, 3), np.float32)
    npy = _npy(x, (10**6, 3))
    _npz(path, {"x_a.npy": npy})
    lie = len(npy) - x.nbytes + 12 * 10**6
    raw = path.read_bytes()
    assert raw.count(len(npy).to_bytes(4, "little")) == 4  # sizes: local header, directory
    path.write_bytes(raw.replace(len(npy).to_bytes(4, "little"), lie.to_bytes(4, "little")))
    with pytest.raises(InputError, match=f"key 'x_a': claims {lie} bytes, more than the"):
        load_arrays(path)


@pytest.mark.parametrize(
    "header", [b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, (}", b"{'descr': <f4}"]
)
def test_npz_header_that_does_not_parse(tmp_path, header):
    """Was tokenize.TokenError / SyntaxError out of NumPy's header parser (a flipped bit)."""
    header = header + b" " * (63 - len(header) - 10) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(12)
    _npz(tmp_path / "data.npz", {"x_a.npy": npy})
    with pytest.raises(InputError, match="key 'x_a': cannot read the archive"):
        load_arrays(tmp_path / "data.npz")


def test_npz_member_that_is_not_an_array(tmp_path):
    """A member without the .npy magic: NumPy returns its raw bytes (then an AttributeError)."""
    _npz(tmp_path / "data.npz", {"x_a": b"hello", "y.npy": _npy(np.arange(4))})
    with pytest.raises(InputError, match="key 'x_a': not an .npy array"):
        load_arrays(tmp_path / "data.npz")


def test_npz_needing_a_zip_version_python_lacks(tmp_path):
    """Was a NotImplementedError out of zipfile: a flipped bit made the central directory
    ask for zip version 6.4 (found by a 2000-case campaign)."""
    path = tmp_path / "data.npz"
    np.savez(path, **seed_arrays(convention=True))
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central directory entry
    data[entry + 6 : entry + 8] = (64).to_bytes(2, "little")  # version needed to extract
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt") as info:
        load_arrays(path)
    assert str(path) in one_line_error(info.value)


def test_array_name_with_a_line_break(tmp_path):
    """Was a message of two lines: the list of array names printed a name holding '\\n'."""
    arrays = seed_arrays(convention=False)
    arrays["a\nb"] = arrays.pop("feat_a")
    np.savez(tmp_path / "data.npz", **arrays)
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(MAPPING))
    with pytest.raises(InputError) as err:
        load_arrays(tmp_path / "data.npz")
    assert "arrays: feat_b, len_b, pres_b, s, lab, part, a\\nb" in one_line_error(err.value)


# ----------------------------------------------------------------------------- HDF5


def test_hdf5_datasets_declaring_unwritten_rows(sandbox: Sandbox, tmp_path):
    """Was a MemoryError: every data set declared 2**31 + 1 rows, none written (contiguous)
    or 5 of them (chunked); the split array was read whole."""
    arrays = seed_arrays(convention=True)
    for layout in ("contiguous", "chunked"):
        path = tmp_path / f"{layout}.h5"
        with h5py.File(path, "w") as f:
            for key, a in arrays.items():
                a = np.char.encode(a) if a.dtype.kind == "U" else a
                chunks = (5, *a.shape[1:]) if layout == "chunked" else None
                shape = (2**31 + 1, *a.shape[1:])
                ds = f.create_dataset(key, shape=shape, dtype=a.dtype, chunks=chunks)
                if chunks:
                    ds[:5] = a[:5]
        outcome = sandbox.run("arrays", path=str(path))
        assert outcome.kind == "input_error", outcome.detail
        assert "key 'x_a': shape (2147483649, 4) declared, but not all" in outcome.detail


def test_hdf5_name_that_is_not_utf8(tmp_path):
    """Was a TypeError: h5py lists a name that is not UTF-8 as bytes (a flipped bit)."""
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x_a", data=np.zeros((6, 2)))
        f.create_dataset(b"x_\xff", data=np.zeros((6, 2)))
    with pytest.raises(InputError, match=r"a data set name that is not UTF-8: b'x_\\xff'"):
        load_arrays(path)


# ----------------------------------------------------------------------------- pickles


@pytest.mark.parametrize("opcode", [b"\x95", b"\x8e", b"\x8d", b"\x96"])
def test_pickle_length_field_larger_than_memory(sandbox: Sandbox, tmp_path, opcode):
    """Was a MemoryError: a frame, bytes, str or bytearray declaring 10**12 bytes."""
    path = tmp_path / "f.pkl"
    path.write_bytes(b"\x80\x05" + opcode + (10**12).to_bytes(8, "little") + b"N.")
    outcome = sandbox.run("pickle", path=str(path))
    assert outcome.kind == "input_error", outcome.detail
    assert "f.pkl: not a readable pickle (truncated or corrupt?): it declares" in outcome.detail


def test_pickle_calls_that_allocate_are_refused(sandbox: Sandbox, tmp_path):
    """Were a MemoryError or memory filled: bytearray(n), set(range(n)), frozenset(range(n)),
    numpy.ndarray(shape), _reconstruct with a shape (NumPy's own pickles start empty)."""
    expected = {
        "bytearray(10**12)": "refusing bytearray(1000000000000): only stored items",
        "set(range(10**10))": "refusing set(range(0, 10000000000)): only stored items",
        "frozenset(range(10**10))": "refusing frozenset(range(0, 10000000000))",
        "ndarray(10**12)": "refusing a call of numpy.ndarray",
        "_reconstruct of 10**12 rows": "_reconstruct of shape (1000000000000,)",
    }
    for name, message in expected.items():
        path = tmp_path / "f.pkl"
        path.write_bytes(CRAFTED[name])
        outcome = sandbox.run("pickle", path=str(path))
        assert outcome.kind == "input_error" and message in outcome.detail, (name, outcome)


def test_object_array_state_with_fewer_items_than_rows(sandbox: Sandbox, tmp_path):
    """NumPy reads as many items as the shape claims, past the end of a shorter list: 3 rows
    of 2 items loaded garbage, 10**12 rows crashed (or filled memory)."""
    ids = np.array([b"a", 1], dtype=object)
    with pytest.raises(InputError, match=r"an object array of shape \(3,\) holds 2 items"):
        loads_safe(pickle.dumps(Lying(ids, 3)))
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps(Lying(ids, 10**12)))
    outcome = sandbox.run("pickle", path=str(path))
    assert "an object array of shape (1000000000000,) holds 2 items" in outcome.detail, outcome
    # Object arrays themselves still load, as plain ndarrays.
    back = loads_safe(pickle.dumps({"id": ids, "rows": [ids, (ids,)]}))
    assert type(back["id"]) is np.ndarray and type(back["rows"][1][0]) is np.ndarray
    assert back["id"].tolist() == [b"a", 1]


def test_global_named_across_lines():
    """Was a message of several lines: the refused global's name holds line breaks."""
    with pytest.raises(InputError) as err:
        loads_safe(CRAFTED["a global named across lines"])
    assert "refusing to load 'numpy\\nx.y\\nz'" in one_line_error(err.value)


def test_lists_repeated_by_reference(sandbox: Sandbox, tmp_path):
    """Was a MemoryError: nested lists of 10**10 entries, one list repeated by reference in
    a few KB of pickle, given to np.asarray."""
    path = tmp_path / "unaligned_50.pkl"
    path.write_bytes(CRAFTED["lists of 10**10 shared entries"]())
    outcome = sandbox.run("mmsa", path=str(path))
    assert outcome.kind == "input_error", outcome.detail
    assert "key 'audio_lengths': nested lists of 10000000000 entries" in outcome.detail


def test_splits_with_different_feature_widths(tmp_path):
    """Was a ValueError from np.concatenate: split 'valid' had text and audio swapped."""
    path = tmp_path / "aligned_50.pkl"
    doc = write_mmsa(path, aligned=True, sizes=(6, 4, 4), dims=SMALL_MMSA)
    doc["valid"]["text"], doc["valid"]["audio"] = doc["valid"]["audio"], doc["valid"]["text"]
    path.write_bytes(pickle.dumps(doc))
    with pytest.raises(InputError, match=r"aligned_50.pkl: split 'valid', key 'text': shape"):
        mf.datasets.load("mmsa", path=str(path))


def test_optional_key_in_some_splits_only(tmp_path):
    """Was a KeyError: split 'valid' had no 'id' (renamed), which split 'train' has."""
    path = tmp_path / "mosi_raw.pkl"
    doc = write_multibench(path, sizes=(6, 4, 4), steps=5, empty=1)
    doc["valid"]["x_a"] = doc["valid"].pop("id")
    path.write_bytes(pickle.dumps(doc))
    with pytest.raises(InputError, match="split 'valid', key 'id': missing, but split 'train'"):
        mf.datasets.load("multibench", path=str(path))


def test_pickle_key_with_a_line_break(tmp_path):
    """Was a message of two lines: 'missing (keys: ...)' printed a key holding '\\r'."""
    path = tmp_path / "mosi_raw.pkl"
    doc = write_multibench(path, sizes=(6, 4, 4), steps=5, empty=1)
    doc["train"]["\r"] = doc["train"].pop("vision")
    path.write_bytes(pickle.dumps(doc))
    with pytest.raises(InputError) as err:
        mf.datasets.load("multibench", path=str(path))
    assert "key 'vision': missing (keys: audio, text, labels, id, \\r)" in one_line_error(err.value)


def test_setitems_on_an_array_from_a_flipped_bit(tmp_path):
    """Was an IndexError: one flipped bit turned a BINPUT into SETITEMS, which NumPy's array
    on the stack took as ``array[key] = value`` (found by a 500-case campaign)."""
    path = tmp_path / "unaligned_50.pkl"
    path.write_bytes(dump(seed("mmsa", (False, False)), 2, [FlipBits((1474,))]))
    with pytest.raises(InputError, match="not a readable pickle") as info:
        mf.datasets.load("mmsa", path=str(path))
    assert str(path) in one_line_error(info.value)
