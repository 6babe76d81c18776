r"""Ring (conditional) negatives: only negatives in a band of similarity ranks count.

Wu et al. sample negatives from a *ring* around the anchor: not the farthest (uninformative)
and not the very closest (likely false negatives). The official SimCLR code (SimCLRRing,
mhw32/contrastive-ring-public) sorts an anchor's similarities, keeps the ``thres_outer``
fraction most similar (the outer ball) and drops the ``thres_inner`` fraction most similar of
those (the inner ball, ``dynamic_inner``): 0.5 and 0.1 in its SimCLR configuration, with no
annealing. Here, of an anchor's :math:`N` negatives ranked most similar first, the ring holds

.. math::
    R = \{\text{ranks } \lfloor (1-\text{upper})\,N \rfloor, \dots, \lfloor (1-\text{lower})\,N \rfloor - 1\},
    \qquad
    \mathcal{L} = -\log \frac{e^{s^+/t}}{e^{s^+/t} + \sum_{j \in R} e^{s^-_j/t}},

the reference's integer arithmetic with ``thres_outer = 1 - lower`` and
``thres_outer * thres_inner = 1 - upper`` (its default band is lower = 0.5, upper = 0.95).
The band is chosen on detached similarities. ``[0, 1]`` is NT-Xent. The reference ranks the
anchor's self-product and its positive with the negatives; here only the negatives are ranked.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.masked import (
    MaskedBatch,
    info_nce_loss,
    masked_logsumexp,
    over_negatives,
    prepare,
    row_blocks,
)


def ring_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
    lower: float = 0.5,
    upper: float = 0.95,
) -> Tensor:
    """InfoNCE over the ring of negatives between the ``1 - lower`` and ``1 - upper`` most similar fractions."""
    batch = prepare(anchors, candidates, pos_mask, neg_mask, row_weights, temperature)
    low_rank, high_rank = band_ranks(batch.neg_count, lower, upper)
    if (low_rank > high_rank).any():
        fewest = int(batch.neg_count.min())
        raise ValueError(f"lower/upper: the ring band [{lower}, {upper}] holds no negative of some anchor (fewest "
                         f"negatives: {fewest})")
    with torch.autocast(batch.anchors.device.type, enabled=False):
        low = _order_statistics(batch, low_rank)
        if bool((high_rank == batch.neg_count - 1).all()):  # nothing dropped: the most similar negative, a max
            high = over_negatives(batch, float("-inf"), lambda block, _: block.amax(dim=1))
        else:
            high = _order_statistics(batch, high_rank)
        logits, low, top = batch.logits, low.unsqueeze(1), high.unsqueeze(1)
        outside = torch.cat([~(batch.neg_mask[b] & (logits[b] >= low[b]) & (logits[b] <= top[b]))
                             for b in row_blocks(tuple(logits.shape))])  # by blocks: no (R, C) temporaries
        log_neg = masked_logsumexp(batch, outside, kept_max=high)  # the band's upper edge is a negative in it
        return info_nce_loss(batch, log_neg)


def band_ranks(count: Tensor, lower: float, upper: float) -> tuple[Tensor, Tensor]:
    """Lowest and highest 0-based ascending rank (0: least similar) of the ring, per row of ``count`` negatives.

    In float64, as the reference's Python ``int(fraction * size)``.
    """
    kept = torch.floor((1.0 - lower) * count.double()).long()  # the outer ball: most similar kept
    dropped = torch.floor((1.0 - upper) * count.double()).long()  # the inner ball: most similar dropped
    return count - kept, count - 1 - dropped


def _order_statistics(batch: MaskedBatch, ranks: Tensor) -> Tensor:
    """Row-wise logit of 0-based ascending rank ``ranks[r]`` among the negatives: kthvalue when all ranks agree, else a sort."""
    if bool((ranks == ranks[0]).all()):
        k = int(ranks[0]) + 1
        return over_negatives(batch, float("inf"), lambda block, _: block.kthvalue(k, dim=1).values)
    return over_negatives(batch, float("inf"),
                          lambda block, rows: block.sort(dim=1).values.gather(1, ranks[rows].unsqueeze(1)).squeeze(1))
