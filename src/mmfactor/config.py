"""Run configuration: sections ``data``, ``method``, ``train``, ``evaluate``.

Resolution order (later wins): engine defaults, the method's documented default for the
data set family, a user YAML file, explicit options (``--epochs``, ``--seed``), and
``--set section.key=value`` overrides. Every key is validated: a key that does not exist is
an :class:`InputError` naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mmfactor.errors import InputError
from mmfactor.yamlio import load_yaml_text

TRAIN_DEFAULTS: dict[str, Any] = {
    "max_epochs": 20,
    "batch_size": 256,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "optimizer": "adam",
    "seed": 0,
    "target": None,
    "patience": 5,
    "monitor": "valid/loss",
    "restore_best": True,
    "checkpoint_interval": 30.0,
    "estimator_lr": 1e-3,
    "estimator_optimizer": "adam",
    "unlabeled_ratio": 0.0,
    "accelerator": "cpu",
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "precision": "32-true",
    "num_workers": 0,
    "deterministic": True,
    "progress": True,
}
EVALUATE_DEFAULTS: dict[str, Any] = {
    "protocol": "linear-probe",
    "targets": None,
    "missing": [],
    "batch_size": 1024,
}
OPTIMIZERS = ("adam", "adamw", "sgd")


def dataset_family(name: str, options: Mapping[str, Any] | None = None) -> str:
    """The default-config family of a data set: its own name, or ``sequence`` for files of
    sequences (``multibench``, ``mmsa``) and sequence-kind synthetic data."""
    if name in ("multibench", "mmsa") or (options or {}).get("kind") == "sequence":
        return "sequence"
    return name


def parse_set(item: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-3"`` -> ``(["train", "lr"], 0.001)``; values are parsed as YAML."""
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected section.key=value")
    key, _, raw = item.partition("=")
    path = key.strip().split(".")
    if len(path) < 2 or path[0] not in ("data", "method", "train", "evaluate"):
        raise InputError(
            f"--set {item!r}: the key must start with data., method., train. or evaluate."
        )
    try:
        value = load_yaml_text(raw)
    except yaml.YAMLError as exc:
        raise InputError(
            f"--set {item!r}: cannot parse the value ({exc.__class__.__name__})"
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
    # any later layer (e.g. `--set data.kind=sequence`): resolve the data section first.
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
    """Type and range checks on the ``train`` section."""

    def positive_int(key: str) -> None:
        v = train[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError(f"train.{key} must be a positive integer, got {v!r}")

    for key in ("max_epochs", "batch_size", "devices", "num_nodes"):
        positive_int(key)
    every = train["checkpoint_interval"]
    if not isinstance(every, int | float) or isinstance(every, bool) or every < 0:
        raise InputError(
            f"train.checkpoint_interval must be a non-negative number of seconds (0: every "
            f"epoch), got {every!r}"
        )
    for key in ("lr", "estimator_lr"):
        if not isinstance(train[key], int | float) or train[key] <= 0:
            raise InputError(f"train.{key} must be a positive number, got {train[key]!r}")
    for key in ("optimizer", "estimator_optimizer"):
        if train[key] not in OPTIMIZERS:
            raise InputError(f"train.{key} must be one of {', '.join(OPTIMIZERS)}")
    if not isinstance(train["seed"], int):
        raise InputError(f"train.seed must be an integer, got {train['seed']!r}")
    ratio = train["unlabeled_ratio"]
    if not isinstance(ratio, int | float) or isinstance(ratio, bool) or not 0 <= ratio < 1e6:
        raise InputError(
            f"train.unlabeled_ratio must be a number >= 0 (unlabeled samples per labeled one in "
            f"a batch), got {ratio!r}"
        )
    if not isinstance(train["patience"], int) or train["patience"] < 0:
        raise InputError("train.patience must be a non-negative integer (0: no early stopping)")


def dump_yaml(path: str | Path, cfg: Mapping[str, Any]) -> None:
    """Write a config as YAML, atomically."""
    from mmfactor.io import write_text

    write_text(path, yaml.safe_dump(_plain(cfg), sort_keys=False))


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj
