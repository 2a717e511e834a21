"""The mapping of an ``arrays`` file: which array is which modality, target, split, presence
flag or length array, read from a side file, embedded in the file, or taken from the naming
convention, and normalised to one schema (:mod:`mmfactor.data.array_files` uses it)."""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mmfactor.data.array_sources import keys_hint, one_line
from mmfactor.data.files import file_error
from mmfactor.errors import InputError
from mmfactor.yamlio import load_yaml_text

NDIM_BY_KIND = {"vector": 2, "sequence": 3, "image": 4}
_TARGET_KINDS = ("classification", "regression")
_TOP_FIELDS = ("modalities", "targets", "split", "default_target")
_MODALITY_FIELDS = ("key", "kind", "lengths", "present")
_TARGET_FIELDS = ("key", "kind", "sentiment")
_SIDE_SUFFIXES = (".yaml", ".yml", ".json")
# Values of a mapping shown in messages: YAML aliases can make a 1 KB file a list of 10**9
# entries ("billion laughs"), whose full repr would never finish.
_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 80
_SHOW.maxlevel, _SHOW.maxlist, _SHOW.maxdict = 2, 4, 4


def _side_file(path: Path) -> Path | None:
    for base in (path.name, path.stem):
        for suffix in _SIDE_SUFFIXES:
            candidate = path.with_name(base + suffix)
            if candidate.is_file():
                return candidate
    return None


def _read_mapping_file(where: Path) -> Any:
    try:
        text = where.read_text(encoding="utf-8")
        return json.loads(text) if where.suffix.lower() == ".json" else load_yaml_text(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise InputError(f"{where}: cannot parse the mapping: {line}{exc.problem}") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where}: cannot parse the mapping: line {exc.lineno}: {exc.msg}"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{where}: cannot read the mapping: {one_line(exc)}") from None
    except RecursionError:  # both parsers recurse once per level of nesting
        raise InputError(f"{where}: cannot parse the mapping: nested too deeply") from None


def _entry(
    where: str, section: str, name: str, entry: Any, fields: tuple[str, ...]
) -> dict[str, Any]:
    if isinstance(entry, str):
        entry = {"key": entry}
    elif entry is None:
        entry = {}
    elif not isinstance(entry, Mapping):
        raise file_error(
            where,
            None,
            f"{section}.{name}",
            f"expected an array key or a mapping of "
            f"{', '.join(fields)}, got {type(entry).__name__}",
        )
    for field in entry:
        if field not in fields:
            raise file_error(
                where,
                None,
                f"{section}.{name}.{field}",
                f"unknown entry; expected one of {', '.join(fields)}",
            )
    out = {f: entry.get(f) for f in fields}
    out["key"] = name if out["key"] is None else out["key"]
    for field in ("key", "lengths", "present"):
        if field in out and out[field] is not None and not isinstance(out[field], str):
            raise file_error(
                where,
                None,
                f"{section}.{name}.{field}",
                f"expected an array key (a string), got {_SHOW.repr(out[field])}",
            )
    return out


def _normalise(raw: Any, where: str) -> dict[str, Any]:
    """The mapping in its full form, its schema checked (not yet against the file)."""
    if not isinstance(raw, Mapping):
        raise file_error(
            where,
            None,
            None,
            f"the mapping must be a dict with {', '.join(_TOP_FIELDS)}; got {type(raw).__name__}",
        )
    for field in raw:
        if field not in _TOP_FIELDS:
            raise file_error(
                where, None, str(field), f"unknown mapping entry; expected {', '.join(_TOP_FIELDS)}"
            )
    mods_raw = raw.get("modalities")
    if not isinstance(mods_raw, Mapping) or not mods_raw:
        raise file_error(where, None, "modalities", "the mapping declares no modalities")
    mods = {}
    for name, entry in mods_raw.items():
        m = _entry(where, "modalities", str(name), entry, _MODALITY_FIELDS)
        if m["kind"] is not None and (
            not isinstance(m["kind"], str) or m["kind"] not in NDIM_BY_KIND
        ):
            raise file_error(
                where,
                None,
                f"modalities.{name}.kind",
                f"unknown kind {_SHOW.repr(m['kind'])}; expected vector, sequence or image",
            )
        mods[str(name)] = m
    tgts_raw = raw.get("targets") or {}
    if not isinstance(tgts_raw, Mapping):
        raise file_error(where, None, "targets", "expected a mapping of target names")
    tgts = {}
    for name, entry in tgts_raw.items():
        t = _entry(where, "targets", str(name), entry, _TARGET_FIELDS)
        if t["kind"] is not None and t["kind"] not in _TARGET_KINDS:
            raise file_error(
                where,
                None,
                f"targets.{name}.kind",
                f"unknown kind {_SHOW.repr(t['kind'])}; expected classification or regression",
            )
        t["sentiment"] = False if t["sentiment"] is None else t["sentiment"]
        if not isinstance(t["sentiment"], bool):
            raise file_error(
                where,
                None,
                f"targets.{name}.sentiment",
                f"expected true or false, got {_SHOW.repr(t['sentiment'])}",
            )
        if t["sentiment"] and t["kind"] == "classification":
            raise file_error(
                where,
                None,
                f"targets.{name}.sentiment",
                "sentiment marks continuous labels: the target must be a regression target",
            )
        tgts[str(name)] = t
    split = raw.get("split")
    if split is not None and not isinstance(split, str):
        raise file_error(where, None, "split", f"expected an array key, got {_SHOW.repr(split)}")
    default = raw.get("default_target")
    if default is not None and (not isinstance(default, str | int) or str(default) not in tgts):
        raise file_error(
            where,
            None,
            "default_target",
            f"{_SHOW.repr(default)} is not a target; targets: {', '.join(tgts) or '(none)'}",
        )
    return {
        "modalities": mods,
        "targets": tgts,
        "split": split,
        "default_target": None if default is None else str(default),
    }


