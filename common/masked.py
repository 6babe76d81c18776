r"""What every masked-form objective shares: validation, a masked log-sum-exp, the reduction.

The masked form scores anchors ``(R, d)`` against candidates ``(C, d)`` with boolean
``pos_mask`` / ``neg_mask`` ``(R, C)``. Each ``(r, c)`` with ``pos_mask[r, c]`` is one
positive pair; an anchor's loss is the mean over its pairs; the result is the mean over
anchors with at least one positive, row ``r`` counted ``row_weights[r]`` times (graphs score
each class of identical nodes once, weighted by its size).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def check_temperature(temperature: float) -> None:
    """The one check of the temperature, for every loss (the masked core and the two-view HCL path call it)."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")


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
    rows: Tensor  # (R',) long: which input rows these are
    temperature: float | None = None
    # (R', C) anchors @ candidates.T / temperature without autograd history: selection reads it,
    # masked_logsumexp consumes it in place (None before prepare() is given a temperature, and after).
    logits: Tensor | None = None

    def take_logits(self) -> Tensor:
        """The logits, handed over to be consumed in place (so that no one reads them after)."""
        if self.logits is None or self.temperature is None:
            raise ValueError("the logits of prepare(..., temperature=t) are consumed once, by one log-sum-exp")
        logits, self.logits = self.logits, None
        return logits


def prepare(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    row_weights: Tensor | None,
    temperature: float | None = None,
) -> MaskedBatch:
    """Validate the masked-form inputs (``ValueError`` naming the argument) and keep contributing rows.

    Normalisation happens in float32 at least: half-precision logits at t=0.05 overflow. With
    a ``temperature`` the float32 logits are computed here, once, as the batch's only
    ``(R', C)`` float tensor; the families select on it and :func:`masked_logsumexp` turns it
    into its exponentials, so no second copy is made in the forward pass. The temperature is
    validated here, once for every family (their parameters are validated by the registry).
    """
    if temperature is not None:
        check_temperature(temperature)
    for name, x in (("anchors", anchors), ("candidates", candidates)):
        if x.dim() != 2:
            raise ValueError(f"{name} must have shape (batch, dim), got {tuple(x.shape)}")
    shape = (anchors.shape[0], candidates.shape[0])
    for name, mask in (("pos_mask", pos_mask), ("neg_mask", neg_mask)):
        if mask.dtype != torch.bool or tuple(mask.shape) != shape:
            raise ValueError(f"{name} must be a bool tensor of shape {shape}, got {mask.dtype} {tuple(mask.shape)}")
    overlap, pos_count, count = _scan_masks(pos_mask, neg_mask)
    if overlap:
        raise ValueError("pos_mask and neg_mask overlap: a candidate cannot be both positive and negative")
    has_pos = pos_count > 0
    if not has_pos.any():
        raise ValueError("pos_mask has no positive pair")
    if (count[has_pos] == 0).any():
        raise ValueError("neg_mask: every anchor with a positive needs at least one negative (batch of 1?)")
    dtype = torch.promote_types(anchors.dtype, torch.float32)
    rows = has_pos.nonzero().squeeze(1)
    every_row = rows.numel() == shape[0]  # then the masks are kept as they are, not copied
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
        a, c = F.normalize(a if every_row else a[rows], dim=-1), F.normalize(c, dim=-1)
        if not every_row:
            pos_mask, neg_mask, count = pos_mask[rows], neg_mask[rows], count[rows]
        batch = MaskedBatch(a, c, pos_mask, neg_mask, count, weights, poison, rows, temperature)
        if temperature is not None:
            with torch.no_grad():
                batch.logits = (a / temperature) @ c.T
        return batch


class _MaskedLogSumExp(torch.autograd.Function):
    r"""Row-wise :math:`\log\sum_{j \in \text{kept}} e^{c\,x_j}` of ``x = a c^T / t``, gradient :math:`\mathrm{softmax}(c\,x)_j`.

    With ``c = 1`` this is the masked log-sum-exp and its exact gradient. With ``c = 1 + a``
    it is the log-sum-exp of logits offset by ``a x_j`` held constant in the gradient
    (stop-gradient), as the hardness offset needs. ``x`` arrives computed (the batch's
    logits) and is exponentiated in place: the only ``(R, C)`` tensor of the forward pass
    and the one kept for backward, which turns it into the gradient of ``x`` a block of rows
    at a time and through the matmul into those of the anchors and candidates.
    """

    @staticmethod
    def forward(ctx, anchors: Tensor, candidates: Tensor, logits: Tensor, exclude: Tensor, scale: float,
                temperature: float, kept_max: Tensor | None) -> Tensor:
        if kept_max is None:
            shifted = logits.masked_fill_(exclude, float("-inf"))
            if scale != 1.0:
                shifted.mul_(scale)
            row_max = shifted.amax(dim=1, keepdim=True)
            exp = shifted.sub_(row_max).exp_()
        else:
            # The same values, masked after the exponential (clamped, the excluded entries above the
            # maximum cannot overflow): on a dense, irregular mask (the ring band) 1.8x faster than before.
            shifted = logits.mul_(scale) if scale != 1.0 else logits
            row_max = kept_max.unsqueeze(1) * scale
            exp = shifted.sub_(row_max).clamp_max_(0.0).exp_().masked_fill_(exclude, 0.0)
        total = exp.sum(dim=1)
        ctx.save_for_backward(anchors, candidates, exp, total)
        ctx.temperature = temperature
        return row_max.squeeze(1) + total.log()

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        anchors, candidates, exp, total = ctx.saved_tensors
        row_scale = (grad_out / total).unsqueeze(1)
        grads = logits_backward(anchors, candidates, ctx.temperature, tuple(exp.shape),
                                lambda rows: exp[rows] * row_scale[rows])
        return *grads, None, None, None, None, None


