r"""Ring (conditional) negatives: only negatives in a similarity-percentile band count.

Wu et al. sample negatives from a *ring* around the anchor: not the farthest (uninformative)
and, with an upper bound below 1, not the very closest (likely false negatives). Per anchor
with :math:`N` negatives ranked by similarity, :math:`\rho_j = \mathrm{rank}_j / (N - 1)`
(0 for the least similar, 1 for the most; 1 when N = 1), and the band
:math:`R = \{j : \text{lower} \le \rho_j \le \text{upper}\}`:

.. math::
    \mathcal{L} = -\log \frac{e^{s^+/t}}{e^{s^+/t} + \sum_{j \in R} e^{s^-_j/t}}

The band is chosen on detached similarities. ``[0, 1]`` is NT-Xent. The defaults keep the
hardest half (``lower = 0.5``); the paper anneals the lower percentile during training, a
schedule that belongs to the training loop, not to this loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.masked import (
    MaskedBatch,
    check_range,
    check_temperature,
    info_nce_loss,
    masked_logsumexp,
    over_negatives,
    prepare,
    row_blocks,
)

CITATION = ("Wu, Zhuang, Mosse, Yamins, Goodman. Conditional Negative Sampling for Contrastive Learning of "
            "Visual Representations. ICLR 2021, arXiv:2010.02037")


def ring_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
    lower: float = 0.5,
    upper: float = 1.0,
) -> Tensor:
    """InfoNCE over the negatives whose similarity percentile lies in ``[lower, upper]``."""
    check_temperature(temperature)
    check_range("lower", lower, 0.0, 1.0)
    check_range("upper", upper, 0.0, 1.0)
    batch = prepare(anchors, candidates, pos_mask, neg_mask, row_weights, temperature)
    low_rank, high_rank = _band_ranks(batch.neg_count, lower, upper)
    if (low_rank > high_rank).any():
        raise ValueError(f"lower/upper: the ring band [{lower}, {upper}] holds no negative of some anchor")
    with torch.autocast(batch.anchors.device.type, enabled=False):
        low = _order_statistics(batch, low_rank)
        if bool((high_rank == batch.neg_count - 1).all()):  # upper = 1: the most similar negative, a max not a selection
            high = over_negatives(batch, float("-inf"), lambda block, _: block.amax(dim=1))
        else:
            high = _order_statistics(batch, high_rank)
        logits, low, top = batch.logits, low.unsqueeze(1), high.unsqueeze(1)
        outside = torch.cat([~(batch.neg_mask[b] & (logits[b] >= low[b]) & (logits[b] <= top[b]))
                             for b in row_blocks(tuple(logits.shape))])  # by blocks: no (R, C) temporaries
        log_neg = masked_logsumexp(batch, outside, kept_max=high)  # the band's upper edge is a negative in it
        return info_nce_loss(batch, log_neg)


def _band_ranks(count: Tensor, lower: float, upper: float) -> tuple[Tensor, Tensor]:
    """Smallest and largest 0-based rank i with lower <= i / (N - 1) <= upper, as float division decides it."""
    span = (count - 1).clamp_min(1).double()
    low = torch.ceil(lower * span).long()
    low = low - ((low - 1) / span >= lower).long()  # ceil of a rounded product may overshoot by one
    low = low + (low / span < lower).long()
    high = torch.floor(upper * span).long()
    high = high + ((high + 1) / span <= upper).long()
    high = high - (high / span > upper).long()
    single = count == 1  # the only negative is the most similar one: percentile 1
    low = torch.where(single, 0 if upper >= 1.0 else 1, low)
    high = torch.where(single, 0, high)
    return low.clamp(0, None), torch.minimum(high, count - 1)


def _order_statistics(batch: MaskedBatch, ranks: Tensor) -> Tensor:
    """Row-wise logit of 0-based ascending rank ``ranks[r]`` among the negatives: kthvalue when all ranks agree, else a sort."""
    if bool((ranks == ranks[0]).all()):
        k = int(ranks[0]) + 1
        return over_negatives(batch, float("inf"), lambda block, _: block.kthvalue(k, dim=1).values)
    return over_negatives(batch, float("inf"),
                          lambda block, rows: block.sort(dim=1).values.gather(1, ranks[rows].unsqueeze(1)).squeeze(1))
