r"""Decoupled contrastive learning (DCL) and its von Mises-Fisher weighted form (DCLW).

Yeh et al. show that NT-Xent's gradient carries a *negative-positive coupling* factor
:math:`q = 1 - e^{s^+/t} / (e^{s^+/t} + \sum_j e^{s^-_j/t})` that shrinks the update when
the positive is easy or the batch small. Removing the positive from the denominator
removes it. Per (anchor, positive) pair, with negatives :math:`s^-_j`:

.. math::
    \mathcal{L}_{\mathrm{DCL}} = -\frac{s^+}{t} + \log \sum_j e^{s^-_j/t}, \qquad
    \mathcal{L}_{\mathrm{DCLW}} = -w\,\frac{s^+}{t} + \log \sum_j e^{s^-_j/t},

    w = 2 - \frac{e^{s^+/\sigma}}{\mathbb{E}_{\text{pairs}}\big[e^{s^+/\sigma}\big]}
      = 2 - P\,\mathrm{softmax}_{\text{pairs}}(s^+/\sigma),

so that :math:`\mathcal{L}_{\mathrm{NT\text{-}Xent}} = \mathcal{L}_{\mathrm{DCL}} - \log q`.
The weight up-weights hard positives (low :math:`s^+`); its mean over the batch is 1. The
expectation runs over the call's positive pairs (``P`` of them, each counted as often as its
anchor's row weight), as the reference's weight function does over its batch (two views: 2B
pairs, each similarity twice, the same as B).

Whether the weight is differentiated is ``detach``: the paper released no code and does not
say; the reference implementation (raminnakhli/Decoupled-Contrastive-Learning,
``loss/dcl.py``) differentiates it (``detach="no"``, the default), lightly's ``DCLWLoss``
computes it from detached outputs (``detach="yes"``). Values agree; gradients do not.
The masked form takes the mean over its own call's pairs; the two-view form
:func:`dclw_two_view` with gathered negatives takes it over every rank's pairs (the pairs'
scaled logits are gathered with gradients), so that W ranks equal one process on the global
batch (tests/common/test_distributed.py), where lightly's weight stays per rank.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.distributed import gather_with_grad, rank_and_world
from common.masked import masked_logsumexp, positive_logits, prepare, reduce_pairs
from common.views import two_view_loss


def dcl_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
) -> Tensor:
    """Decoupled contrastive loss: the positive is not in the denominator."""
    return _decoupled(anchors, candidates, pos_mask, neg_mask, temperature, row_weights, None, False)


def dclw_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
    sigma: float = 0.5,
    detach: str = "no",
) -> Tensor:
    """DCL with the positive term weighted by ``2 - P softmax(s+/sigma)`` over the positive pairs (constant if ``detach``)."""
    return _decoupled(anchors, candidates, pos_mask, neg_mask, temperature, row_weights, sigma, detach == "yes")


def dclw_two_view(z1: Tensor, z2: Tensor, *, temperature: float, gather_distributed: bool = False,
                  sigma: float = 0.5, detach: str = "no") -> Tensor:
    """DCLW on two views ``(B, d)``; with ``gather_distributed`` the weights' mean runs over all ranks' pairs.

    Every rank must pass the same B (as for the gathered negatives).
    """
    _, world = rank_and_world() if gather_distributed else (0, 1)

    def masked(anchors, candidates, pos_mask, neg_mask, **kwargs):
        return _decoupled(anchors, candidates, pos_mask, neg_mask, temperature, None, sigma, detach == "yes", world > 1)

    return two_view_loss(masked, z1, z2, gather_distributed=gather_distributed)


def _decoupled(anchors: Tensor, candidates: Tensor, pos_mask: Tensor, neg_mask: Tensor, temperature: float,
               row_weights: Tensor | None, sigma: float | None, detach: bool, gathered: bool = False) -> Tensor:
    batch = prepare(anchors, candidates, pos_mask, neg_mask, row_weights, temperature)
    with torch.autocast(batch.anchors.device.type, enabled=False):
        log_neg = masked_logsumexp(batch, ~batch.neg_mask)
        pair_row, pos_logit = positive_logits(batch)
        if sigma is not None:
            # log E_pairs[e^{s+/sigma}] with each pair counted as often as its row: log-sum-exp, max taken out.
            log_w = batch.weights.log()[pair_row]
            scaled = pos_logit * (temperature / sigma)
            weighted = scaled + log_w
            if gathered:  # the mean over every rank's pairs; gradients flow back to the owning rank
                weighted, log_w = gather_with_grad(weighted), gather_with_grad(log_w)
            log_mean = torch.logsumexp(weighted, dim=0) - torch.logsumexp(log_w, dim=0)
            weight = 2.0 - torch.exp(scaled - log_mean)
            pos_logit = pos_logit * (weight.detach() if detach else weight)
        return reduce_pairs(batch, pair_row, log_neg[pair_row] - pos_logit)
