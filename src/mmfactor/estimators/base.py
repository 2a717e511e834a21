"""What every estimator shares: conditioning on c, the gathered batch under data parallelism,
candidate-negative masks and the row weights that make each rank's share of a loss exact.

Conventions. Anchors are this rank's rows ``i``; negatives ``j`` range over the gathered
(global) batch. A batch-wide estimate is written as a weighted sum of per-row terms over this
rank's rows, with weights such that the mean of the ranks' values is the estimate on the
whole batch; data-parallel gradient averaging then yields the full-batch gradient (the
pattern of :class:`mmfactor.losses.InfoNCE`). Terms that are not a mean over rows (the log of
a mean in Donsker-Varadhan) are reduced over the gathered per-row values.

Conditioning I(A; B | C), option ``condition``:

- ``"concat"``: the estimator sees ``[a; c]`` and ``[b; c]`` (c: integer labels, one-hot
  encoded to ``c_dim`` classes, or a ``(B, c_dim)`` float tensor such as a learned label
  embedding or a representation). This is what FactorCL's code does. Negatives come from
  the whole batch, so for critic bounds the target is I(A, C; B, C) = I(A; B | C) + H(C) for
  discrete C, not I(A; B | C); for the CLUB family (q(b | a, c)) it is I(B; A, C) >= I(A; B | C),
  still an upper bound on I(A; B | C).
- ``"negatives"``: negatives only among samples with the same (discrete) c, i.e. samples of
  p(b | c) as the conditional bounds require; the critic does not see c.
- ``"both"``: the two together (the critic sees c, negatives share c); the tightest.

With conditional negatives a row whose class has a single sample in the (global) batch has
no negative: it is left out of the average (weight 0) rather than counted as a 0, which
would bias lower bounds down and upper bounds toward 0. A batch with no such row gives 0.
Float c is compared row-wise for equality, so only discrete codes make sense there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from mmfactor.checks import check_choice, check_int
from mmfactor.distributed import gather, gather_nograd, local_rows, world_size
from mmfactor.errors import InputError

CONDITIONS = ("concat", "negatives", "both")


@dataclass
class Pairs:
    """One batch, prepared: inputs with c appended where asked, masks and row weights.

    ``a``, ``b``: this rank's rows ``(B, d)`` (with ``b_index``, ``b`` holds the K distinct
    rows ``(K, d)`` shared by every rank and row i of the batch is ``b[b_index[i]]``);
    ``rows``: their indices in the gathered batch; ``same``: ``(B, B_all)`` same-class mask
    with conditional negatives (None when every column is a candidate); ``valid_all``:
    ``(B_all,)`` rows that have a negative (None: all); ``weight``: ``(B,)`` so that
    ``(t * weight).sum()`` is this rank's share of the mean of a per-row term ``t`` over
    valid rows.
    """

    a: torch.Tensor
    b: torch.Tensor
    rows: torch.Tensor
    n_all: int
    same: torch.Tensor | None
    valid_all: torch.Tensor | None
    weight: torch.Tensor
    b_index: torch.Tensor | None = None

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's share of the mean of the per-row term ``t`` ``(B,)``."""
        return (t * self.weight).sum()

    def candidates(self, include_self: bool) -> torch.Tensor | None:
        """``(B, B_all)`` bool mask of the columns each row contrasts with (None: all).

        Rows left without a candidate get every column, so that their (weight 0) reductions
        stay finite and give finite gradients.
        """
        if self.same is None and include_self:
            return None
        if self.same is None:
            mask = torch.ones(len(self.rows), self.n_all, dtype=torch.bool, device=self.a.device)
        else:
            mask = self.same.clone()
        if not include_self:
            mask[torch.arange(len(self.rows), device=mask.device), self.rows] = False
        return mask | ~mask.any(1, keepdim=True)

    def global_logmeanexp(self, row_lme: torch.Tensor) -> torch.Tensor:
        """log of the mean over valid rows of the whole batch of ``exp(row_lme)``; the same
        value on every rank (gathered differentiably)."""
        all_lme = gather(row_lme)
        if self.valid_all is None:
            return torch.logsumexp(all_lme, 0) - math.log(all_lme.shape[0])
        any_valid = self.valid_all.any()
        use = self.valid_all | ~any_valid  # no valid row: any finite value, zeroed below
        value = torch.logsumexp(all_lme.masked_fill(~use, -math.inf), 0) - use.sum().log()
        return value * any_valid


