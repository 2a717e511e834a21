"""Per-modality encoders: a registry of ``nn.Module`` s mapping one modality's batch tensor to a
``(B, out_dim)`` embedding.

Every encoder has ``forward(x, mask=None) -> (B, out_dim)`` and an ``out_dim`` attribute,
and ``tokens(x, mask=None)``: the encoding before pooling, ``(B, T, token_dim)`` with a mask
of the real tokens (:meth:`Encoder.tokens`).
Input shapes follow :class:`mmfactor.data.batching.Batch`: vectors ``(B, D)``, sequences
``(B, T, D)`` padded at the end with ``mask`` ``(B, T)`` bool (``True`` at real steps; ``None``
means every step is real), images ``(B, C, H, W)``.

Registered names:

- ``mlp`` (vectors; images are flattened): :class:`~mmfactor.encoders.mlp.MLPEncoder`;
- ``identity`` / ``linear`` (precomputed vector features):
  :class:`~mmfactor.encoders.mlp.IdentityEncoder`, :class:`~mmfactor.encoders.mlp.LinearEncoder`;
- ``gru`` / ``transformer`` (sequences, padding-invariant):
  :class:`~mmfactor.encoders.sequence.GRUEncoder`,
  :class:`~mmfactor.encoders.sequence.TransformerEncoder`;
- ``cnn`` (images): :class:`~mmfactor.encoders.image.CNNEncoder`.

Example:
    >>> from mmfactor.data.dataset import ModalitySpec
    >>> enc = build_encoder("gru", ModalitySpec("audio", "sequence", (74,)), 64, hidden=32)
    >>> enc(torch.randn(8, 20, 74), torch.ones(8, 20, dtype=torch.bool)).shape
    torch.Size([8, 64])

Options may be *scoped* so that one options dict can serve a data set with several kinds of
modality (methods pass the same ``encoder_options`` to every encoder): a key that is a
modality kind (``"vector"``), an encoder name (``"gru"``) or the modality's name, holding a
mapping, applies only to matching encoders and overrides unscoped options (modality name
beats encoder name beats kind); mappings under any other key are taken for scopes of other
encoders and skipped. For example
``{"hidden": [512, 512, 512], "gru": {"hidden": 30}}`` gives vectors a 3-layer MLP and sequences a
GRU(30) (the FactorCL MIMIC setting).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from mmfactor.checks import check_int
from mmfactor.data.dataset import ModalitySpec
from mmfactor.errors import InputError, unknown_name

__all__ = [
    "Encoder",
    "available_encoders",
    "build_encoder",
    "encoder_options",
    "register_encoder",
]


class Encoder(nn.Module):
    """Base class: checks the modality kind and ``out_dim``; subclasses set ``kinds``.

    Constructors take ``(spec, out_dim, **options)`` with keyword-only options and raise
    :class:`~mmfactor.errors.InputError` on invalid values.
    """

    kinds: ClassVar[tuple[str, ...]] = ()
    registry_name: ClassVar[str] = ""

    def __init__(self, spec: ModalitySpec, out_dim: int) -> None:
        super().__init__()
        name = self.registry_name or type(self).__name__
        if spec.kind not in self.kinds:
            raise InputError(
                f"encoder {name!r} cannot encode {spec.kind} modality {spec.name!r}; it takes "
                f"{' or '.join(self.kinds)} modalities"
            )
        self.spec = spec
        self.out_dim = check_int(f"encoder {name!r}", "out_dim", out_dim, minimum=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    #: Attributes naming the modules that only :meth:`forward` uses, after the tokens.
    output_layer_names: ClassVar[tuple[str, ...]] = ()

    @property
    def token_dim(self) -> int:
        """Width of the tokens of :meth:`tokens`."""
        return self.out_dim

    def token_grid(self) -> tuple[int, int] | None:
        """``(h, w)`` when the tokens are the pixels of an ``h x w`` map (row-major), else
        ``None`` (their order is their position, or there is one token)."""
        return None

    def output_layers(self) -> list[nn.Module]:
        """The modules that pool the tokens to the output (empty when :meth:`tokens` is the
        output itself). A method that uses only :meth:`tokens` freezes them: they get no
        gradient, which data-parallel training would otherwise wait for."""
        return [getattr(self, name) for name in self.output_layer_names]

    def tokens(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The encoding before it is pooled to one vector, as tokens for a fusion module
        (CoMM's Transformer over every modality's tokens): ``(B, T, token_dim)`` and a
        ``(B, T)`` bool mask of the real tokens (``None``: all are real).

        Image encoders give their last feature map's pixels (``T = h * w``, ``token_dim`` =
        its channels), sequence encoders their per-step states with the input's mask; by
        default an encoder gives its output as one token.
        """
        return self(x, mask)[:, None, :], None

    def _as_input(self, x: torch.Tensor) -> torch.Tensor:
        # Data sets hold NumPy arrays of any dtype (float64 from users, uint8 images); cast to
        # the parameters' dtype here so callers need not care. A no-op in the common case.
        p = next(self.parameters(), None)
        dtype = p.dtype if p is not None else torch.get_default_dtype()
        return x if x.dtype == dtype else x.to(dtype)


