"""Files of a run. Output is atomic: written to a temporary file beside the target, then
renamed over it, so an interrupted run never leaves a half-written file where a complete one
is expected. Weights are read with ``torch.load(weights_only=True)``, and
:func:`rename_state_keys` maps the parameter names of older versions onto current ones."""

from __future__ import annotations

import json
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


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


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


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
