"""The data set registry: ``load(name, **options)``, ``available()``, ``loader_options(name)``,
``config_family(name, options)``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import InputError, unknown_name

#: A data set's default-config family (the ``methods/configs/<method>.yaml`` entry its runs
#: start from): a fixed name, or a function of the data set's options.
Family = str | Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class _Entry:
    """Where a loader lives (imported on first use, so that ``import mmfactor`` stays light)
    and its family (``None``: the data set's own name)."""

    module: str
    function: str
    family: Family | None = None


def _synthetic_family(options: Mapping[str, Any]) -> str:
    """``synthetic`` with ``kind="sequence"`` takes the defaults of sequence data."""
    return "sequence" if options.get("kind") == "sequence" else "synthetic"


_LOADERS: dict[str, _Entry] = {
    "synthetic": _Entry("mmfactor.data.synthetic", "load", _synthetic_family),
    "factorcl-synthetic": _Entry("mmfactor.data.factorcl_synthetic", "load"),
    "uci-mfeat": _Entry("mmfactor.data.embedded", "load_uci_mfeat"),
    "nutrimouse": _Entry("mmfactor.data.embedded", "load_nutrimouse"),
    # Files of sequences (MultiBench and MMSA affect data) share the sequence defaults.
    "multibench": _Entry("mmfactor.data.multibench", "load_multibench", "sequence"),
    "mmsa": _Entry("mmfactor.data.mmsa", "load_mmsa", "sequence"),
    "arrays": _Entry("mmfactor.data.array_files", "load_arrays"),
    "linear": _Entry("mmfactor.data.linear", "load_linear"),
    "trifeatures": _Entry("mmfactor.data.trifeatures", "load", "image"),
    "av-digits": _Entry("mmfactor.data.av_digits", "load"),
}


def register_loader(name: str, module: str, function: str, family: Family | None = None) -> None:
    """Register ``module.function(**options) -> MultimodalDataset`` under ``name``.

    ``family`` names the method defaults its runs start from (``methods/configs``): a fixed
    family, a function of the options, or ``None`` for ``name`` itself.
    """
    _LOADERS[name] = _Entry(module, function, family)


def available() -> list[str]:
    """Registry names of the data sets."""
    return sorted(_LOADERS)


def config_family(name: str, options: Mapping[str, Any] | None = None) -> str:
    """The default-config family of data set ``name`` loaded with ``options``: what its
    registry entry declares; a name not in the registry is its own family."""
    entry = _LOADERS.get(name)
    if entry is None or entry.family is None:
        return name
    if isinstance(entry.family, str):
        return entry.family
    return entry.family(options or {})


def _loader(name: str) -> Any:
    if name not in _LOADERS:
        raise unknown_name("data set", name, list(_LOADERS))
    entry = _LOADERS[name]
    return getattr(importlib.import_module(entry.module), entry.function)


def loader_options(name: str) -> dict[str, Any]:
    """The options a data set accepts, with their defaults."""
    sig = inspect.signature(_loader(name))
    return {
        p.name: None if p.default is inspect.Parameter.empty else p.default
        for p in sig.parameters.values()
    }


def load(name: str, **options: Any) -> MultimodalDataset:
    """Load data set ``name``; options are validated against the loader's signature.

    Example:
        >>> import mmfactor as mf
        >>> data = mf.datasets.load("uci-mfeat", views=["fou", "pix"])
        >>> data.modality_names
        ['fou', 'pix']
    """
    known = loader_options(name)
    for key in options:
        if key not in known:
            raise InputError(
                f"data set {name!r} has no option {key!r}; options: {', '.join(known) or '(none)'}"
            )
    data = _loader(name)(**options)
    data.info.setdefault("options", {k: v for k, v in options.items()})
    return data
