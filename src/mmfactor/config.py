"""Run configuration: sections ``data``, ``method``, ``train``, ``evaluate``.

Resolution order (later wins): engine defaults, the method's documented default for the
data set family, a user YAML file, ``section.key=value`` strings (``sets``; the CLI's
``--set``), and explicit options (``overrides``; the CLI's ``--epochs``, ``--seed``). Every
key is validated: a key that does not exist is an :class:`InputError` naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mmfactor.errors import InputError
from mmfactor.io import write_yaml
from mmfactor.train.options import TrainOptions, train_defaults
from mmfactor.yamlio import load_yaml_text

TRAIN_DEFAULTS: dict[str, Any] = train_defaults()
EVALUATE_DEFAULTS: dict[str, Any] = {
    "protocol": "linear-probe",
    "targets": None,
    "missing": [],
    "batch_size": 1024,
}


def dataset_family(name: str, options: Mapping[str, Any] | None = None) -> str:
    """The default-config family of a data set, as its registry entry declares it
    (:func:`mmfactor.data.registry.config_family`): its own name, or for example ``sequence`` for
    files of sequences (``multibench``, ``mmsa``) and sequence-kind synthetic data."""
    from mmfactor.data.registry import config_family

    return config_family(name, options)


def parse_set(item: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-3"`` -> ``(["train", "lr"], 0.001)``; values are parsed as YAML.

    ``item`` is one of :func:`resolve`'s ``sets``: errors name that argument (the CLI's
    ``--set``).
    """
    if "=" not in item:
        raise InputError(f"sets: expected section.key=value, got {item!r}", argument="sets")
    key, _, raw = item.partition("=")
    path = key.strip().split(".")
    if len(path) < 2 or path[0] not in ("data", "method", "train", "evaluate"):
        raise InputError(
            f"sets: the key of {item!r} must start with data., method., train. or evaluate.",
            argument="sets",
        )
    try:
        value = load_yaml_text(raw)
    except yaml.YAMLError as exc:
        raise InputError(
            f"sets: cannot parse the value of {item!r} ({exc.__class__.__name__})",
            argument="sets",
        ) from None
    return path, value


def _set_path(cfg: dict[str, Any], path: list[str], value: Any) -> None:
    node = cfg
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"config key {'.'.join(path)!r}: {part!r} is not a section")
    node[path[-1]] = value


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; an :class:`InputError` naming the file otherwise."""
    p = Path(path)
    try:
        doc = load_yaml_text(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such config file") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InputError(f"{p}: expected a mapping with sections data, method, train, evaluate")
    return doc


def resolve(
    method: str,
    data: str,
    *,
    data_options: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full, validated config of one run.

    Args:
        method: registry name; data: data set registry name.
        data_options: the data set's options (``path``, ``seed``, ...).
        config: a user config (for example read from YAML) to merge.
        sets: ``section.key=value`` strings.
        overrides: nested mapping merged last (explicit CLI options such as epochs).
    """
    from mmfactor.data.registry import loader_options
    from mmfactor.methods.registry import default_config, hyperparameters

    sets = list(sets)
    user = copy.deepcopy(dict(config or {}))
    unknown = [k for k in user if k not in ("data", "method", "train", "evaluate")]
    if unknown:
        raise InputError(
            f"config: unknown section {unknown[0]!r} (sections: data, method, train, evaluate)"
        )
    method = (user.get("method") or {}).get("name", method)
    data = (user.get("data") or {}).get("name", data)
    cfg: dict[str, Any] = {
        "data": {"name": data, **dict(data_options or {})},
        "method": {"name": method},
        "train": dict(TRAIN_DEFAULTS),
        "evaluate": copy.deepcopy(EVALUATE_DEFAULTS),
    }
    # The family (and so the method's defaults) depends on data options, which may come from
    # any later layer (e.g. sets=["data.kind=sequence"]): resolve the data section first.
    data_section = copy.deepcopy(cfg["data"])
    _merge(data_section, user.get("data") or {})
    for item in sets:
        path, value = parse_set(item)
        if path[0] == "data":
            _set_path(data_section, path[1:], value)
    _merge(data_section, (overrides or {}).get("data") or {})
    _merge(cfg, default_config(method, dataset_family(data, data_section)))
    _merge(cfg, user)
    for item in sets:
        path, value = parse_set(item)
        _set_path(cfg, path, value)
    _merge(cfg, overrides or {})
    cfg["method"]["name"], cfg["data"]["name"] = method, data

    _check_keys("train", cfg["train"], TRAIN_DEFAULTS)
    _check_keys("evaluate", cfg["evaluate"], EVALUATE_DEFAULTS)
    _check_keys("method", cfg["method"], {"name": None, **hyperparameters(method)})
    _check_keys("data", cfg["data"], {"name": None, **loader_options(data)})
    validate_train(cfg["train"])
    return cfg


def _check_keys(section: str, values: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    for key in values:
        if key not in known:
            raise InputError(
                f"config key {section}.{key!r} does not exist; known: {', '.join(sorted(known))}"
            )


def validate_train(train: Mapping[str, Any]) -> None:
    """Type and range checks on the ``train`` section: those of
    :class:`mmfactor.train.options.TrainOptions` (errors read ``train: lr must be ...``)."""
    TrainOptions(**train)


def dump_yaml(path: str | Path, cfg: Mapping[str, Any]) -> None:
    """Write a config as YAML, atomically, in its own key order."""
    write_yaml(path, cfg)