def row_logmeanexp(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-row log of the mean of ``exp(scores)`` over the masked-in columns ``(B,)``."""
    if mask is None:
        return torch.logsumexp(scores, 1) - math.log(scores.shape[1])
    return torch.logsumexp(scores.masked_fill(~mask, -math.inf), 1) - mask.sum(1).log()


def row_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-row mean over the masked-in columns ``(B,)``."""
    if mask is None:
        return values.mean(1)
    return values.masked_fill(~mask, 0.0).sum(1) / mask.sum(1)


class MIEstimator(nn.Module):
    """Base class of the estimators: ``mi(a, b, c=None)`` is the differentiable estimate in
    nats (averaged over this rank's rows), ``learning_loss(a, b, c=None)`` what the
    estimator's own parameters minimise in the estimator step; ``forward`` is ``mi``.

    ``kind`` is ``"lower"`` or ``"upper"``; ``condition`` names how c is used (module doc).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""

    def __init__(self, a_dim: int, b_dim: int, c_dim: int = 0, condition: str = "concat") -> None:
        super().__init__()
        check_int(self.name, "a_dim", a_dim, minimum=1)
        check_int(self.name, "b_dim", b_dim, minimum=1)
        check_int(self.name, "c_dim", c_dim, minimum=0)
        check_choice(self.name, "condition", condition, CONDITIONS)
        if condition == "both" and c_dim == 0:
            raise InputError(f"{self.name}: condition='both' needs c_dim > 0")
        if condition == "negatives" and c_dim:
            raise InputError(
                f"{self.name}: c_dim is the width of c appended to the inputs, unused with "
                f"condition='negatives' (leave it 0, or use condition='both')"
            )
        self.a_dim, self.b_dim, self.c_dim = a_dim, b_dim, c_dim
        self.condition = condition
        self.concat_c = c_dim > 0
        self.negatives_c = condition in ("negatives", "both")
        self.in_a = a_dim + c_dim
        self.in_b = b_dim + c_dim

    @property
    def conditional(self) -> bool:
        return self.concat_c or self.negatives_c

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.mi(a, b, c)

    def mi(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def learning_loss(
        self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    # --- batch preparation ---------------------------------------------------------------
    def _c_features(self, c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if c.dim() == 1:
            if c.dtype.is_floating_point:
                raise InputError(f"{self.name}: 1-d c must hold integer labels")
            return F.one_hot(c.long(), self.c_dim).to(like.dtype)
        if c.dim() != 2 or c.shape[1] != self.c_dim:
            raise InputError(
                f"{self.name}: c must be (B,) labels or (B, {self.c_dim}), got {tuple(c.shape)}"
            )
        return c.to(like.dtype)

    def prepare(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        c: torch.Tensor | None,
        b_index: torch.Tensor | None = None,
    ) -> Pairs:
        """Check shapes, append c where asked, build masks and row weights. With
        ``b_index`` ``(B,)``, ``b`` is a table of distinct rows ``(K, d_b)`` (unconditional
        estimators only)."""
        if b_index is not None:
            if c is not None or self.conditional:
                raise InputError(f"{self.name}: b_index needs an unconditional estimator")
            if b_index.dim() != 1 or b_index.shape[0] != a.shape[0]:
                raise InputError(
                    f"{self.name}: b_index must be ({a.shape[0]},), got {tuple(b_index.shape)}"
                )
            p = self.prepare(a, b[b_index], None)
            p.b, p.b_index = b, b_index
            return p
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[0]:
            raise InputError(
                f"{self.name}: a and b must be (B, d) with the same B, got {tuple(a.shape)} "
                f"and {tuple(b.shape)}"
            )
        if a.shape[1] != self.a_dim or b.shape[1] != self.b_dim:
            raise InputError(
                f"{self.name}: expected widths a={self.a_dim} b={self.b_dim}, got "
                f"{a.shape[1]} and {b.shape[1]}"
            )
        if self.conditional and c is None:
            raise InputError(
                f"{self.name}: built conditional (condition={self.condition!r}); pass c"
            )
        if not self.conditional and c is not None:
            raise InputError(f"{self.name}: built unconditional (c_dim=0); c must be None")
        if c is not None and c.shape[0] != a.shape[0]:
            raise InputError(f"{self.name}: c has {c.shape[0]} rows, a has {a.shape[0]}")
        n = a.shape[0]
        rows = local_rows(n, a.device)
        world = world_size()
        n_all = n * world
        if c is not None and self.concat_c:
            feats = self._c_features(c, a)
            a, b = torch.cat([a, feats], 1), torch.cat([b, feats], 1)
        if c is None or not self.negatives_c:
            weight = torch.full((n,), 1.0 / n, dtype=a.dtype, device=a.device)
            return Pairs(a, b, rows, n_all, None, None, weight)
        c_all = gather_nograd(c)
        # Class ids of the gathered batch: for 2-d c, one id per distinct row.
        ids_all = (
            c_all.long() if c_all.dim() == 1 else torch.unique(c_all, dim=0, return_inverse=True)[1]
        )
        ids_all = torch.unique(ids_all, return_inverse=True)[1]  # compact: 0..K-1
        counts = torch.bincount(ids_all)[ids_all]
        valid_all = counts >= 2
        same = ids_all[rows][:, None] == ids_all[None, :]
        weight = valid_all[rows].to(a.dtype) * world / valid_all.sum().clamp_min(1)
        return Pairs(a, b, rows, n_all, same, valid_all, weight)
