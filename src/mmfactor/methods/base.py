"""The method contract shared by every method: :class:`Factors`, :class:`Loss`, :class:`Method`.

A method is an ``nn.Module`` with

- ``encode(batch) -> Factors``: the representation, split into a ``shared`` part and one
  ``specific`` part per modality (evaluation only ever sees ``Factors``);
- ``loss(batch) -> Loss``: the training objective, a total plus named parts for logging;
- optionally ``predict(batch)``: its own prediction head's output;
- optionally estimator networks (CLUB, MINE critics, adversaries): ``estimator_modules()``.
  The training engine alternates a main step on all other parameters (estimators frozen)
  with ``estimator_steps`` steps on the estimator parameters alone, which minimise
  ``estimator_loss(batch, state)``: by default each estimator's own ``learning_loss`` on the
  detached inputs the main step recorded in ``Loss.state`` through :meth:`Method.estimate`.

Plumbing every method shares lives here, once: modality pairs (:meth:`Method.modality_pairs`,
:func:`pair_name`), the augmented batch (:func:`augmented`), zeroing an absent modality
(:func:`~mmfactor.data.batching.zero_missing`), the labeled rows (:func:`labeled_rows`) and
the task loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from mmfactor.checks import check_int
from mmfactor.data.batching import Batch, zero_missing
from mmfactor.data.dataset import ModalitySpec, TaskSpec
from mmfactor.encoders import build_encoder
from mmfactor.errors import InputError

Array = torch.Tensor | np.ndarray
__all__ = [
    "Factors",
    "Loss",
    "Method",
    "augmented",
    "labeled_rows",
    "masked_mean",
    "pair_name",
    "task_loss",
    "zero_missing",
]


@dataclass
class Factors:
    """Output contract of every method.

    ``shared``: ``(N, d_s)`` or ``None`` for methods without a shared part;
    ``specific``: modality -> ``(N, d_m)``; ``extras``: method-specific outputs
    (reconstructions, scores), each with N rows.
    """

    shared: Any | None
    specific: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def blocks(self) -> dict[str, Any]:
        """Named factor blocks as probed: ``shared``, ``specific:<m>`` and ``all``."""
        out: dict[str, Any] = {}
        if self.shared is not None:
            out["shared"] = self.shared
        out.update({f"specific:{m}": v for m, v in self.specific.items()})
        parts = list(out.values())
        if parts:
            cat = torch.cat if isinstance(parts[0], torch.Tensor) else np.concatenate
            out["all"] = cat(parts, 1)
        return out

    def map(self, fn: Any) -> Factors:
        """Apply ``fn`` to every array (for example ``.detach().cpu()``)."""
        return Factors(
            None if self.shared is None else fn(self.shared),
            {k: fn(v) for k, v in self.specific.items()},
            {k: fn(v) for k, v in self.extras.items()},
        )

    @staticmethod
    def concat(parts: list[Factors]) -> Factors:
        """Row-wise concatenation of batch-wise factors, as NumPy arrays."""

        def cat(xs: list[Any]) -> np.ndarray:
            return np.concatenate(
                [
                    x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
                    for x in xs
                ]
            )

        first = parts[0]
        return Factors(
            None if first.shared is None else cat([p.shared for p in parts]),
            {k: cat([p.specific[k] for p in parts]) for k in first.specific},
            {k: cat([p.extras[k] for p in parts]) for k in first.extras},
        )


@dataclass
class Loss:
    """A total to minimise, named parts for logging (each a 0-d tensor), and ``state``:
    the detached inputs of each estimator network, keyed by its module name (as
    :meth:`Method.estimate` records them), which the estimator step reuses instead of
    re-encoding the batch.

    Part names follow one convention across methods: ``task`` (the supervised loss),
    ``rec_<m>`` (reconstruction of modality m), and an estimate's bound and pair, e.g.
    ``nce_<a>_<b>``, ``club_<a>_<b>`` (positive = estimated information, in nats).

    ``objective``: what is logged as ``loss`` and so watched by model selection and early
    stopping, when it differs from ``total``: a method whose total also trains auxiliary
    networks (MFM's surrogate inference) reports its paper's objective here, so that the
    auxiliary terms, which chase moving targets, do not pick the checkpoint.
    """

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    objective: torch.Tensor | None = None

    @property
    def watched(self) -> torch.Tensor:
        """The value logged as ``loss``: ``objective`` if set, else ``total``."""
        return self.total if self.objective is None else self.objective


class Method(nn.Module):
    """Base class: owns the per-modality encoders, the task binding and estimator hooks.

    Subclasses set ``name`` and ``uses_labels`` and implement :meth:`encode` and
    :meth:`loss`; ``default_encoders`` builds one encoder per modality to ``embed_dim``.

    Args:
        modalities: the data set's modality specs (``data.modalities``).
        embed_dim: width of each modality encoder's output.
        encoder: encoder name per kind or per modality, e.g. ``{"vector": "mlp"}``; see
            :func:`mmfactor.encoders.build_encoder`.
        encoder_options: keyword options for the encoders (``hidden``, ``layers``, ...).
    """

    name: ClassVar[str] = ""
    uses_labels: ClassVar[bool] = False
    #: The kinds of supervising target the method can train on.
    task_kinds: ClassVar[tuple[str, ...]] = ("classification", "regression")
    has_head: ClassVar[bool] = False
    #: Fitted in closed form on the train split by :meth:`fit_closed_form`, after any
    #: gradient training (a method without trainable parameters, like ``cca``, has none).
    closed_form: ClassVar[bool] = False
    estimator_steps: int = 0
    #: Rows of the recorded estimator inputs each estimator step uses, drawn afresh per step
    #: (None: all of them).
    estimator_batch: int | None = None
    #: Old state-dict key prefixes -> current ones, so that checkpoints written before a
    #: module was renamed still load (applied by :func:`mmfactor.runs.load_run`).
    renamed_parameters: Mapping[str, str] = {}
    train_stats: dict[str, Any]  # set by mmfactor.fit: seconds, samples/s, epochs, target

    def __init__(
        self,
        modalities: Mapping[str, ModalitySpec],
        embed_dim: int = 128,
        encoder: Mapping[str, str] | None = None,
        encoder_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(modalities) < 2:
            raise InputError(
                f"{self.name or type(self).__name__} needs at least two modalities, "
                f"got {list(modalities)}"
            )
        check_int(self.name or type(self).__name__, "embed_dim", embed_dim, minimum=1)
        reason = self.unsupported(modalities)
        if reason is not None:
            raise InputError(f"{self.name}: {reason}")
        self.modalities = dict(modalities)
        self.modality_names = list(modalities)
        self.embed_dim = embed_dim
        self.encoder_choice = dict(encoder or {})
        self.encoder_options = dict(encoder_options or {})
        self.encoders = self.modality_encoders(self.modality_names, embed_dim)
        self.task: TaskSpec | None = None
        self.train_stats = {}

    @classmethod
    def unsupported(cls, modalities: Mapping[str, ModalitySpec]) -> str | None:
        """Why the method cannot run on data with these modalities (None: it can); the
        bench skips such pairs with this reason, the constructor raises it."""
        return None

    def modality_encoders(self, names: list[str], out_dim: int) -> nn.ModuleDict:
        """Fresh encoders for the named modalities, with this method's encoder choice and
        options (methods with several encoder sets, like MFM, build more with it)."""
        return nn.ModuleDict({m: self.encoder_for(self.modalities[m], out_dim) for m in names})

    def encoder_for(self, spec: ModalitySpec, out_dim: int) -> nn.Module:
        """A fresh encoder for inputs described by ``spec`` (a modality, or an intermediate
        like MIRD's fused tokens), with this method's encoder choice and options."""
        return build_encoder(
            encoder_name(spec, self.encoder_choice), spec, out_dim, **self.encoder_options
        )

    # --- task binding -----------------------------------------------------------------
    def bind_task(self, task: TaskSpec) -> None:
        """Record the supervising target and build what depends on it (heads, label embeddings).

        Called by the training engine before the optimiser is made; calling it again with the
        same task is a no-op, with another task an error.
        """
        if self.task is not None:
            if self.task != task:
                raise InputError(f"{self.name} was built for {self.task}, not {task}")
            return
        if task.kind not in self.task_kinds:
            raise InputError(f"{self.name} needs a {' or '.join(self.task_kinds)} target")
        self.task = task
        self.build_task_modules(task)

    def build_task_modules(self, task: TaskSpec) -> None:
        """Override to create task-dependent modules."""

    def modality_pairs(self) -> list[tuple[str, str]]:
        """Every unordered pair of modalities ``(a, b)``, a before b in the data's order."""
        return list(combinations(self.modality_names, 2))

    # --- the contract ------------------------------------------------------------------
    def embed(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-modality encoder outputs ``(B, embed_dim)``."""
        return {m: self.encoders[m](batch.x[m], batch.mask.get(m)) for m in self.modality_names}

    def encode(self, batch: Batch) -> Factors:
        raise NotImplementedError

    def loss(self, batch: Batch) -> Loss:
        raise NotImplementedError

    def set_progress(self, epoch: int, max_epochs: int) -> None:
        """Called by the training engine at the start of every training epoch (``epoch``
        counts from 0, of ``max_epochs``), for objectives that follow a schedule
        (InfMasking's ramp of the masking strength); by default nothing."""

    def fit_closed_form(self, batches: Iterable[Batch]) -> None:
        """Closed-form fitting on the train split's batches (methods with ``closed_form``)."""
        raise NotImplementedError(f"{self.name} has no closed-form fit")

    def predict(self, batch: Batch) -> torch.Tensor | None:
        """The method's own head output (logits ``(B, K)`` or values ``(B,)``), if it has one."""
        return None

    # --- estimator networks ------------------------------------------------------------
    def estimator_modules(self) -> list[nn.Module]:
        """Modules trained only in the estimator step. Override in methods that have them."""
        return []

    def estimator_parameters(self) -> Iterator[nn.Parameter]:
        for module in self.estimator_modules():
            yield from module.parameters()

    def main_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter that is not an estimator's."""
        skip = {id(p) for p in self.estimator_parameters()}
        return (p for p in self.parameters() if id(p) not in skip)

    def estimate(
        self, name: str, *inputs: torch.Tensor | None, state: dict[str, Any] | None = None
    ) -> torch.Tensor:
        """The estimate of the estimator module ``name`` (e.g. ``"club.x1_x2"``) on
        ``inputs`` ``(a, b[, c])``; with ``state``, their detached copies are recorded in
        ``state[name]`` for the estimator step (estimator modules only)."""
        if state is not None:
            state[name] = tuple(None if x is None else x.detach() for x in inputs)
        return self.get_submodule(name)(*inputs)

    def estimator_loss(self, batch: Batch, state: dict[str, Any]) -> torch.Tensor:
        """What the estimator parameters minimise: the sum of each recorded estimator's own
        ``learning_loss`` on its detached inputs (``estimator_batch`` random rows of them,
        the same rows for every input of one estimator, if set)."""
        if not state:
            raise NotImplementedError(f"{self.name} recorded no estimator inputs")
        estimators: dict[str, Any] = {name: self.get_submodule(name) for name in state}
        losses = [
            estimators[name].learning_loss(*self.estimator_rows(inputs))
            for name, inputs in state.items()
        ]
        return torch.stack(losses).sum()

    def estimator_rows(self, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        """``inputs`` or ``estimator_batch`` random rows of them (the same rows for all)."""
        n = inputs[0].shape[0]
        if self.estimator_batch is None or n <= self.estimator_batch:
            return inputs
        rows = torch.randperm(n, device=inputs[0].device)[: self.estimator_batch]
        return tuple(None if x is None else x[rows] for x in inputs)


def encoder_name(spec: ModalitySpec, choice: Mapping[str, str] | None) -> str:
    """The encoder a method with encoder ``choice`` builds for ``spec``."""
    choice = dict(choice or {})
    return choice.get(spec.name) or choice.get(spec.kind) or DEFAULT_ENCODER[spec.kind]


DEFAULT_ENCODER = {"vector": "mlp", "sequence": "gru", "image": "cnn"}


def pair_name(a: str, b: str) -> str:
    """The name of the pair of modalities (or factors) ``a`` and ``b`` in part and module
    names: ``"x1_x2"``."""
    return f"{a}_{b}"


def augmented(batch: Batch, augment: Mapping[str, nn.Module] | nn.ModuleDict) -> Batch:
    """The batch with every modality m replaced by ``augment[m](x_m, mask_m)``; targets,
    presence and row indices are kept."""
    x_aug, mask_aug = {}, dict(batch.mask)
    for m, transform in augment.items():
        x_aug[m], mask_m = transform(batch.x[m], batch.mask.get(m))
        if mask_m is not None:
            mask_aug[m] = mask_m
    return replace(batch, x=x_aug, mask=mask_aug)


def labeled_rows(output: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(output, y)`` restricted to the batch's labeled rows (all rows when every one is)."""
    assert batch.y is not None, "the batch carries no target"
    if batch.labeled is None:
        return output, batch.y
    return output[batch.labeled], batch.y[batch.labeled]


def task_loss(task: TaskSpec, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for classes, mean squared error for regression (L1 where a paper says)."""
    if task.kind == "classification":
        return nn.functional.cross_entropy(output, y.long())
    return nn.functional.mse_loss(output.reshape(-1), y.float())


def masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over the leading axis weighted by 0/1 ``weights`` ``(B,)`` (0 if all weights are 0)."""
    w = weights.to(values.dtype).reshape(-1, *([1] * (values.dim() - 1)))
    return (values * w).sum(0) / w.sum().clamp_min(1.0)
