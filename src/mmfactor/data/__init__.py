"""Data: the :class:`MultimodalDataset` contract, batching, and the data set registry."""

from mmfactor.data.arrays import from_arrays
from mmfactor.data.audio import from_audio_files
from mmfactor.data.batching import Batch, make_loader
from mmfactor.data.dataset import ModalitySpec, MultimodalDataset, Target, TaskSpec
from mmfactor.data.registry import available, load, register_loader

__all__ = [
    "Batch",
    "ModalitySpec",
    "MultimodalDataset",
    "Target",
    "TaskSpec",
    "available",
    "from_arrays",
    "from_audio_files",
    "load",
    "make_loader",
    "register_loader",
]
