"""The data set registry: ``load(name, **options)``, ``available()``, ``loader_options(name)``."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import InputError, unknown_name

# name -> (module, function); imported on first use so that `import mmfactor` stays light.
_LOADERS: dict[str, tuple[str, str]] = {
    "synthetic": ("mmfactor.data.synthetic", "load"),
    "factorcl-synthetic": ("mmfactor.data.factorcl_synthetic", "load"),
    "uci-mfeat": ("mmfactor.data.embedded", "load_uci_mfeat"),
    "nutrimouse": ("mmfactor.data.embedded", "load_nutrimouse"),
    "multibench": ("mmfactor.data.multibench", "load_multibench"),
    "mmsa": ("mmfactor.data.mmsa", "load_mmsa"),
    "arrays": ("mmfactor.data.array_files", "load_arrays"),
    "linear": ("mmfactor.data.linear", "load_linear"),
}


def register_loader(name: str, module: str, function: str) -> None:
    """Register ``module.function(**options) -> MultimodalDataset`` under ``name``."""
    _LOADERS[name] = (module, function)


def available() -> list[str]:
    """Registry names of the data sets."""
    return sorted(_LOADERS)


def _loader(name: str) -> Any:
    if name not in _LOADERS:
        raise unknown_name("data set", name, list(_LOADERS))
    module, function = _LOADERS[name]
    return getattr(importlib.import_module(module), function)


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
