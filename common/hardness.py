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

Because :math:`s/t + \alpha s = (1 + \alpha t)\, s/t`, alpha acts as a multiplier
:math:`1 + \alpha t` on the negative logits (LLaVE: 1.45), so one alpha is a different strength
at each temperature; :func:`alpha_for_multiplier` gives the alpha of a multiplier at a temperature.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.masked import info_nce_loss, masked_logsumexp, prepare


def alpha_for_multiplier(multiplier: float, temperature: float) -> float:
    """The alpha whose offset multiplies the negative logits by ``multiplier`` at ``temperature``: (m - 1) / t.

    Sweeps declared as equal multipliers give every modality the same strength whatever its temperature.
    """
    if not (multiplier >= 1.0 and temperature > 0.0):
        raise ValueError(f"need multiplier >= 1 and temperature > 0, got {multiplier} and {temperature}")
    return (multiplier - 1.0) / temperature


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
    batch = prepare(anchors, candidates, pos_mask, neg_mask, row_weights, temperature)
    with torch.autocast(batch.anchors.device.type, enabled=False):
        # s/t + alpha s = (1 + alpha t) s/t in value; the gradient of the offset is cut inside.
        log_neg = masked_logsumexp(batch, ~batch.neg_mask, scale=1.0 + alpha * temperature)
        return info_nce_loss(batch, log_neg)
