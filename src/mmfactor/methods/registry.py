"""The method registry: ``build(name, modalities, **overrides)``, ``available()`` and the
documented default configuration of each method per data set family."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from mmfactor.data.dataset import ModalitySpec, TaskSpec
from mmfactor.errors import InputError, unknown_name
from mmfactor.yamlio import load_yaml_text

if TYPE_CHECKING:
    from mmfactor.methods.base import Method

_REGISTRY: dict[str, type[Method]] = {}


def register(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: make a :class:`~mmfactor.methods.base.Method` buildable by name."""

    def deco(cls: type[Method]) -> type[Method]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_all() -> None:
    # Importing the package registers every method file.
    import mmfactor.methods  # noqa: F401


def available() -> list[str]:
    """Registry names of every method."""
    _load_all()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    _load_all()
    if name not in _REGISTRY:
        raise unknown_name("method", name, list(_REGISTRY))
    return _REGISTRY[name]


def hyperparameters(name: str) -> dict[str, Any]:
    """The constructor's keyword arguments of method ``name`` and their defaults."""
    cls = method_class(name)
    params: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" not in vars(klass) or klass is object:
            continue
        for p in inspect.signature(vars(klass)["__init__"]).parameters.values():
            if p.name in ("self", "modalities") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            params[p.name] = None if p.default is inspect.Parameter.empty else p.default
    return params


def build(
    name: str,
    modalities: Mapping[str, ModalitySpec],
    task: TaskSpec | None = None,
    **overrides: Any,
) -> Any:
    """Build method ``name`` for ``modalities`` (``data.modalities``).

    Unknown hyper-parameters raise :class:`InputError` naming them. ``task`` may be given
    now or bound later by the training engine.
    """
    cls = method_class(name)
    known = hyperparameters(name)
    bad = [k for k in overrides if k not in known]
    if bad:
        raise InputError(
            f"method {name!r} has no option {bad[0]!r}; options: {', '.join(sorted(known))}"
        )
    model = cls(modalities, **overrides)
    if task is not None:
        model.bind_task(task)
    return model


def default_config(name: str, family: str) -> dict[str, Any]:
    """The method's documented default config for a data set family (``method``/``train``
    sections), from ``methods/configs/<name>.yaml``: its ``default`` entry updated by the
    family's entry."""
    method_class(name)
    path = resources.files("mmfactor.methods") / "configs" / f"{name}.yaml"
    if not path.is_file():
        return {"method": {}, "train": {}}
    doc = load_yaml_text(path.read_text()) or {}
    out: dict[str, dict[str, Any]] = {"method": {}, "train": {}}
    for key in ("default", family):
        for section, values in (doc.get(key) or {}).items():
            out.setdefault(section, {}).update(values or {})
    return out
