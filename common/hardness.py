r"""Hardness offset on the negative logits (LLaVE; sentence-transformers' ``hardness_mode``).

Lan et al. add a stop-gradient multiple of each negative's cosine to its logit, so that a
hard negative weighs :math:`e^{\alpha s^-}` more in the denominator. Per (anchor, positive):

.. math::
    \mathcal{L} = -\log \frac{e^{s^+/t}}{e^{s^+/t} + \sum_j e^{s^-_j/t + \alpha\,\mathrm{sg}(s^-_j)}}

The weights :math:`e^{\alpha s^-_j}` are *not* renormalised (HCL divides by their mean), so
they also scale the negatives' total; ``alpha = 0`` is NT-Xent. The offset is not divided by
the temperature (sentence-transformers adds it after scaling; LLaVE uses alpha = 9 at
scale 20, i.e. t = 0.05). This is ``MultipleNegativesRankingLoss(hardness_mode=
"in_batch_negatives", hardness_strength=alpha, scale=1/t)`` in the masked form.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.masked import (
    check_range,
    check_temperature,
    info_nce_loss,
    masked_logsumexp,
    prepare,
)

CITATION = ("Lan, Niu, Meng, Zhou, Su. LLaVE: Large Language and Vision Embedding Models with Hardness-Weighted "
            "Contrastive Learning. arXiv:2503.04812, 2025 (Eq. 5; sentence-transformers hardness_mode)")


def hardness_offset_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
    alpha: float = 9.0,
) -> Tensor:
    """InfoNCE with every negative logit raised by ``alpha * stop_grad(cos)`` (alpha >= 0)."""
    check_temperature(temperature)
    check_range("alpha", alpha, 0.0)
    batch = prepare(anchors, candidates, pos_mask, neg_mask, row_weights, temperature)
    with torch.autocast(batch.anchors.device.type, enabled=False):
        # s/t + alpha s = (1 + alpha t) s/t in value; the gradient of the offset is cut inside.
        log_neg = masked_logsumexp(batch, ~batch.neg_mask, scale=1.0 + alpha * temperature)
        return info_nce_loss(batch, log_neg)
