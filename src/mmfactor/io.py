"""Files of a run. Output is atomic: written to a temporary file beside the target, then
renamed over it, so an interrupted run never leaves a half-written file where a complete one
is expected. JSON is strict (:func:`write_json`: no ``NaN`` or ``Infinity``; such numbers
are ``null`` with the reason beside them). Weights are read with
``torch.load(weights_only=True)``, and :func:`rename_state_keys` maps the parameter names of
older versions onto current ones."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

import torch
import yaml

V = TypeVar("V")


def atomic_write(
    path: str | Path, write: Callable[[IO[bytes]], None], durable: bool = True
) -> None:
    """Call ``write(f)`` on a temporary binary file, then rename it to ``path``.

    ``durable`` also flushes the file to disk before the rename (survives power loss, not
    only a killed process)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    def write(f: IO[bytes]) -> None:
        f.write(text.encode())

    atomic_write(path, write)


NONFINITE = "_nonfinite"  # suffix of the key that says why a value beside it is null


def to_json_safe(obj: Any) -> Any:
    """``obj`` with only what strict JSON holds: every non-finite float (Python, NumPy, a 0-d
    array or tensor) becomes ``None``; in a mapping, key ``k`` then gets a sibling
    ``f"{k}_nonfinite"`` that says which (``"nan"``, ``"inf"`` or ``"-inf"``); in a list it
    is only ``None``. Arrays and tensors become lists, tuples lists, paths strings; other
    objects are left to ``json.dumps``. :func:`from_json_safe` undoes it."""
    if hasattr(obj, "tolist"):  # NumPy scalars and arrays, tensors
        obj = obj.tolist()
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            out[k] = to_json_safe(v)
            if out[k] is None and (why := _nonfinite(v)):
                out[f"{k}{NONFINITE}"] = why
        return out
    if isinstance(obj, list | tuple):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def from_json_safe(obj: Any) -> Any:
    """The inverse of :func:`to_json_safe` on parsed JSON: a ``None`` whose mapping records
    why (``k`` beside ``k_nonfinite``) is the float again and the note is dropped; list
    elements stay ``None``."""
    if isinstance(obj, list):
        return [from_json_safe(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    notes = set()
    for k, v in obj.items():
        why = obj.get(f"{k}{NONFINITE}") if isinstance(k, str) else None
        if v is None and why in ("nan", "inf", "-inf"):
            v = float(why)
            notes.add(f"{k}{NONFINITE}")
        out[k] = from_json_safe(v)
    return {k: v for k, v in out.items() if k not in notes}


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`to_json_safe` ``(obj)``: strict JSON, no ``NaN`` or
    ``Infinity`` (``allow_nan=False`` makes anything missed fail loudly instead)."""
    return json.dumps(to_json_safe(obj), allow_nan=False, **kwargs)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as strict JSON (:func:`dumps_json`), atomically."""
    write_text(path, dumps_json(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """A file written by :func:`write_json`, with its non-finite numbers restored."""
    return from_json_safe(json.loads(Path(path).read_text()))


def write_yaml(path: str | Path, obj: Mapping[str, Any]) -> None:
    """Write a mapping (a run config) as YAML in its own key order; tuples become lists."""
    write_text(path, yaml.safe_dump(_plain(obj), sort_keys=False))


def save_torch(path: str | Path, obj: Any) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path: str | Path, map_location: Any = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers only."""
    return torch.load(path, map_location=map_location, weights_only=True)


def rename_state_keys(state: Mapping[str, V], renamed: Mapping[str, str]) -> dict[str, V]:
    """``state`` (a state dict) with every key that starts with an old prefix of ``renamed``
    (``{old: new}``) starting with the new one instead; other keys, and the order, unchanged.
    The longest matching prefix wins. A prefix matches whole dotted names only.

    Example:
        >>> rename_state_keys({"head.w": 1, "headx.w": 2, "enc.b": 3}, {"head": "heads.y"})
        {'heads.y.w': 1, 'headx.w': 2, 'enc.b': 3}
    """
    olds = sorted(renamed, key=len, reverse=True)
    out = {}
    for key, value in state.items():
        for old in olds:
            if key == old or key.startswith(old + "."):
                key = renamed[old] + key[len(old) :]
                break
        out[key] = value
    return out


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _nonfinite(value: Any) -> str | None:
    """``"nan"``, ``"inf"`` or ``"-inf"`` for a non-finite float-like scalar, else None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, float) or math.isfinite(value):
        return None
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
