"""mmfactor: factorized multimodal representation learning.

Learn what modalities share and what each holds alone, and measure how much each part
matters for a task::

    import mmfactor as mf
    data = mf.datasets.load("synthetic", seed=0)
    model = mf.methods.build("clip", data.modalities, embed_dim=64)
    run = mf.fit(model, data, max_epochs=5)
    records = mf.evaluate(model, data, targets=["shared", "mix@1.0"])
"""

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from mmfactor import data as datasets
    from mmfactor import diagnostics, estimators, interpret, methods
    from mmfactor.data import MultimodalDataset, from_arrays
    from mmfactor.evaluate import encode, evaluate
    from mmfactor.methods import Factors
    from mmfactor.sklearn import FactorizedEmbedding
    from mmfactor.train import fit

# The public names, imported on first use: `import mmfactor.estimators` (or `.data`,
# `.losses`, ...) then loads only that layer, not the methods and Lightning.
# name -> (module, attribute; None: the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "datasets": ("mmfactor.data", None),
    "diagnostics": ("mmfactor.diagnostics", None),
    "estimators": ("mmfactor.estimators", None),
    "interpret": ("mmfactor.interpret", None),
    "methods": ("mmfactor.methods", None),
    "MultimodalDataset": ("mmfactor.data", "MultimodalDataset"),
    "from_arrays": ("mmfactor.data", "from_arrays"),
    "encode": ("mmfactor.evaluate", "encode"),
    "evaluate": ("mmfactor.evaluate", "evaluate"),
    "Factors": ("mmfactor.methods", "Factors"),
    "fit": ("mmfactor.train", "fit"),
    "FactorizedEmbedding": ("mmfactor.sklearn", "FactorizedEmbedding"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
    elif not name.startswith("_") and importlib.util.find_spec(f"mmfactor.{name}") is not None:
        module, attribute = f"mmfactor.{name}", None  # a subpackage: `mf.train.Run`
    else:
        raise AttributeError(f"module 'mmfactor' has no attribute {name!r}")
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # Importing a subpackage binds it on its parent: `mmfactor.evaluate` would become the
        # subpackage, and `mf.evaluate(...)` stop being the function.
        if name == "evaluate" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "Factors",
    "FactorizedEmbedding",
    "MultimodalDataset",
    "datasets",
    "diagnostics",
    "encode",
    "estimators",
    "evaluate",
    "fit",
    "from_arrays",
    "interpret",
    "methods",
    "__version__",
]