E = TypeVar("E", bound=type[Encoder])
_REGISTRY: dict[str, type[Encoder]] = {}


def register_encoder(name: str) -> Callable[[E], E]:
    """Class decorator adding an :class:`Encoder` subclass to the registry under ``name``."""

    def add(cls: E) -> E:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"encoder {name!r} is already registered")
        if "registry_name" not in vars(cls):  # subclasses of registered encoders get their own
            cls.registry_name = name
        _REGISTRY[name] = cls
        return cls

    return add


def available_encoders() -> list[str]:
    """The registered encoder names, sorted."""
    return sorted(_REGISTRY)


def encoder_options(name: str) -> dict[str, Any]:
    """The options an encoder accepts, with their defaults."""
    if name not in _REGISTRY:
        raise unknown_name("encoder", name, list(_REGISTRY))
    params = list(inspect.signature(_REGISTRY[name].__init__).parameters.values())
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build_encoder(name: str, spec: ModalitySpec, out_dim: int, **options: Any) -> nn.Module:
    """Build the encoder ``name`` for one modality, with output width ``out_dim``.

    Args:
        name: a registered name (see :func:`available_encoders`).
        spec: the modality's :class:`~mmfactor.data.dataset.ModalitySpec`.
        out_dim: width of the embedding.
        **options: the encoder's keyword options, possibly scoped (see the module docstring).

    Raises:
        InputError: unknown name, unknown or invalid option, or a modality kind the encoder
            cannot take.
    """
    if name not in _REGISTRY:
        raise unknown_name("encoder", name, list(_REGISTRY))
    resolved = _resolve_scoped(name, spec, options)
    accepted = encoder_options(name)
    for key in resolved:
        if key not in accepted:
            raise InputError(
                f"encoder {name!r}: unknown option {key!r}; options: "
                f"{', '.join(accepted) or '(none)'}"
            )
    return _REGISTRY[name](spec, out_dim, **resolved)


def _resolve_scoped(name: str, spec: ModalitySpec, options: Mapping[str, Any]) -> dict[str, Any]:
    # A mapping under a key that is not one of this encoder's options is a scope; scopes
    # naming other kinds, encoders or modalities (which this call cannot know) are skipped.
    accepted = encoder_options(name)
    flat = {k: v for k, v in options.items() if k in accepted or not isinstance(v, Mapping)}
    for scope in (spec.kind, name, spec.name):  # increasing precedence
        value = options.get(scope)
        if isinstance(value, Mapping):
            flat.update(value)
    return flat


# Importing the modules registers their encoders; they import Encoder and register_encoder,
# which exist by now, so the circular import is safe.
from mmfactor.encoders import image, mlp, sequence  # noqa: E402

__all__ += ["image", "mlp", "sequence"]
