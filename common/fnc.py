r"""False-negative cancellation (FNC), in-batch variant.

Huynh et al. take the candidates most similar to an anchor as likely *false* negatives
(same class). Per anchor :math:`i` with positive :math:`p`, let :math:`F_i` be the ``k``
negatives with the largest (detached) similarity. With :math:`\ell_c = s_{ic}/t`:

.. math::
    \mathcal{L}^{\mathrm{elim}}_i = -\log \frac{e^{\ell_p}}{e^{\ell_p} + \sum_{j \in N_i \setminus F_i} e^{\ell_j}},
    \qquad
    \mathcal{L}^{\mathrm{att}}_i = -\frac{1}{1 + |F_i|} \sum_{a \in \{p\} \cup F_i}
        \log \frac{e^{\ell_a}}{\sum_{c \in \{p\} \cup N_i} e^{\ell_c}}

*elimination* drops them from the negatives; *attraction* also pulls them in as positives,
every pair over the anchor's whole candidate set (the paper's :math:`\sum_{k \ne i}`).
``k = 0`` is NT-Xent in both modes. The paper scores candidates by their similarity to a
set of *support views* of the anchor (aggregated by max or mean); this is the in-batch
variant without support views: the anchor's own embedding scores them. With several
positives per anchor, elimination keeps the masked form's convention (each pair over its
own positive and the negatives), attraction's denominator holds all of the anchor's
positives (the supervised-contrastive form of "every candidate but the anchor").
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.masked import (
    check_temperature,
    info_nce_loss,
    masked_logsumexp,
    over_negatives,
    pair_logits,
    prepare,
    reduce_pairs,
)

CITATION = ("Huynh, Kornblith, Walter, Maire, Khademi. Boosting Contrastive Self-Supervised Learning with False "
            "Negative Cancellation. WACV 2022, arXiv:2011.11765")
MODES = ("elimination", "attraction")


def fnc_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
    k: int = 1,
    mode: str = "attraction",
) -> Tensor:
    """InfoNCE with each anchor's ``k`` most similar negatives eliminated (or attracted as positives)."""
    check_temperature(temperature)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if int(k) != k or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k}")
    k = int(k)
    batch = prepare(anchors, candidates, pos_mask, neg_mask, row_weights, temperature)
    fewest = int(batch.neg_count.min())
    if k >= fewest:
        raise ValueError(f"k = {k} must be smaller than every anchor's number of negatives (fewest: {fewest})")
    with torch.autocast(batch.anchors.device.type, enabled=False):
        false = torch.zeros_like(batch.neg_mask)
        if k:
            # topk, not a sort: only the k largest similarities among the negatives.
            top = over_negatives(batch, float("-inf"), lambda block, _: block.topk(k, dim=1, sorted=False).indices)
            false.scatter_(1, top, True)
        if mode == "elimination":
            log_neg = masked_logsumexp(batch, ~batch.neg_mask | false)
            return info_nce_loss(batch, log_neg)
        log_all = masked_logsumexp(batch, ~(batch.neg_mask | batch.pos_mask))
        attract = batch.pos_mask | false
        pair_row, pair_col = attract.nonzero(as_tuple=True)
        pair_loss = log_all[pair_row] - pair_logits(batch, pair_row, pair_col)
        return reduce_pairs(batch, pair_row, pair_loss)
