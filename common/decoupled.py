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
anchor's row weight), as lightly's ``negative_mises_fisher_weights`` does over the local
batch (two views: 2B pairs, each similarity twice, the same as B); the weight is
differentiated, as in the paper's formula and lightly. The masked form takes the mean over
its own call's pairs; the two-view form :func:`dclw_two_view` with gathered negatives takes
it over every rank's pairs (the pairs' scaled logits are gathered with gradients), so that
W ranks equal one process on the global batch (tests/common/test_distributed.py), where
lightly's weight stays per rank.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from common.distributed import gather_with_grad, rank_and_world
from common.masked import check_temperature, masked_logsumexp, positive_logits, prepare, reduce_pairs
from common.views import two_view_loss

CITATION = ("Yeh, Hong, Hsu, Liu, Chen, LeCun. Decoupled Contrastive Learning. ECCV 2022, arXiv:2110.06848 "
            "(DCLW weight: Sec. 3, negative von Mises-Fisher weighting, sigma = 0.5)")


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
    return _decoupled(anchors, candidates, pos_mask, neg_mask, temperature, row_weights, None)


def dclw_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
    sigma: float = 0.5,
) -> Tensor:
    """DCL with the positive term weighted by ``2 - P softmax(s+/sigma)`` over the positive pairs."""
    return _decoupled(anchors, candidates, pos_mask, neg_mask, temperature, row_weights, _checked(sigma))


def dclw_two_view(z1: Tensor, z2: Tensor, *, temperature: float, gather_distributed: bool = False,
                  sigma: float = 0.5) -> Tensor:
    """DCLW on two views ``(B, d)``; with ``gather_distributed`` the weights' mean runs over all ranks' pairs.

    Every rank must pass the same B (as for the gathered negatives).
    """
    sigma = _checked(sigma)
    _, world = rank_and_world() if gather_distributed else (0, 1)

    def masked(anchors, candidates, pos_mask, neg_mask, **kwargs):
        return _decoupled(anchors, candidates, pos_mask, neg_mask, temperature, None, sigma, world > 1)

    return two_view_loss(masked, z1, z2, gather_distributed=gather_distributed)


def _checked(sigma: float) -> float:
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
    return sigma


def _decoupled(anchors, candidates, pos_mask, neg_mask, temperature, row_weights, sigma, gathered=False) -> Tensor:
    check_temperature(temperature)
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
            pos_logit = pos_logit * (2.0 - torch.exp(scaled - log_mean))
        return reduce_pairs(batch, pair_row, log_neg[pair_row] - pos_logit)
