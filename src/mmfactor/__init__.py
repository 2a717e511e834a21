"""mmfactor: factorized multimodal representation learning.

Learn what modalities share and what each holds alone, and measure how much each part
matters for a task::

    import mmfactor as mf
    data = mf.datasets.load("synthetic", seed=0)
    model = mf.methods.build("clip", data.modalities, embed_dim=64)
    run = mf.fit(model, data, max_epochs=5)
    records = mf.evaluate(model, data, targets=["shared", "mix@1.0"])
"""

__version__ = "0.1.0"

from mmfactor import data as datasets  # noqa: E402
from mmfactor import diagnostics, estimators, interpret, methods  # noqa: E402
from mmfactor.data import MultimodalDataset, from_arrays  # noqa: E402
from mmfactor.evaluate import encode, evaluate  # noqa: E402
from mmfactor.methods import Factors  # noqa: E402
from mmfactor.train import fit  # noqa: E402


def __getattr__(name: str):  # the scikit-learn facade pulls in sklearn.base lazily
    if name == "FactorizedEmbedding":
        from mmfactor.sklearn import FactorizedEmbedding

        return FactorizedEmbedding
    raise AttributeError(f"module 'mmfactor' has no attribute {name!r}")


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