def _convention(path: Path, keys: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The mapping implied by the array names; the names it leaves unused."""
    mods: dict[str, Any] = {}
    tgts: dict[str, Any] = {}
    extras: dict[str, tuple[str, str]] = {}
    unused = []
    for k in keys:
        if k.startswith("x_") and len(k) > 2:
            mods[k[2:]] = {"key": k, "kind": None, "lengths": None, "present": None}
        elif k == "y" or (k.startswith("y_") and len(k) > 2):
            tgts[k if k == "y" else k[2:]] = {"key": k, "kind": None, "sentiment": False}
        elif k.startswith("present_") and len(k) > 8:
            extras[k] = ("present", k[8:])
        elif k.startswith("lengths_") and len(k) > 8:
            extras[k] = ("lengths", k[8:])
        elif k != "split":
            unused.append(k)
    if not mods:
        looked = ", ".join(f"{path.name}{s}" for s in _SIDE_SUFFIXES)
        raise file_error(
            path,
            None,
            None,
            f"no mapping (no mapping option, no side file such as {looked}) "
            f"and no arrays named x_<modality>; arrays: {keys_hint(keys)}",
        )
    for k, (field, m) in extras.items():
        if m not in mods:
            raise file_error(
                path, None, k, f"{field} of modality {m!r}, but the file has no array 'x_{m}'"
            )
        mods[m][field] = k
    mapping = {
        "modalities": mods,
        "targets": tgts,
        "split": "split" if "split" in keys else None,
        "default_target": "y" if "y" in tgts else None,
    }
    return mapping, unused


def resolve_mapping(
    path: Path, mapping: str | Path | Mapping[str, Any] | None, keys: list[str]
) -> tuple[dict[str, Any], str, str | None, list[str]]:
    """(mapping, where-prefix for messages, mapping source, notes)."""
    if mapping is None:
        side = _side_file(path)
        if side is None:
            resolved, unused = _convention(path, keys)
            notes = [f"arrays ignored (not x_/y/y_/split/present_/lengths_): {keys_hint(unused)}"]
            return resolved, str(path), None, notes if unused else []
        mapping = side
    if isinstance(mapping, Mapping):
        source = "the mapping option"
        raw: Any = mapping
    elif isinstance(mapping, str | Path):
        mp = Path(mapping).expanduser()
        if not mp.is_file() and not mp.is_absolute() and (path.parent / mp).is_file():
            mp = path.parent / mp
        if not mp.is_file():
            raise InputError(f"{mp}: no such mapping file (the mapping of {path})")
        source = str(mp)
        raw = _read_mapping_file(mp)
    else:
        raise InputError(
            f"{path}: the mapping option must be a dict or a YAML/JSON file, got "
            f"{type(mapping).__name__}"
        )
    where = f"{path} (mapping {source})"
    resolved = _normalise(raw, where)
    refs = [
        (f"modalities.{m}", e[f])
        for m, e in resolved["modalities"].items()
        for f in ("key", "lengths", "present")
        if e[f] is not None
    ]
    refs += [(f"targets.{t}", e["key"]) for t, e in resolved["targets"].items()]
    if resolved["split"] is not None:
        refs.append(("split", resolved["split"]))
    known = set(keys)
    for ref, key in refs:
        if key not in known:
            raise file_error(
                where,
                None,
                key,
                f"missing from the file (named by {ref}); arrays: {keys_hint(keys)}",
            )
    return resolved, where, source, []