def logits_backward(anchors: Tensor, candidates: Tensor, temperature: float, shape: tuple[int, int],
                    logits_grad: Callable[[slice], Tensor]) -> tuple[Tensor, Tensor]:
    """Gradients of ``anchors`` and ``candidates`` through ``logits = anchors @ candidates.T / t``.

    ``logits_grad(rows)`` gives the logits' gradient for a block of rows; only one block is
    alive at a time, so the backward pass adds no ``(R, C)`` tensor to what was saved.
    """
    scaled = anchors / temperature
    grad_anchors, grad_candidates = torch.empty_like(anchors), torch.zeros_like(candidates)
    with torch.autocast(anchors.device.type, enabled=False):
        for rows in row_blocks(shape):
            grad = logits_grad(rows)
            torch.mm(grad, candidates, out=grad_anchors[rows])
            grad_candidates.addmm_(grad.T, scaled[rows])
    return grad_anchors.div_(temperature), grad_candidates


def masked_logsumexp(batch: MaskedBatch, exclude: Tensor, scale: float = 1.0, kept_max: Tensor | None = None) -> Tensor:
    """Log-sum-exp of each row of the batch's logits over the entries not in ``exclude`` (see :class:`_MaskedLogSumExp`).

    Consumes ``batch.logits`` (read them first): an objective takes one log-sum-exp.
    ``kept_max``, where the caller knows it, is each row's largest logit not excluded (no NaN).
    """
    return _MaskedLogSumExp.apply(batch.anchors, batch.candidates, batch.take_logits(), exclude, float(scale),
                                  batch.temperature, kept_max)


def over_negatives(batch: MaskedBatch, fill: float, select: Callable[[Tensor, slice], Tensor]) -> Tensor:
    """``select(block, rows)`` of the logits with non-negatives set to ``fill``, a block of rows at a time, concatenated.

    Selection (top-k, kthvalue, sort) works on a masked copy, and kthvalue copies again with
    int64 indices: by blocks the copies stay small (kthvalue of a whole 8192 x 8192 float32
    matrix raised the peak by 770 MB; by blocks it took 1.0 s against 1.65 s whole).
    """
    logits = batch.logits
    return torch.cat([select(logits[b].masked_fill(~batch.neg_mask[b], fill), b) for b in row_blocks(logits.shape)])


def row_blocks(shape: tuple[int, int]) -> list[slice]:
    """Slices of about 2^20 entries of an ``(R, C)`` tensor, whole rows each: temporaries stay small and in cache.

    2^20 was the fastest of the sizes tried (2^16 to 2^22) for the counts and the selections.
    """
    step = max(1, (1 << 20) // max(1, shape[1]))
    return [slice(i, i + step) for i in range(0, shape[0], step)]


def _scan_masks(pos_mask: Tensor, neg_mask: Tensor) -> tuple[bool, Tensor, Tensor]:
    """(whether the masks overlap, positives per row, negatives per row): one pass by blocks of rows.

    A bool sum converts the whole mask first: to int64 it is two float32 matrices' worth, and
    at 8192 x 8192 it took 380 ms; by blocks in int32, 12-15 ms and no copy of the matrix (a
    bool ``any`` took 55 ms, so the overlap is counted too).
    """
    overlap, pos_count, neg_count = [], [], []
    for rows in row_blocks(tuple(pos_mask.shape)):
        positive, negative = pos_mask[rows], neg_mask[rows]
        overlap.append((positive & negative).sum(dim=1, dtype=torch.int32))
        pos_count.append(positive.sum(dim=1, dtype=torch.int32))
        neg_count.append(negative.sum(dim=1, dtype=torch.int32))
    return bool(torch.cat(overlap).any()), torch.cat(pos_count).long(), torch.cat(neg_count).long()


def pair_logits(batch: MaskedBatch, pair_row: Tensor, pair_col: Tensor) -> Tensor:
    """Logits of the pairs (row, column), with gradients: row dot products, so no (R, C) gradient is made."""
    return (batch.anchors[pair_row] / batch.temperature * batch.candidates[pair_col]).sum(dim=1)


def positive_logits(batch: MaskedBatch) -> tuple[Tensor, Tensor]:
    """(pair rows, logits of the positive pairs), in row-major order of ``pos_mask``."""
    pair_row, pair_col = batch.pos_mask.nonzero(as_tuple=True)
    return pair_row, pair_logits(batch, pair_row, pair_col)


def info_nce(pos_logit: Tensor, log_neg_sum: Tensor) -> Tensor:
    """-log(e^{l+} / (e^{l+} + e^{L})) as log(1 + e^{L - l+}): no cancellation when the loss is tiny."""
    x = log_neg_sum - pos_logit
    return torch.logaddexp(torch.zeros_like(x), x)


def info_nce_loss(batch: MaskedBatch, log_neg: Tensor) -> Tensor:
    """InfoNCE of every positive pair against its anchor's ``log_neg`` (log-sum-exp of its negatives), reduced."""
    pair_row, pos_logit = positive_logits(batch)
    return reduce_pairs(batch, pair_row, info_nce(pos_logit, log_neg[pair_row]))


def reduce_pairs(batch: MaskedBatch, pair_row: Tensor, pair_loss: Tensor) -> Tensor:
    """Mean over each anchor's pairs (all of its pairs are in ``pair_row``), then the ``weights``-weighted mean over anchors."""
    pairs_per_row = torch.bincount(pair_row, minlength=batch.weights.shape[0])
    per_pair = (batch.weights / pairs_per_row.to(pair_loss.dtype))[pair_row]
    return (pair_loss * per_pair).sum() / batch.weights.sum() + batch.poison
