"""Wrapping a user's ``torch.nn.Module`` (a pre-trained network, possibly frozen) as a
modality encoder with the house interface ``forward(x, mask=None) -> (B, out_dim)``.

Example:
    >>> import torch
    >>> from mmfactor.data.dataset import ModalitySpec
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    >>> enc = ExternalEncoder(net, ModalitySpec("img", "image", (1, 3, 4)), freeze=True)
    >>> enc.out_dim, any(p.requires_grad for p in enc.parameters())
    (5, False)
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from mmfactor.data.dataset import ModalitySpec
from mmfactor.errors import InputError


class ExternalEncoder(nn.Module):
    """A user's module as an encoder of one modality.

    Args:
        module: maps the modality's batch tensor ``(B, *shape)`` (sequences: ``(B, T, D)``,
            and the padding mask ``(B, T)`` as a second argument if its ``forward`` takes
            one) to ``(B, d)`` features (``(B, ...)`` outputs are flattened).
        spec: the modality's spec; a forward pass on two zero samples finds ``d``
            (``out_dim``) and checks the output shape.
        freeze: no parameter of ``module`` trains, and it stays in eval mode (dropout off,
            batch-norm statistics fixed) whatever the parent's mode.
    """

    def __init__(self, module: nn.Module, spec: ModalitySpec, freeze: bool = True) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise InputError(
                f"encoder for {spec.name!r}: expected a torch.nn.Module, "
                f"got {type(module).__name__}"
            )
        self.module, self.spec, self.freeze = module, spec, bool(freeze)
        params = list(inspect.signature(module.forward).parameters.values())
        self.takes_mask = spec.kind == "sequence" and len(params) >= 2
        if self.freeze:
            module.requires_grad_(False)
        self.out_dim = self._probe_width()
        self.train(self.training)

    def _probe_width(self) -> int:
        p = next(self.module.parameters(), None)
        dtype = p.dtype if p is not None else torch.get_default_dtype()
        device = p.device if p is not None else None
        steps = (2,) if self.spec.kind == "sequence" else ()
        x = torch.zeros(2, *steps, *self.spec.shape, dtype=dtype, device=device)
        mask = torch.ones(2, 2, dtype=torch.bool, device=device) if steps else None
        was = self.module.training
        self.module.eval()
        with torch.no_grad():
            out = self(x, mask)
        self.module.train(was)
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
            raise InputError(
                f"encoder for {self.spec.name!r} must return (B, ...) features, got "
                f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__} "
                "for a batch of 2"
            )
        return int(out.shape[1])

    def train(self, mode: bool = True) -> ExternalEncoder:
        super().train(mode)
        if self.freeze:
            self.module.eval()
        return self

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        p = next(self.module.parameters(), None)
        if p is not None and p.dtype.is_floating_point and x.dtype != p.dtype:
            x = x.to(p.dtype)
        out = self.module(x, mask) if self.takes_mask else self.module(x)
        return out.flatten(1) if isinstance(out, torch.Tensor) and out.dim() > 2 else out
