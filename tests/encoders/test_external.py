import pytest
import torch
from torch import nn

from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders.external import ExternalEncoder
from mmfactor.errors import InputError


class MaskedMean(nn.Module):
    def forward(self, x, mask):
        w = mask.to(x.dtype)[..., None]
        return (x * w).sum(1) / w.sum(1)


def test_sequence_modules_get_the_mask_and_image_maps_are_flattened():
    enc = ExternalEncoder(MaskedMean(), ModalitySpec("s", "sequence", (3,)))
    x = torch.ones(2, 4, 3)
    x[:, 2:] = 100.0  # padding: must not count
    mask = torch.tensor([[True, True, False, False]] * 2)
    # exact: (1 + 1) / 2 on the real steps, padding times 0: exact in floating point
    assert enc.out_dim == 3 and torch.equal(enc(x, mask), torch.ones(2, 3))
    conv = ExternalEncoder(nn.Conv2d(1, 2, 3), ModalitySpec("i", "image", (1, 5, 5)), freeze=False)
    assert conv.out_dim == 2 * 3 * 3 and conv.module.weight.requires_grad
    assert conv(torch.zeros(4, 1, 5, 5, dtype=torch.float64)).dtype == torch.float32


def test_bad_modules_are_refused():
    with pytest.raises(InputError, match="torch.nn.Module"):
        ExternalEncoder(lambda x: x, ModalitySpec("v", "vector", (3,)))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="must return"):
        ExternalEncoder(nn.Flatten(0), ModalitySpec("v", "vector", (3,)))
