"""Fuzzed MultiBench and MMSA pickles, mutated from the files the example writers make
(:mod:`mmfactor.data.examples`), and crafted pickles that declare huge sizes. Every case must
load (and give a batch) or fail with an ``InputError`` of one line naming the file; never
another exception, a crash, a hang or a memory blow-up (the sandbox caps both)."""

from __future__ import annotations

import functools
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.mutate import (
    FUZZ,
    HUGE_ROWS,
    apply_bytes,
    apply_structure,
    byte_mutations,
    structural_mutations,
)
from tests.fuzz.sandbox import Sandbox, check

from mmfactor.data.examples import write_mmsa, write_multibench

MULTIBENCH = ("mosi_raw", "mosei", "humor")  # string ids, [video, start, end] rows, numbers
MMSA = ((False, False), (True, False), (False, True))  # (aligned, sims)
SMALL_MMSA = {"text": 8, "audio": 3, "vision": 4, "t_text": 6, "t_audio": 7, "t_vision": 5}


@functools.cache
def seed(loader: str, variant: Any) -> dict[str, Any]:
    """The document a writer pickles: small splits in the exact layout of the releases."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "seed.pkl"
        if loader == "multibench":
            return write_multibench(path, family=variant, sizes=(6, 4, 4), steps=5, empty=1)
        aligned, sims = variant
        return write_mmsa(path, aligned=aligned, sims=sims, sizes=(6, 4, 4), dims=SMALL_MMSA)


class Lying:
    """Pickles as ``array`` but with a state that claims ``rows`` rows (the data stay)."""

    def __init__(self, array: np.ndarray, rows: int) -> None:
        self.array, self.rows = array, rows

    def __reduce__(self) -> Any:
        rebuild, args, (version, shape, dtype, fortran, raw) = self.array.__reduce__()
        return rebuild, args, (version, (self.rows, *shape[1:]), dtype, fortran, raw)


@dataclass(frozen=True)
class Claim:
    """Array ``key`` of split ``split`` claims ``rows`` rows in its pickled state."""

    split: int
    key: int
    rows: int


def mutate(
    doc: dict[str, Any], level: int, structure: list[Any], claim: Claim | None
) -> dict[str, Any]:
    """``doc`` after ``structure`` at the top level (``level`` -1) or in split ``level``."""
    out = {k: dict(v) for k, v in doc.items()}
    if level < 0:
        out = apply_structure(out, structure)
    else:
        split = list(out)[level % len(out)]
        out[split] = apply_structure(out[split], structure)
    if claim is not None:
        split = list(doc)[claim.split % len(doc)]
        fields = out.get(split)
        if isinstance(fields, dict) and fields:
            key = list(fields)[claim.key % len(fields)]
            if isinstance(fields[key], np.ndarray) and fields[key].ndim:
                fields[key] = Lying(fields[key], claim.rows)
    return out


def dump(doc: Any, protocol: int, raw: list[Any]) -> bytes:
    return apply_bytes(pickle.dumps(doc, protocol=protocol), raw)


claims = st.none() | st.builds(
    Claim, st.integers(0, 2), st.integers(0, 16), st.sampled_from((3, *HUGE_ROWS))
)
common = {
    "level": st.integers(-1, 2),
    "structure": structural_mutations() | st.just([]),
    "claim": claims,
    "protocol": st.sampled_from([2, 4, 5]),
    "raw": byte_mutations() | st.just([]),
}


@FUZZ
@given(family=st.sampled_from(MULTIBENCH), drop_empty=st.booleans(), **common)
def test_multibench(
    sandbox: Sandbox, tmp_path_factory, family, drop_empty, level, structure, claim, protocol, raw
):
    doc = mutate(seed("multibench", family), level, structure, claim)
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as d:
        path = Path(d) / "mosi_raw.pkl"
        path.write_bytes(dump(doc, protocol, raw))
        check(sandbox.run("multibench", path=str(path), drop_empty=drop_empty), path)


@FUZZ
@given(variant=st.sampled_from(MMSA), text=st.sampled_from(["features", "bert"]), **common)
def test_mmsa(
    sandbox: Sandbox, tmp_path_factory, variant, text, level, structure, claim, protocol, raw
):
    doc = mutate(seed("mmsa", variant), level, structure, claim)
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as d:
        path = Path(d) / "unaligned_50.pkl"
        path.write_bytes(dump(doc, protocol, raw))
        check(sandbox.run("mmsa", path=str(path), text=text), path)


def test_seeds_load(sandbox: Sandbox, tmp_path):
    """The unmutated seeds load: the fuzz tests start from valid files."""
    for family in MULTIBENCH:
        path = tmp_path / "mosi_raw.pkl"
        path.write_bytes(pickle.dumps(seed("multibench", family), protocol=4))
        outcome = sandbox.run("multibench", path=str(path))
        assert outcome.kind == "ok", outcome.detail
    for variant in MMSA:
        path = tmp_path / "unaligned_50.pkl"
        path.write_bytes(pickle.dumps(seed("mmsa", variant), protocol=4))
        outcome = sandbox.run("mmsa", path=str(path))
        assert outcome.kind == "ok", outcome.detail


# ----------------------------------------------------------------------------- crafted


def _long(n: int) -> bytes:
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()  # GLOBAL


def _str(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data  # SHORT_BINUNICODE


_LEN = (10**12).to_bytes(8, "little")


def _shared_lists() -> bytes:
    """An MMSA file whose ``audio_lengths`` are nested lists of 10**10 entries that repeat
    one list by reference: a few KB of pickle."""
    lists: Any = [0] * 10
    for _ in range(9):
        lists = [lists] * 10
    doc = seed("mmsa", (False, False))
    return pickle.dumps({s: {**v, "audio_lengths": lists} for s, v in doc.items()})


#: Pickles that declare huge sizes or shapes, each a few bytes to a few KB (or a function
#: that makes one).
CRAFTED: dict[str, Any] = {
    "frame of 10**12 bytes": b"\x80\x04\x95" + _LEN + b"N.",
    "bytes of 10**12 bytes": b"\x80\x04\x8e" + _LEN + b"abc.",
    "str of 10**12 bytes": b"\x80\x04\x8d" + _LEN + b"abc.",
    "bytearray of 10**12 bytes": b"\x80\x05\x96" + _LEN + b"abc.",
    "bytearray(10**12)": b"\x80\x02" + _global("builtins", "bytearray") + _long(10**12) + b"\x85R.",
    "bytearray(3 * 10**9)": b"\x80\x02"
    + _global("builtins", "bytearray")
    + _long(3 * 10**9)
    + b"\x85R.",
    "set(range(10**10))": b"\x80\x02"
    + _global("builtins", "set")
    + _global("builtins", "range")
    + _long(10**10)
    + b"\x85R\x85R.",
    "frozenset(range(10**10))": b"\x80\x02"
    + _global("builtins", "frozenset")
    + _global("builtins", "range")
    + _long(10**10)
    + b"\x85R\x85R.",
    "_reconstruct of 10**12 rows": b"\x80\x02"
    + _global("numpy.core.multiarray", "_reconstruct")
    + _global("numpy", "ndarray")
    + _long(10**12)
    + b"\x85"
    + _str("f8")
    + b"\x87R.",
    "ndarray(10**12)": b"\x80\x02" + _global("numpy", "ndarray") + _long(10**12) + b"\x85R.",
    "_frombuffer of 10**12 rows": b"\x80\x02"
    + _global("numpy.core.numeric", "_frombuffer")
    + b"(C\x08"
    + bytes(8)
    + _global("numpy", "dtype")
    + _str("f8")
    + b"\x85R"
    + _long(10**12)
    + b"\x85"
    + _str("C")
    + b"tR.",
    "float array state of 10**12 rows": pickle.dumps(Lying(np.zeros((3, 2)), 10**12)),
    "object array state of 10**12 rows": pickle.dumps(Lying(np.array([b"a", 1], object), 10**12)),
    "object array state of 3 rows, 2 stored": pickle.dumps(Lying(np.array([b"a", 1], object), 3)),
    "a global named across lines": b"\x80\x04" + _str("numpy\nx") + _str("y\nz") + b"\x93.",
    "lists of 10**10 shared entries": _shared_lists,
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_pickles(sandbox: Sandbox, tmp_path, name):
    path = tmp_path / "unaligned_50.pkl"
    path.write_bytes(CRAFTED[name]() if callable(CRAFTED[name]) else CRAFTED[name])
    check(sandbox.run("pickle", path=str(path)), path)
    check(sandbox.run("mmsa", path=str(path)), path)
