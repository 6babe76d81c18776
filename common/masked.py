r"""What every masked-form objective shares: validation, a masked log-sum-exp, the reduction.

The masked form scores anchors ``(R, d)`` against candidates ``(C, d)`` with boolean
``pos_mask`` / ``neg_mask`` ``(R, C)``. Each ``(r, c)`` with ``pos_mask[r, c]`` is one
positive pair; an anchor's loss is the mean over its pairs; the result is the mean over
anchors with at least one positive, row ``r`` counted ``row_weights[r]`` times (graphs score
each class of identical nodes once, weighted by its size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def check_temperature(temperature: float) -> None:
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")


def check_range(name: str, value: float, low: float, high: float | None = None) -> None:
    """``ValueError`` naming ``name`` unless ``low <= value <= high`` and finite."""
    if not (math.isfinite(value) and value >= low and (high is None or value <= high)):
        bound = "" if high is None else f", {high}"
        raise ValueError(f"{name} must be a finite number in [{low}{bound}], got {value}")


@dataclass
class MaskedBatch:
    """The rows that contribute (anchors with a positive), normalised, with their masks and weights."""

    anchors: Tensor  # (R', d), float32 at least, unit rows
    candidates: Tensor  # (C, d)
    pos_mask: Tensor  # (R', C)
    neg_mask: Tensor  # (R', C)
    neg_count: Tensor  # (R',) long
    weights: Tensor  # (R',) how many times each row counts (ones without row_weights)
    poison: Tensor  # 0-d, 0 or NaN: NaN/inf anywhere in the inputs reaches the loss


def prepare(
    anchors: Tensor, candidates: Tensor, pos_mask: Tensor, neg_mask: Tensor, row_weights: Tensor | None
) -> MaskedBatch:
    """Validate the masked-form inputs (``ValueError`` naming the argument) and keep contributing rows.

    Normalisation happens in float32 at least: half-precision logits at t=0.05 overflow.
    """
    for name, x in (("anchors", anchors), ("candidates", candidates)):
        if x.dim() != 2:
            raise ValueError(f"{name} must have shape (batch, dim), got {tuple(x.shape)}")
    shape = (anchors.shape[0], candidates.shape[0])
    for name, mask in (("pos_mask", pos_mask), ("neg_mask", neg_mask)):
        if mask.dtype != torch.bool or tuple(mask.shape) != shape:
            raise ValueError(f"{name} must be a bool tensor of shape {shape}, got {mask.dtype} {tuple(mask.shape)}")
    if (pos_mask & neg_mask).any():
        raise ValueError("pos_mask and neg_mask overlap: a candidate cannot be both positive and negative")
    has_pos = pos_mask.any(dim=1)
    if not has_pos.any():
        raise ValueError("pos_mask has no positive pair")
    count = neg_mask.sum(dim=1)
    if (count[has_pos] == 0).any():
        raise ValueError("neg_mask: every anchor with a positive needs at least one negative (batch of 1?)")
    dtype = torch.promote_types(anchors.dtype, torch.float32)
    rows = has_pos.nonzero().squeeze(1)
    if row_weights is None:
        weights = torch.ones(rows.numel(), dtype=dtype, device=anchors.device)
    else:
        if tuple(row_weights.shape) != (shape[0],):
            raise ValueError(f"row_weights must have shape ({shape[0]},), got {tuple(row_weights.shape)}")
        weights = row_weights.to(dtype)[rows]
        if not (torch.isfinite(row_weights).all() and (row_weights >= 0).all() and weights.sum() > 0):
            raise ValueError("row_weights must be finite and >= 0, with a positive sum over anchors with a positive")
    with torch.autocast(anchors.device.type, enabled=False):
        a, c = anchors.to(dtype), candidates.to(dtype)
        poison = (a.sum() + c.sum()).detach() * 0.0
        return MaskedBatch(
            F.normalize(a[rows], dim=-1), F.normalize(c, dim=-1), pos_mask[rows], neg_mask[rows],
            count[rows], weights, poison,
        )


class _MaskedLogSumExp(torch.autograd.Function):
    r"""Row-wise :math:`\log\sum_{j \in \text{kept}} e^{c\,x_j}`, gradient :math:`\mathrm{softmax}(c\,x)_j`.

    With ``c = 1`` this is the masked log-sum-exp and its exact gradient. With ``c = 1 + a``
    it is the log-sum-exp of logits offset by ``a x_j`` held constant in the gradient
    (stop-gradient), as the hardness offset needs. The masked copy is exponentiated in place
    and is the only ``(R, C)`` tensor kept for backward.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, exclude: Tensor, scale: float) -> Tensor:
        shifted = logits.masked_fill(exclude, float("-inf"))
        if scale != 1.0:
            shifted.mul_(scale)
        row_max = shifted.amax(dim=1, keepdim=True)
        exp = shifted.sub_(row_max).exp_()
        total = exp.sum(dim=1)
        ctx.save_for_backward(exp, total)
        return row_max.squeeze(1) + total.log()

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        exp, total = ctx.saved_tensors
        return exp * (grad_out / total).unsqueeze(1), None, None


def masked_logsumexp(logits: Tensor, exclude: Tensor, scale: float = 1.0) -> Tensor:
    """Log-sum-exp of each row over the entries not in ``exclude`` (see :class:`_MaskedLogSumExp`)."""
    return _MaskedLogSumExp.apply(logits, exclude, float(scale))


def positive_logits(batch: MaskedBatch, logits: Tensor) -> tuple[Tensor, Tensor]:
    """(pair rows, logits of the positive pairs), in row-major order of ``pos_mask``."""
    pair_row, pair_col = batch.pos_mask.nonzero(as_tuple=True)
    return pair_row, logits[pair_row, pair_col]


def info_nce(pos_logit: Tensor, log_neg_sum: Tensor) -> Tensor:
    """-log(e^{l+} / (e^{l+} + e^{L})) as log(1 + e^{L - l+}): no cancellation when the loss is tiny."""
    x = log_neg_sum - pos_logit
    return torch.logaddexp(torch.zeros_like(x), x)


def reduce_pairs(batch: MaskedBatch, pair_row: Tensor, pair_loss: Tensor, pairs_per_row: Tensor | None = None) -> Tensor:
    """Mean over each anchor's pairs, then the ``weights``-weighted mean over anchors."""
    if pairs_per_row is None:
        pairs_per_row = batch.pos_mask.sum(dim=1)
    per_pair = (batch.weights / pairs_per_row.to(pair_loss.dtype))[pair_row]
    return (pair_loss * per_pair).sum() / batch.weights.sum() + batch.poison
