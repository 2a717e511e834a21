"""The restricted unpickler: data pickles load, code-running pickles are refused unrun."""

import os
import pickle

import numpy as np
import pytest

from mmfactor.data.safe_pickle import load_pickle, loads_safe
from mmfactor.errors import InputError


def sample():
    return {
        "train": {
            "vision": np.random.default_rng(0).normal(size=(3, 4, 2)).astype(np.float32),
            "labels": np.array([[[0.5]], [[-1.0]], [[2.0]]]),
            "id": np.array(["a$_$1", "b$_$2", "c$_$3"], dtype=object),
            "raw": np.array([b"x", b"yy", b"z"]),
            "count": np.int64(3),
            "meta": [("k", 1.5), {"s": {1, 2}}, None, True, b"\x00\xff"],
        }
    }


def assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        # exact: a pickle round trip copies the values (floats included), it computes none
        assert a.dtype == b.dtype and np.array_equal(a, b)
    else:
        assert a == b  # exact: copied values (floats included)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_data_pickles_round_trip(tmp_path, protocol):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(sample(), protocol=protocol))
    assert_same(load_pickle(path), sample())


def test_numpy1_module_names_load():
    """Files written by NumPy 1.x name numpy.core.*; NumPy 2 serves it as numpy._core."""
    raw = pickle.dumps(sample(), protocol=2)
    old = raw.replace(b"cnumpy._core.", b"cnumpy.core.")
    assert b"cnumpy.core.multiarray" in old or np.__version__.startswith("1.")
    assert_same(loads_safe(old), sample())


class RunsCode:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class Custom:
    pass


@pytest.mark.parametrize("protocol", [2, 5])
def test_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path, protocol):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": RunsCode(marker)}, protocol=protocol))
    with pytest.raises(InputError, match=r"evil\.pkl: refusing to load (posix|os)\.system"):
        load_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj, name",
    [(Custom(), "Custom"), (eval, "builtins.eval"), (np.load, "numpy.load")],
)
def test_other_globals_are_refused(obj, name):
    with pytest.raises(InputError, match=f"refusing to load .*{name}"):
        loads_safe(pickle.dumps(obj))


def test_truncated_missing_and_non_pickle_files(tmp_path):
    whole = pickle.dumps(sample())
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut\.pkl: not a readable pickle"):
        load_pickle(cut)
    text = tmp_path / "text.pkl"
    text.write_text("hello")
    with pytest.raises(InputError, match=r"text\.pkl: not a readable pickle"):
        load_pickle(text)
    with pytest.raises(InputError, match="no such file"):
        load_pickle(tmp_path / "absent.pkl")


def test_python2_strings_read_as_latin1():
    # {'key': '\xe9\xe8'} as Python 2 pickles it: SHORT_BINSTRING (a byte str, no encoding).
    py2 = b"\x80\x02}q\x00U\x03keyq\x01U\x02\xe9\xe8q\x02s."
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(py2)  # Python 3's default ASCII decoding fails
    assert loads_safe(py2) == {"key": "\xe9\xe8"}
